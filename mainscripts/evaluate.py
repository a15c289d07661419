"""`evaluate`: measure a merged swap and write evaluate.json + evaluate.png.

`main.py evaluate --merged-dir workspace/data_dst/merged --dst-dir workspace/data_dst
--src-aligned-dir workspace/data_src/aligned` goes through the merged frames in order
beside the dst frames they were made from (matched by name, faces from the dst aligned
folder) and measures, per face: identity (dlib distance to the src and the dst person),
fidelity (landmarks and pose found again on the merged frame vs the dst frame), sharpness
and seam (inside / on the edge of the merge mask, relative to the dst); over time: flicker
and landmark jitter; with `--model-dir`: the model's src -> src and dst -> dst reconstruction. Every
figure is defined in README.md, "Evaluating a swap"; the measuring lives in core/evaluate/.
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core import interact
from core.errors import VisageError
from core.nn.backend import add_device_flags

WORST_FACES = 6
THUMB = 112


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    from models import model_names
    p = sub.add_parser("evaluate", parents=[parent], help="measure a merged swap: identity, expression and pose, "
                       "flicker and jitter, sharpness, seam (evaluate.json + evaluate.png)",
                       description="Measure merged frames against the dst frames they came from and the src faces. "
                                   "Writes evaluate.json and evaluate.png; README.md defines every figure.")
    p.add_argument("--merged-dir", required=True, help="merged frames, e.g. workspace/data_dst/merged")
    p.add_argument("--dst-dir", required=True, help="the dst frames that were merged, e.g. workspace/data_dst")
    p.add_argument("--dst-aligned-dir", help="dst aligned faces (default: <dst-dir>/aligned)")
    p.add_argument("--src-aligned-dir", required=True, help="src aligned faces, e.g. workspace/data_src/aligned")
    p.add_argument("--merged-mask-dir", help="merge masks (default: <merged-dir>_mask; without masks the dst "
                   "faces' landmark hulls are used)")
    p.add_argument("--output-dir", help="folder for evaluate.json and evaluate.png (default: the merged folder's "
                   "parent, or the folder above it when that holds the dst frames, e.g. workspace/)")
    p.add_argument("--model-dir", help="also measure the model's src -> src and dst -> dst reconstruction (SSIM, PSNR)")
    p.add_argument("--model", choices=model_names(swaps_faces=True), help="model in --model-dir (default: the only one there)")
    p.add_argument("--force-model-name", help="model name in --model-dir, when it holds several")
    p.add_argument("--holdout-dir", help="src faces the model never trained on, for the reconstruction figures "
                   "(default: --src-aligned-dir, i.e. training faces)")
    add_device_flags(p, "run the model")
    p.set_defaults(func=cli)


@dataclass
class Evaluation:
    summary: dict
    faces: list[dict]
    json_path: Path
    png_path: Path
    notes: list[str] = field(default_factory=list)


def cli(args: argparse.Namespace) -> int:
    result = evaluate(args.merged_dir, args.dst_dir, args.src_aligned_dir, dst_aligned_dir=args.dst_aligned_dir,
                      mask_dir=args.merged_mask_dir, output_dir=args.output_dir, model_dir=args.model_dir,
                      model=args.model, force_model_name=args.force_model_name, holdout_dir=args.holdout_dir,
                      cpu_only=args.cpu_only, gpu_idxs=args.force_gpu_idxs)
    print_summary(result)
    return 0


def print_summary(result: Evaluation) -> None:
    from core.evaluate.report import headline
    for note in result.notes:
        interact.log_info(f"note: {note}")
    for line in headline(result.summary):
        interact.log_info(line)
    interact.log_info(f"written: {result.json_path}, {result.png_path}")


def _match_frames(merged_dir: Path, dst_dir: Path, dst_aligned_dir: Path
                  ) -> tuple[list, list[Path], list[int], list[str]]:
    """dst FrameInfo, merged path and place in the dst sequence of every merged frame, in order; notes."""
    from core.fileio import list_images
    from core.merge.frames import load_frames
    if not merged_dir.is_dir():
        raise VisageError(f"merged folder not found: {merged_dir}; merge the dst frames first (step 7)")
    merged = list_images(merged_dir)
    if not merged:
        raise VisageError(f"no merged frames in {merged_dir}; merge the dst frames first (step 7)")
    if not dst_dir.is_dir():
        raise VisageError(f"dst frames folder not found: {dst_dir}")
    frames = load_frames(dst_dir, dst_aligned_dir)
    by_stem = {f.path.stem: f for f in frames}
    strangers = [p.name for p in merged if p.stem not in by_stem]
    if strangers:
        raise VisageError(f"{len(strangers)} merged frame(s) (e.g. {strangers[0]}) have no dst frame of the same "
                          f"name in {dst_dir}; pass the dst frames this merge was made from")
    merged_by_stem = {p.stem: p for p in merged}
    pairs = [(f, merged_by_stem[f.path.stem], k) for k, f in enumerate(frames) if f.path.stem in merged_by_stem]
    notes = []
    if len(pairs) < len(frames):
        notes.append(f"{len(frames) - len(pairs)} of {len(frames)} dst frames have no merged frame; they are left out")
    if not any(f.faces for f, _, _ in pairs):
        raise VisageError(f"none of the merged frames has a dst face in {dst_aligned_dir}; nothing to measure")
    return [f for f, _, _ in pairs], [m for _, m, _ in pairs], [k for _, _, k in pairs], notes


def _read(path: Path, what: str) -> np.ndarray:
    from core.fileio import read_image
    img = read_image(path)
    if img is None:
        raise VisageError(f"{what} {path} cannot be read (damaged or not an image)")
    return img


class _Measurer:
    """Per-frame measuring, fed the frames in order (flicker and tracks need the order)."""

    def __init__(self, encoder, relandmark):
        from core.evaluate.stability import FlickerMeter
        self.encoder, self.relandmark = encoder, relandmark
        self.flicker = FlickerMeter()
        self.faces: list[dict] = []
        self.points: list[list] = []
        self.merged_emb: list[np.ndarray] = []
        self.dst_emb: list[np.ndarray] = []

    def frame(self, place: int, info, merged_path: Path, mask_dir: Path | None) -> None:
        """Measure one frame, the `place`-th of the dst sequence (a gap breaks flicker pairs and tracks)."""
        from core.evaluate import fidelity
        from core.evaluate.regions import face_region
        from core.evaluate.sharpness_seam import gradient, laplacian, ratio, seam_step, sharpness
        from core.evaluate.stability import TrackPoint
        from core.fileio import read_image
        if not info.faces:
            self.flicker.feed(place, None, None, None)
            self.points.append([])
            return
        dst, merged = _read(info.path, "dst frame"), _read(merged_path, "merged frame")
        if merged.shape != dst.shape:
            raise VisageError(f"merged frame {merged_path.name} is {merged.shape[1]}x{merged.shape[0]} but its dst "
                              f"frame {info.path} is {dst.shape[1]}x{dst.shape[0]}; the frames do not match")
        mask = None
        if mask_dir is not None:
            found = [p for p in (mask_dir / merged_path.name, mask_dir / f"{merged_path.stem}.png") if p.is_file()]
            mask_img = read_image(found[0]) if found else None
            mask = None if mask_img is None or mask_img.shape[:2] != dst.shape[:2] else mask_img[..., 0]
        lap_m, lap_d, grad_m, grad_d = laplacian(merged), laplacian(dst), gradient(merged), gradient(dst)
        interior = np.zeros(dst.shape[:2], bool)
        points = []
        for k, meta in enumerate(info.faces):
            seed = np.asarray(meta.source_landmarks, np.float32)
            dst_lm = self.relandmark(dst, seed)
            dst_lm = seed if dst_lm is None else dst_lm
            merged_lm = self.relandmark(merged, seed)
            region = face_region(mask, dst.shape, seed, meta.eyebrows_expand_mod)
            interior |= region.interior
            self.dst_emb.append(self.encoder.embed(dst, dst_lm))
            self.merged_emb.append(self.encoder.embed(merged, dst_lm if merged_lm is None else merged_lm))
            face = {"frame": merged_path.name, "frame_index": place, "face": k, "mask": region.source,
                    "refound": merged_lm is not None,
                    "sharpness_ratio": ratio(sharpness(lap_m, region.interior), sharpness(lap_d, region.interior)),
                    "seam_ratio": ratio(seam_step(grad_m, region.ring), seam_step(grad_d, region.ring))}
            if merged_lm is not None:
                yaw, pitch, roll = fidelity.pose_difference(merged_lm, dst_lm, meta.image_to_face_mat)
                face.update(landmark_error=fidelity.landmark_error(merged_lm, dst_lm), yaw_difference_deg=yaw,
                            pitch_difference_deg=pitch, roll_difference_deg=roll)
            self.faces.append(face)
            points.append(TrackPoint(place, dst_lm, merged_lm))
        self.points.append(points)
        self.flicker.feed(place, merged, dst, interior)


def _output_dir(given, merged_dir: Path, dst_dir: Path) -> Path:
    """--output-dir, else the merged folder's parent, else (when that parent holds the dst frames, as
    workspace/data_dst does) the folder above it: evaluate.png must never land among frames."""
    frame_dirs = {merged_dir.resolve(), dst_dir.resolve()}
    if given is not None:
        if Path(given).resolve() in frame_dirs:
            raise VisageError(f"--output-dir {given} holds frames; evaluate.png would be taken for one, "
                              f"choose another folder (e.g. the workspace)")
        return Path(given)
    parent = merged_dir.resolve().parent
    return parent.parent if parent in frame_dirs else parent


def _model_class(model_dir: Path, model: str | None) -> str:
    from models import model_names
    from models.model_files import list_models
    if model:
        return model
    found = [m for m in model_names(swaps_faces=True) if model_dir.is_dir() and list_models(model_dir, m)]
    if len(found) != 1:
        raise VisageError(f"{'no trained model' if not found else 'several model kinds'} in {model_dir}; "
                          f"pass --model {' or '.join(found or model_names(swaps_faces=True))}")
    return found[0]


def evaluate(merged_dir, dst_dir, src_aligned_dir, dst_aligned_dir=None, mask_dir=None, output_dir=None,
             model_dir=None, model: str | None = None, force_model_name: str | None = None, holdout_dir=None,
             cpu_only: bool = False, gpu_idxs: list[int] | None = None) -> Evaluation:
    """Measure the merged frames; write evaluate.json and evaluate.png; return the figures."""
    from core.evaluate import identity
    from core.evaluate.fidelity import Relandmarker
    from core.evaluate.stability import jitter, link_tracks
    from core.facelib.identity import SAME_PERSON, IdentityEncoder
    from core.workers import run_pipeline
    t0 = time.perf_counter()
    merged_dir, dst_dir, src_aligned_dir = Path(merged_dir), Path(dst_dir), Path(src_aligned_dir)
    dst_aligned_dir = Path(dst_aligned_dir) if dst_aligned_dir else dst_dir / "aligned"
    output_dir = _output_dir(output_dir, merged_dir, dst_dir)
    if not src_aligned_dir.is_dir():
        raise VisageError(f"src aligned folder not found: {src_aligned_dir}; extract the src faces first (step 4)")
    frames, merged_paths, places, notes = _match_frames(merged_dir, dst_dir, dst_aligned_dir)
    default_masks = merged_dir.with_name(merged_dir.name + "_mask")
    if mask_dir is not None and not Path(mask_dir).is_dir():
        raise VisageError(f"merge mask folder not found: {mask_dir}")
    masks = Path(mask_dir) if mask_dir is not None else (default_masks if default_masks.is_dir() else None)
    if masks is None:
        notes.append(f"no merge masks ({default_masks} is missing): the dst landmark hulls stand in for them")
    recon = None
    if model_dir is not None:               # first, so a bad model fails before the long part
        from models.predictor import FacePredictor
        predictor = FacePredictor(model_dir, _model_class(Path(model_dir), model), force_model_name, cpu_only,
                                  gpu_idxs)
        from core.evaluate.reconstruction import reconstruction
        recon = reconstruction(predictor, Path(holdout_dir or src_aligned_dir), holdout_dir is not None,
                               dst_aligned_dir if dst_aligned_dir.is_dir() else None)
        del predictor                       # releases the shared lock on the model
    encoder = IdentityEncoder()
    src_mean, n_src = identity.src_identity(encoder, src_aligned_dir)
    m = _Measurer(encoder, Relandmarker())
    jobs = list(zip(places, frames, merged_paths))
    for _ in run_pipeline(lambda job: m.frame(*job, masks), jobs, workers=1,
                          total=len(jobs), desc="Evaluating"):
        pass
    dst_mean = np.mean(m.dst_emb, axis=0)
    to_src = identity.distances(np.stack(m.merged_emb), src_mean)
    to_dst = identity.distances(np.stack(m.merged_emb), dst_mean)
    for face, ds, dd in zip(m.faces, to_src, to_dst):
        face.update(distance_to_src=float(ds), distance_to_dst=float(dd))
    stab_jitter, _ = jitter(link_tracks(m.points))
    summary = {
        "evaluate_version": 1,
        "inputs": {"merged_dir": str(merged_dir), "dst_dir": str(dst_dir), "dst_aligned_dir": str(dst_aligned_dir),
                   "src_aligned_dir": str(src_aligned_dir), "merged_mask_dir": str(masks) if masks else None,
                   "model_dir": str(model_dir) if model_dir else None},
        "frames": len(frames), "faces": len(m.faces),
        "identity": {**identity.summary(to_src, to_dst), "src_faces": n_src, "same_person_threshold": SAME_PERSON},
        "fidelity": _fidelity_summary(m.faces),
        "stability": {**m.flicker.summary(), **stab_jitter},
        "sharpness": {"ratio": _median(m.faces, "sharpness_ratio")},
        "seam": {"ratio": _median(m.faces, "seam_ratio")},
    }
    if recon is not None:
        summary["reconstruction"] = recon
    summary["notes"] = notes
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    page = _page(summary, m, frames, merged_paths, output_dir)
    from core.evaluate.report import write_report
    json_path, png_path = write_report(output_dir, summary, m.faces, page)
    return Evaluation(summary, m.faces, json_path, png_path, notes)


def _values(faces: list[dict], key: str) -> np.ndarray:
    v = np.array([f.get(key, math.nan) for f in faces], np.float64)
    return v[np.isfinite(v)]


def _median(faces: list[dict], key: str) -> float | None:
    v = _values(faces, key)
    return float(np.median(v)) if v.size else None


def _fidelity_summary(faces: list[dict]) -> dict:
    out = {"refound_share": float(np.mean([f["refound"] for f in faces])) if faces else None}
    for key in ("landmark_error", "yaw_difference_deg", "pitch_difference_deg", "roll_difference_deg"):
        v = _values(faces, key)
        out[key] = float(v.mean()) if v.size else None
    return out


def _worst(faces: list[dict], n: int) -> list[dict]:
    """The n faces ranked worst on average over: identity margin, landmark error, blur, seam."""
    if not faces:
        return []
    keys = {"margin": lambda f: f["distance_to_src"] - f["distance_to_dst"],
            "landmarks": lambda f: f.get("landmark_error", math.inf),
            "blur": lambda f: -f["sharpness_ratio"], "seam": lambda f: f["seam_ratio"]}
    ranks = np.zeros(len(faces))
    for get in keys.values():
        v = np.array([get(f) for f in faces], np.float64)
        v = np.where(np.isnan(v), np.inf, v)
        ranks += np.argsort(np.argsort(v, kind="stable"), kind="stable")
    return [faces[i] for i in np.argsort(-ranks, kind="stable")[:n]]


def _page(summary: dict, m: _Measurer, frames: list, merged_paths: list[Path], output_dir: Path) -> np.ndarray:
    import cv2

    from core.evaluate.report import render_page
    from core.facelib.face_type import FaceType
    from core.facelib.geometry import face_transform
    worst = []
    by_name = {p.name: (info, p) for info, p in zip(frames, merged_paths)}
    for face in _worst(m.faces, WORST_FACES):
        info, merged_path = by_name[face["frame"]]
        meta = info.faces[face["face"]]
        mat = face_transform(meta.source_landmarks, FaceType.WHOLE_FACE, THUMB)
        crops = [cv2.warpAffine(_read(p, "frame"), mat, (THUMB, THUMB), flags=cv2.INTER_LINEAR)
                 for p in (info.path, merged_path)]
        label = f"{face['frame']} d_src {face['distance_to_src']:.2f}"
        worst.append((crops[0], crops[1], label))
    flicker = list(zip(m.flicker.pairs, m.flicker.merged, m.flicker.dst))
    return render_page(summary, m.faces, flicker, worst, f"Visage evaluate: {output_dir}")
