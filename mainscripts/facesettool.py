"""`facesettool resize`: re-crop a faceset at another size and/or face type into DIR_resized.

Each face is re-warped from its own source geometry, through the one crop function
(geometry.face_transform): the new frame->face matrix comes from the face's source
landmarks, and the old face image is carried to the new one by new_mat ∘ old_mat⁻¹. The
landmarks, XSeg polygons and XSeg mask go through the same affine, so everything stays
consistent with the pixels. Like DeepFaceLab, the size and face type are asked, the result
is saved at JPEG quality 100, and merging the result back into the folder is offered.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field, replace
from pathlib import Path

from core import interact
from core.errors import VisageError
from core.facelib.face_type import SHORT_NAMES, TRAINABLE, spellings, spellings_help
from core.options import WORKERS, Option, Settings, add_flags

OPTIONS = (
    Option("image_size", int, 512, "Side of the resized faces in pixels (128-2048). Match the model resolution "
           "or a little above it; bigger only costs disk and loading time.", prompt="New image size",
           lo=128, hi=2048),
    Option("face_type", str, "same", f"Face type of the new crop: {spellings_help(TRAINABLE)}; "
           "same keeps each face's type. Widening past the old crop leaves no image data at the new border "
           "(the edge pixels are stretched).", prompt="Change face type", choices=(*SHORT_NAMES, "same"),
           aliases=spellings(short=True, types=TRAINABLE)),
    Option("merge_back", bool, False, "copy the resized faces over the originals (same names) and remove the "
           "_resized folder", prompt="Merge the resized faces back into the folder?"),
    WORKERS,
)
JPEG_QUALITY = 100


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("facesettool", help="faceset tools: resize")
    tools = p.add_subparsers(dest="facesettool_command", required=True, metavar="TOOL")
    t = tools.add_parser("resize", parents=[parent],
                         help="re-crop a faceset at a new size / face type into DIR_resized",
                         description="Re-crop every face at a new size and/or face type into <input-dir>_resized.")
    t.add_argument("--input-dir", required=True, help="aligned faces folder, e.g. workspace/data_src/aligned")
    add_flags(t, OPTIONS, example="face_type=wf")
    t.set_defaults(func=cli)


def cli(args: argparse.Namespace) -> int:
    from core.faceset_pak import refuse_packed
    folder = Path(args.input_dir)
    if not folder.is_dir():
        raise VisageError(f"input folder not found: {folder}")
    refuse_packed(folder)
    opts = Settings.from_args(args, OPTIONS)
    out_dir = folder.parent / f"{folder.name}_resized"
    report = resize_faceset(folder, out_dir, opts["image_size"], opts["face_type"], workers=opts["workers"])
    merge = opts["merge_back"]
    if merge and report.written:
        merge_back(folder, out_dir, report.written)
    return 0


@dataclass
class ResizeReport:
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)     # "name: why"
    widened: list[str] = field(default_factory=list)     # new crop reaches past the old image


def _affine3(mat):
    import numpy as np
    m = np.eye(3)
    m[:2] = np.asarray(mat, np.float64)
    return m


def resize_face(img, meta, image_size: int, face_type: str = "same"):
    """(new image, new FaceMeta, widened) for one face; pure, so tests can call it directly.

    `widened` tells that the new crop reaches more than a pixel past the old image, where
    there is no image data (the border is replicated).
    """
    import cv2
    import numpy as np
    from core.facelib.face_type import face_type_from_str, face_type_name
    from core.facelib.geometry import face_transform, transform_points
    from core.imagelib.masks import decode_xseg_mask
    old_size = img.shape[0]
    if img.shape[1] != old_size:
        raise VisageError(f"the face image is {img.shape[1]}x{old_size}, not square")
    ft = face_type_from_str(meta.face_type if face_type == "same" else face_type)
    new_mat = face_transform(meta.source_landmarks, ft, image_size)
    a = (_affine3(new_mat) @ np.linalg.inv(_affine3(meta.image_to_face_mat)))[:2]
    out = cv2.warpAffine(img, a, (image_size, image_size), flags=cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REPLICATE)
    corners = np.array([(0, 0), (image_size, 0), (image_size, image_size), (0, image_size)], np.float64)
    back = transform_points(corners, a, invert=True)
    widened = bool((back < -1.0).any() or (back > old_size + 1.0).any())
    polys = [{**q, "points": transform_points(np.asarray(q["points"], np.float64).reshape(-1, 2), a).tolist()}
             for q in meta.seg_ie_polys]
    xseg = None
    if meta.xseg_mask is not None:
        mask = decode_xseg_mask(meta.xseg_mask, old_size)[..., 0]
        mask = cv2.warpAffine(mask, a, (image_size, image_size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        xseg = cv2.imencode(".png", np.round(np.clip(mask, 0, 1) * 255).astype(np.uint8))[1].tobytes()
    new_meta = replace(meta, face_type=face_type_name(ft), landmarks=transform_points(meta.landmarks, a),
                       image_to_face_mat=new_mat, seg_ie_polys=polys, xseg_mask=xseg)
    return np.clip(out, 0, 255).astype(np.uint8), new_meta, widened


def _resize_job(job: tuple[str, str, int, str]) -> tuple[str, str | None, bool]:
    from core.facelib.face_meta import read_face, write_face
    src, dst, image_size, face_type = job
    name = Path(src).name
    try:
        img, meta = read_face(src)
        if meta.face_type == "mark_only":
            return name, "mark_only faces have no crop to resize", False
        out, new_meta, widened = resize_face(img, meta, image_size, face_type)
        write_face(dst, out, new_meta, jpeg_quality=JPEG_QUALITY)
    except VisageError as e:
        return name, str(e), False
    return name, None, widened


def resize_faceset(folder: Path, out_dir: Path, image_size: int, face_type: str = "same",
                   workers: int = 0) -> ResizeReport:
    """Resize every face of `folder` into `out_dir` (same names); old images there are removed first."""
    from core.faceset_pak import FACE_EXTS, is_aux_image
    from core.fileio import list_images
    from core.workers import default_workers, run_pool
    files = [p for p in list_images(folder, FACE_EXTS) if not is_aux_image(p)]
    if not files:
        raise VisageError(f"no aligned faces in {folder}; extract faces first (steps 4 and 5)")
    out_dir.mkdir(parents=True, exist_ok=True)
    old = list_images(out_dir)
    if old:
        if not interact.input_bool(f"{out_dir} holds {len(old)} images from an earlier resize. Delete them?", True,
                                   help_text="They would be mixed with the new faces otherwise"):
            raise VisageError(f"{out_dir} is not empty; empty it or let the resize delete its images")
        for p in old:
            p.unlink()
    interact.log_info(f"Resizing {len(files)} faces of {folder} to {image_size} px, face type {face_type}, "
                      f"into {out_dir}")
    jobs = [(str(p), str(out_dir / p.name), image_size, face_type) for p in files]
    report = ResizeReport()
    for name, error, widened in run_pool(_resize_job, jobs, workers or default_workers(), desc="Resizing"):
        if error:
            report.skipped.append(f"{name}: {error}")
        else:
            report.written.append(name)
            if widened:
                report.widened.append(name)
    report.written.sort()
    interact.log_info(f"Wrote {len(report.written)} resized faces to {out_dir}")
    if report.widened:
        interact.log_warn(f"{len(report.widened)} face(s) (e.g. {report.widened[0]}) needed image beyond their old "
                          "crop; the new border repeats the edge pixels. Re-extract from the frames for a clean "
                          "wider crop")
    for line in report.skipped:
        interact.log_warn(f"skipped {line}")
    return report


def merge_back(folder: Path, out_dir: Path, names: list[str]) -> None:
    """Copy the resized faces over the originals (atomic per file), then remove DIR_resized."""
    from core.fileio import atomic_write_bytes
    for name in names:
        atomic_write_bytes(folder / name, (out_dir / name).read_bytes())
    for name in names:
        (out_dir / name).unlink()
    if not any(out_dir.iterdir()):
        out_dir.rmdir()
    interact.log_info(f"Merged {len(names)} resized faces into {folder}")
