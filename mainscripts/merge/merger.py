"""`merge`: swap every dst face through a trained model and write merged frames and masks.

DeepFaceLab's flow: pick the model, "Use interactive merger?" — yes opens the keyboard
merger (per-frame settings, session kept in the model folder), no asks the settings once
(or takes them from --opt / --config) and merges every frame with worker processes. The
parent process decodes frames, crops faces and runs the model in batches; workers
composite and write (core/merge/batch_job.py). A frame counts as merged only once
both its files were written with this model iteration and these settings, as the output
folder's merge log records (core/merge/resume.py): run again, a stopped batch merge,
or one with other settings, merges exactly the frames not yet merged that way.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Iterator

from core import interact
from core.errors import VisageError
from core.options import WORKERS, Option
from core.nn.backend import add_device_flags

BOOL = argparse.BooleanOptionalAction
PREDICT_FRAMES = 8                  # frames whose faces go through the model in one call
XSEG_MODEL_DIR = Option("xseg_model_dir", str, "", "folder of the trained XSeg model that the XSeg mask modes "
                        "run on the predicted and the dst face (default: --model-dir)", asked=False)


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    from models import model_names
    from core.merge.config import SCHEMA
    from core.options import CONFIG_HELP, describe
    p = sub.add_parser("merge", parents=[parent], help="merge: swap the dst faces through a trained model",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="merger options (--opt NAME=VALUE or --config FILE; batch merge asks for those not "
                              "given):\n" + "\n".join(describe(SCHEMA)))
    p.add_argument("--input-dir", required=True, help="dst frames, e.g. workspace/data_dst")
    p.add_argument("--output-dir", required=True, help="merged frames, e.g. workspace/data_dst/merged")
    p.add_argument("--output-mask-dir", help="merge masks (default: <output-dir>_mask)")
    p.add_argument("--aligned-dir", help="dst aligned faces (default: <input-dir>/aligned)")
    p.add_argument("--model-dir", required=True, help="model folder, e.g. workspace/model")
    p.add_argument("--model", required=True, choices=model_names(swaps_faces=True), help="the model's class (its files in --model-dir)")
    p.add_argument("--force-model-name", help="use this model without the picker")
    p.add_argument(XSEG_MODEL_DIR.flag, dest=XSEG_MODEL_DIR.name, type=XSEG_MODEL_DIR, metavar="DIR",
                   help=XSEG_MODEL_DIR.help)
    add_device_flags(p, "run the model")
    p.add_argument("--interactive", action=BOOL, help="keyboard merger window (asked; default yes)")
    p.add_argument("--batch", dest="interactive", action="store_false",
                   help="batch merge, no window (the same as --no-interactive; --non-interactive only stops prompts)")
    p.add_argument("--workers", type=WORKERS, help="batch merge worker processes (asked; default: CPU cores)")
    p.add_argument("--opt", action="append", metavar="NAME=VALUE",
                   help="merger option, e.g. --opt mode=overlay --opt mask_mode=dst --opt erode_mask_modifier=10")
    p.add_argument("--config", metavar="FILE", help=CONFIG_HELP)
    p.set_defaults(func=cli)


def cli(args: argparse.Namespace) -> int:
    from core.merge.frames import load_frames
    from core.options import given_options
    from core.workers import default_workers
    from models.predictor import FacePredictor
    input_dir, output_dir = Path(args.input_dir), Path(args.output_dir)
    mask_dir = Path(args.output_mask_dir) if args.output_mask_dir else output_dir.with_name(output_dir.name + "_mask")
    frames = load_frames(input_dir, Path(args.aligned_dir) if args.aligned_dir else input_dir / "aligned")
    given = given_options(args)
    predictor = FacePredictor(args.model_dir, args.model, args.force_model_name, args.cpu_only, args.force_gpu_idxs)
    from core.nn.backend import describe_backend
    interact.log_info(f"Model {predictor.title}, iteration {predictor.iteration}: {predictor.devices}, "
                      f"{describe_backend()}, {predictor.precision}")
    given = {**given, **model_merge_options(predictor.merge_options, given, interact.is_interactive())}
    interactive = args.interactive
    if interactive is None:
        interactive = interact.is_interactive() and interact.input_bool(
            "Use interactive merger?", True, "Yes: a window to tune the settings frame by frame with the keyboard. "
            "No: ask the settings once and merge every frame.")
    xseg_dir = Path(args.xseg_model_dir or args.model_dir)
    if interactive:
        from core.merge.config import MergerConfig
        from mainscripts.merge.merger_interactive import interactive_merge
        xseg = load_xseg(xseg_dir, MergerConfig.from_options(given).mask_mode, optional=True)
        try:
            return interactive_merge(frames, predictor, output_dir, mask_dir, Path(args.model_dir), given, xseg)
        finally:
            if xseg is not None:
                xseg.close()
    cfg = batch_config(given, ask=interact.is_interactive())
    xseg = load_xseg(xseg_dir, cfg.mask_mode)
    workers = args.workers
    if workers is None:
        workers = default_workers()
        if interact.is_interactive():
            workers = interact.input_int("Number of workers?", workers, (1, 4 * workers),
                                         "Processes that composite and write frames while the model predicts.")
    try:
        return batch_merge(frames, predictor, cfg, output_dir, mask_dir, max(1, workers), xseg)
    finally:
        if xseg is not None:
            xseg.close()


def load_xseg(folder: Path, mask_mode: str, optional: bool = False) -> Any:
    """The XSeg model (models.xseg.XSegPredictor), loaded once for the whole merge, or None.

    Batch merge loads it only for an XSeg mask mode and stops with one line when the folder
    has none; the interactive merger (`optional`) loads it whenever there is one, so the
    mask-mode key reaches the XSeg modes, and requires it only when it starts in one.
    """
    from core.merge.masks import XSEG_MASK_MODES
    from models.model_files import list_models
    from models.xseg import XSegModel, XSegPredictor
    needed = mask_mode in XSEG_MASK_MODES
    if not (needed or optional):
        return None
    if not (folder.is_dir() and list_models(folder, XSegModel.CLASS_NAME)):
        if needed:
            raise VisageError(f"mask mode {mask_mode} needs a trained XSeg model and there is none in {folder}; "
                              "train one (`train --model XSeg`) or point --xseg-model-dir at its folder")
        return None
    xseg = XSegPredictor(folder)
    interact.log_info(f"XSeg model {xseg.title}, iteration {xseg.iteration} "
                      f"({xseg.face_type.name.lower()} {xseg.resolution} px) for the XSeg mask modes")
    return xseg


# ------------------------------------------------------------------ settings

HIST_ONLY = ("masked_hist_match", "hist_match_threshold")


def _applies(name: str, mode: str) -> bool:
    """DeepFaceLab asks only what the mode uses: nothing for original/raw, hist options for hist modes."""
    if mode == "original" or mode.startswith("raw"):
        return False
    return name not in HIST_ONLY or "hist" in mode


def model_merge_options(names: tuple[str, ...], given: dict[str, Any], ask: bool) -> dict[str, Any]:
    """The merger options only this model uses (AMP's "Morph factor"), asked first as DeepFaceLab does."""
    from core.merge.config import OPTIONS
    from core.options import resolve
    return resolve([OPTIONS[n] for n in names], {k: v for k, v in given.items() if k in names}, ask=ask)


def batch_config(given: dict[str, Any], ask: bool) -> Any:
    """Merger settings: given (flags/config) > asked (DeepFaceLab's prompt defaults) > prompt defaults."""
    from core.merge.config import MODEL_ONLY, OPTIONS, PROMPT_DEFAULTS, SCHEMA, MergerConfig
    from core.options import resolve
    mode = resolve([OPTIONS["mode"]], {k: v for k, v in given.items() if k == "mode"}, ask=ask)["mode"]
    wanted = [o for o in SCHEMA if o.name not in ("mode", *MODEL_ONLY) and _applies(o.name, mode)]
    names = {o.name for o in wanted}
    values = resolve(wanted, {k: v for k, v in given.items() if k in names}, PROMPT_DEFAULTS, ask=ask)
    return MergerConfig.from_options({**PROMPT_DEFAULTS, **given, **values, "mode": mode})


# ------------------------------------------------------------------ batch merge

def _resume_plan(frames: list, log: Any) -> list:
    """Frames still to merge: those the merge log does not show as merged with these settings."""
    todo = [f for f in frames if not log.merged(f.path.stem)]
    done, redone = len(frames) - len(todo), sum(log.merged_otherwise(f.path.stem) for f in todo)
    if todo and done:
        interact.log_info(f"Resuming: {done} of {len(frames)} frames are already merged"
                          + (f"; {redone} merged with another model iteration or other settings are merged again"
                             if redone else ""))
    elif todo and redone:
        interact.log_info("The model or the settings changed since the last merge: merging every frame again")
    return todo


def prepare_jobs(todo: list, predictor: Any, cfg: Any, output_dir: Path, mask_dir: Path,
                 failures: list[tuple[str, str]], xseg: Any = None) -> Iterator[Any]:
    """MergeJobs in frame order: frames decoded and faces cropped here, predicted (and XSeg-masked) in batches."""
    from core.fileio import read_image
    from core.merge.compose import crop_face
    from core.merge.xseg_masks import add_xseg_masks
    from core.workers import chunked
    from core.merge.batch_job import MergeJob
    for group in chunked(todo, PREDICT_FRAMES):
        jobs, crops, crop_frames = [], [], []
        for f in group:
            job = MergeJob(f.path, output_dir / (f.path.stem + ".png"), mask_dir / (f.path.stem + ".png"), cfg,
                           motions=list(f.motions))
            if f.faces:
                job.frame = read_image(f.path)
                if job.frame is None:
                    failures.append((f.name, "unreadable image"))
                    continue
                if cfg.mode != "original":
                    job.crops = [crop_face(job.frame, m, predictor.resolution, predictor.face_type) for m in f.faces]
                    crops += job.crops
                    crop_frames += [job.frame] * len(job.crops)
            jobs.append(job)
        predictions = predictor.predict_batch([c.dst for c in crops], cfg.morph_factor)
        if xseg is not None:
            predictions = add_xseg_masks(crop_frames, crops, predictions, xseg, cfg.mask_mode)
        predictions = iter(predictions)
        for job in jobs:
            job.predictions = [next(predictions) for _ in job.crops]
            yield job


def batch_merge(frames: list, predictor: Any, cfg: Any, output_dir: Path, mask_dir: Path, workers: int,
                xseg: Any = None) -> int:
    from core.merge.frames import count_faces
    from core.workers import run_pipeline
    from core.merge.resume import MergeLog, settings_key
    from core.merge.batch_job import run_job
    settings = cfg.to_dict() if xseg is None else {**cfg.to_dict(), "xseg": f"{xseg.title} {xseg.iteration}"}
    log = MergeLog(output_dir, mask_dir, settings_key(predictor.title, predictor.iteration, settings))
    todo = _resume_plan(frames, log)
    if not todo:
        interact.log_info(f"All {len(frames)} frames are already merged in {output_dir} with this model iteration "
                          f"and these settings; nothing to do")
        return 0
    output_dir.mkdir(parents=True, exist_ok=True)
    mask_dir.mkdir(parents=True, exist_ok=True)
    failures: list[tuple[str, str]] = []
    jobs = prepare_jobs(todo, predictor, cfg, output_dir, mask_dir, failures, xseg)
    with log:
        for name, error in run_pipeline(run_job, jobs, workers, total=len(todo), desc="Merging"):
            if error:
                failures.append((name, error))
            else:
                log.add(Path(name).stem)
    with_faces = sum(1 for f in todo if f.faces)
    interact.log_info(f"Merged {len(todo) - len(failures)} frames into {output_dir} ({with_faces} with faces, "
                      f"{count_faces(todo)} faces; frames without a face are copied unchanged)")
    if failures:
        interact.log_warn(f"{len(failures)} frame(s) could not be merged and were skipped, e.g. "
                          f"{failures[0][0]}: {failures[0][1]}; fix them and run merge again to finish")
        return 1
    return 0
