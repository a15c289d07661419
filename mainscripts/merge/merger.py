"""`merge`: swap every dst face through a trained model and write merged frames and masks.

DeepFaceLab's flow: pick the model, "Use interactive merger?" — yes opens the keyboard
merger (per-frame settings, session kept in the model folder), no asks the settings once
(or takes them from --opt / --config) and merges every frame with worker processes.
This module is the command: its arguments, prompts and the models it loads. The work is
in core/merge/: the settings (config.py), batch merge and its resume (batch_merge.py,
resume.py), the worker side (batch_job.py); the interactive merger is merger_interactive.py.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core import interact
from core.errors import VisageError
from core.options import WORKERS, Option
from core.nn.backend import add_device_flags

BOOL = argparse.BooleanOptionalAction
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
    from core.merge.batch_merge import batch_merge
    from core.merge.config import MergerConfig, batch_config, model_merge_options
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
