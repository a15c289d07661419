"""Batch merge: every frame merged with one set of settings, the model in the parent, workers writing.

The parent process decodes frames, crops faces and runs the model (and the XSeg model for
the XSeg mask modes) in groups of `PREDICT_FRAMES` frames; worker processes composite and
write (core/merge/batch_job.py). A frame counts as merged only once both its files were
written with this model iteration and these settings, as the output folder's merge log
records (core/merge/resume.py): run again, a stopped batch merge, or one with other
settings, merges exactly the frames not yet merged that way. The `merge` command
(mainscripts/merge/merger.py) asks the settings and calls `batch_merge`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from core import interact
from core.fileio import read_image
from core.merge.batch_job import MergeJob, run_job
from core.merge.compose import crop_face
from core.merge.config import MergerConfig
from core.merge.frames import FrameInfo, count_faces
from core.merge.resume import MergeLog, settings_key
from core.merge.xseg_masks import add_xseg_masks
from core.workers import chunked, run_pipeline

PREDICT_FRAMES = 8                  # frames whose faces go through the model in one call


def resume_plan(frames: list[FrameInfo], log: MergeLog) -> list[FrameInfo]:
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


def prepare_jobs(todo: list[FrameInfo], predictor: Any, cfg: MergerConfig, output_dir: Path, mask_dir: Path,
                 failures: list[tuple[str, str]], xseg: Any = None) -> Iterator[MergeJob]:
    """MergeJobs in frame order: frames decoded and faces cropped here, predicted (and XSeg-masked) in batches."""
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


def batch_merge(frames: list[FrameInfo], predictor: Any, cfg: MergerConfig, output_dir: Path, mask_dir: Path,
                workers: int, xseg: Any = None) -> int:
    """Merge the frames not yet merged with these settings into output_dir / mask_dir; 0, or 1 if any failed."""
    settings = cfg.to_dict() if xseg is None else {**cfg.to_dict(), "xseg": f"{xseg.title} {xseg.iteration}"}
    log = MergeLog(output_dir, mask_dir, settings_key(predictor.title, predictor.iteration, settings))
    todo = resume_plan(frames, log)
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
