"""`util`: DeepFaceLab's faceset utilities, one operation per run.

Flags mirror DeepFaceLab's `main.py util` (pack/unpack, save/restore metadata, recover
original filenames, landmark debug images, mask export), plus `--view-aligned` (a contact
sheet instead of opening an image viewer) and `--import-dfl-faceset` (DeepFaceLab faces to
Visage metadata through a restricted unpickler). Every file is written atomically, and
nothing is deleted before what replaces it is fully on disk.
"""
from __future__ import annotations

import argparse
import os
import secrets
from pathlib import Path

from core import interact
from core.errors import VisageError
from core.options import Option, Settings, add_flags

META_FILE = "meta.json"
META_FORMAT = "visage-faceset-metadata"
SHEET_MAX = 400
OPERATIONS = {
    "pack_faceset": "Pack the faces into DIR/faceset.pak (training reads it directly)",
    "unpack_faceset": "Write the faces of DIR/faceset.pak back as files, byte-identical",
    "save_faceset_metadata": "Save every face's metadata to DIR/meta.json before editing the images elsewhere",
    "restore_faceset_metadata": "Put the metadata of DIR/meta.json back into the (edited) faces",
    "recover_original_aligned_filename": "Rename faces to <source frame>_<n>.jpg",
    "add_landmarks_debug_images": "Write <name>_debug.jpg with the landmarks drawn, beside each face",
    "export_faceset_mask": "Write <name>_mask.jpg: the XSeg mask, else the polygons, else the landmark hull",
    "view_aligned": "Write a contact sheet (a grid of the faces) beside the folder, never into a frame folder: "
                    "workspace/data_src/aligned -> workspace/data_src_aligned_contact_sheet.jpg",
    "import_dfl_faceset": "Convert DeepFaceLab aligned faces (pickled metadata) to Visage metadata",
    "import_dfl_model": "Convert the DeepFaceLab models (SAEHD, Quick96) of --model-dir into Visage models, same "
                        "options, iteration and weights",
}
OPTIONS = (Option("delete_originals", bool, True, "pack: delete the face files once faceset.pak is written (the "
                  "pak holds every face byte for byte and training reads it directly); unpack: delete faceset.pak "
                  "once the files are written (a folder holding both is refused by training)",
                  prompt="Delete original files?"),)


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("util", parents=[parent], help="faceset utilities: pack, metadata, rename, debug, masks",
                       description="Faceset utilities (one operation per run).")
    p.add_argument("--input-dir", help="aligned faces folder, e.g. workspace/data_src/aligned (every operation "
                   "but --import-dfl-model)")
    p.add_argument("--model-dir", help="--import-dfl-model only: the DeepFaceLab model folder")
    ops = p.add_mutually_exclusive_group(required=True)
    for name, help_text in OPERATIONS.items():
        ops.add_argument("--" + name.replace("_", "-"), dest="operation", action="store_const", const=name,
                         help=help_text)
    add_flags(p, OPTIONS)
    p.add_argument("--output-dir", help="--import-dfl-faceset / --import-dfl-model only: write the converted faces "
                   "(same names) or models here instead of beside the originals")
    p.set_defaults(func=cli)


def cli(args: argparse.Namespace) -> int:
    if args.operation == "import_dfl_model":
        return _import_dfl_model(args.model_dir, args.output_dir)
    if not args.input_dir:
        raise VisageError(f"util --{args.operation.replace('_', '-')} needs --input-dir (the aligned faces folder)")
    folder = Path(args.input_dir)
    if not folder.is_dir():
        raise VisageError(f"input folder not found: {folder}")
    if args.operation == "import_dfl_faceset":
        return _import_dfl(folder, args.output_dir)
    if args.operation not in ("unpack_faceset", "view_aligned"):
        from core.faceset_pak import refuse_packed
        refuse_packed(folder)
    opts = Settings.from_args(args, OPTIONS)
    handlers = {"pack_faceset": lambda: _pack(folder, opts),
                "unpack_faceset": lambda: _unpack(folder, opts),
                "save_faceset_metadata": lambda: save_metadata(folder),
                "restore_faceset_metadata": lambda: restore_metadata(folder),
                "recover_original_aligned_filename": lambda: recover_filenames(folder),
                "add_landmarks_debug_images": lambda: add_debug_images(folder),
                "export_faceset_mask": lambda: export_masks(folder),
                "view_aligned": lambda: view_aligned(folder)}
    handlers[args.operation]()
    return 0


def list_faces(folder: Path) -> list[tuple[Path, object]]:
    """(path, FaceMeta) of every aligned face file in `folder`, in natural order.

    Images without face metadata (util's own _debug/_mask images, stray pictures) are not
    faces and are left out; an empty result is one clear error.
    """
    from core.faceset_pak import FACE_EXTS
    from core.facelib.face_meta import extract
    from core.fileio import list_images
    faces = []
    for p in list_images(folder, FACE_EXTS):
        try:
            data = p.read_bytes()
        except OSError as e:
            raise VisageError(f"could not read {p}: {e.strerror or e}") from e
        meta = extract(data, name=str(p))
        if meta is not None:
            faces.append((p, meta))
    if not faces:
        raise VisageError(f"no aligned faces in {folder}; extract faces first (steps 4 and 5)")
    return faces


def _progress(items: list, desc: str):
    from tqdm import tqdm
    return tqdm(items, desc=desc, unit="face", dynamic_ncols=True, disable=len(items) < 2)


# ---------------------------------------------------------------- pack / unpack

def _pack(folder: Path, opts: Settings) -> None:
    from core.faceset_pak import pack
    result = pack(folder)
    interact.log_info(f"Packed {len(result.packed)} faces into {result.pak_path}")
    if result.skipped:
        interact.log_info(f"Left {len(result.skipped)} image(s) without face metadata where they are")
    if opts["delete_originals"]:
        for p in result.packed:
            p.unlink()
        interact.log_info(f"Deleted the {len(result.packed)} packed face files")


def _unpack(folder: Path, opts: Settings) -> None:
    from core.faceset_pak import PAK_NAME, unpack
    written = unpack(folder)
    interact.log_info(f"Unpacked {len(written)} faces into {folder}")
    if opts["delete_originals"]:
        (folder / PAK_NAME).unlink()
        interact.log_info(f"Deleted {folder / PAK_NAME}")


# ---------------------------------------------------------------- metadata save / restore

def save_metadata(folder: Path) -> Path:
    """Write DIR/meta.json: each face's image size and metadata (face_meta's own JSON form)."""
    from core.facelib.face_meta import jpeg_size
    from core.fileio import atomic_write_json
    faces = {}
    for p, meta in list_faces(folder):
        h, w = jpeg_size(p.read_bytes(), name=str(p))
        faces[p.name] = {"shape": [h, w], "meta": meta.to_dict()}
    out = folder / META_FILE
    atomic_write_json(out, {"format": META_FORMAT, "version": 1, "faces": faces})
    interact.log_info(f"Saved the metadata of {len(faces)} faces to {out}. Edit the images (keep their names "
                      "and the folder), then run util --restore-faceset-metadata")
    return out


def _load_saved(path: Path) -> dict:
    from core.fileio import read_json
    if not path.is_file():
        raise VisageError(f"no {META_FILE} in {path.parent}; run util --save-faceset-metadata before "
                          "editing the faces")
    data = read_json(path)
    if not (isinstance(data, dict) and data.get("format") == META_FORMAT and isinstance(data.get("faces"), dict)):
        raise VisageError(f"{path} is not a Visage faceset metadata file")
    if not isinstance(data.get("version"), int) or data["version"] > 1:
        raise VisageError(f"{path} is from a newer Visage (version {data.get('version')!r}); update Visage")
    return data["faces"]


def restore_metadata(folder: Path) -> dict[str, list[str]]:
    """Re-embed meta.json into the faces; an image of another size is scaled back first.

    A face whose size is unchanged keeps its image bytes; a resized one is scaled back with
    Lanczos and saved at quality 100 (as DeepFaceLab). meta.json is deleted only when every
    face it lists was restored, so a missing face can still be restored later.
    """
    import cv2
    import numpy as np
    from core.facelib.face_meta import MAX_FACE_SIDE, FaceMeta, embed
    from core.fileio import atomic_write_bytes, encode_image
    path = folder / META_FILE
    saved = _load_saved(path)
    done: list[str] = []
    rescaled: list[str] = []
    missing: list[str] = []
    for name, entry in _progress(list(saved.items()), "Restoring"):
        target = folder / name
        if Path(name).name != name or not target.is_file():
            missing.append(name)
            continue
        try:
            meta = FaceMeta.from_dict(entry["meta"])
            h, w = (int(v) for v in entry["shape"][:2])
            if not (0 < h <= MAX_FACE_SIDE and 0 < w <= MAX_FACE_SIDE):
                raise ValueError(f"image size {w}x{h} is out of range")
        except (KeyError, TypeError, ValueError, VisageError) as e:
            raise VisageError(f"{path}: the entry for {name} is damaged ({e}); nothing more was changed") from None
        data = target.read_bytes()
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
        if img is None:
            raise VisageError(f"{target} cannot be decoded as an image; save it again as JPEG and rerun")
        if img.shape[:2] != (h, w):
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LANCZOS4)
            rescaled.append(name)
            data = encode_image(img, ".jpg", 100)
        try:
            out = embed(data, meta, name=str(target))
        except VisageError:                       # e.g. saved as PNG under a .jpg name
            out = embed(encode_image(img, ".jpg", 100), meta, name=str(target))
        atomic_write_bytes(target, out)
        done.append(name)
    interact.log_info(f"Restored the metadata of {len(done)} faces ({len(rescaled)} scaled back to their saved size)")
    if missing:
        interact.log_warn(f"{len(missing)} face(s) listed in {META_FILE} are not in {folder}: "
                          f"{', '.join(missing[:20])}{' ...' if len(missing) > 20 else ''}; "
                          f"{META_FILE} was kept so they can be restored later")
    else:
        path.unlink()
    return {"restored": done, "rescaled": rescaled, "missing": missing}


# ---------------------------------------------------------------- rename

def recover_filenames(folder: Path) -> int:
    """Rename faces to `<source stem>_<n><ext>`, n counting the faces of each frame in current order.

    Two phases (every face to a unique temporary name, then to its final name) so that no
    rename ever overwrites a face, whatever the old and new names are.
    """
    faces = list_faces(folder)
    counts: dict[str, int] = {}
    plan = []
    for p, meta in faces:
        stem = Path(meta.source_filename).stem
        n = counts.get(stem, 0)
        counts[stem] = n + 1
        plan.append((p, folder / f"{stem}_{n}{p.suffix}"))
    moves = [(src, dst) for src, dst in plan if src.name != dst.name]
    moving = {src.name for src, _ in moves}
    blocked = [dst.name for _, dst in moves if dst.exists() and dst.name not in moving]
    if blocked:
        raise VisageError(f"cannot rename: {folder} already holds {blocked[0]}, which is not a face to rename; "
                          "move it away and run again (nothing was renamed)")
    token = secrets.token_hex(4)
    staged = []
    for i, (src, dst) in enumerate(moves):
        tmp = folder / f"_visage_renaming_{token}_{i:06d}{src.suffix}"
        os.rename(src, tmp)
        staged.append((tmp, dst))
    for tmp, dst in staged:
        if dst.exists():                          # cannot happen after the check; never overwrite
            raise VisageError(f"{dst} appeared during the rename; {tmp.name} keeps that face")
        os.rename(tmp, dst)
    interact.log_info(f"Renamed {len(moves)} faces to <source frame>_<n>; "
                      f"{len(faces) - len(moves)} already had their original names")
    return len(moves)


# ---------------------------------------------------------------- debug images, masks, contact sheet

def add_debug_images(folder: Path) -> int:
    """`<stem>_debug.jpg` (quality 50): landmarks in green, the default hull mask's outline in red.

    Written with plain OpenCV encoding, so they carry no face metadata and are never taken
    for faces.
    """
    import cv2
    import numpy as np
    from core.facelib.draw import draw_landmarks
    from core.facelib.face_meta import read_face
    from core.fileio import write_image
    from core.imagelib.masks import hull_mask
    faces = list_faces(folder)
    for p, _ in _progress(faces, "Debug images"):
        img, meta = read_face(p)
        t = max(1, round(img.shape[0] / 256))
        hull = (hull_mask(img.shape, meta.landmarks, meta.eyebrows_expand_mod)[..., 0] > 0.5).astype(np.uint8)
        contours, _ = cv2.findContours(hull, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(img, contours, -1, (0, 0, 255), t, cv2.LINE_AA)
        draw_landmarks(img, meta.landmarks, (0, 255, 0), t)
        write_image(p.with_name(f"{p.stem}_debug.jpg"), img, jpeg_quality=50)
    interact.log_info(f"Wrote {len(faces)} landmark debug images (<name>_debug.jpg) in {folder}; "
                      "they have no face metadata, so training skips them")
    return len(faces)


def face_mask(meta, size: int) -> tuple[object, str]:
    """(float32 size x size mask, where it came from) for one face."""
    from core.facelib.xseg_polys import polys_mask
    from core.imagelib.masks import decode_xseg_mask, hull_mask
    if meta.xseg_mask is not None:
        return decode_xseg_mask(meta.xseg_mask, size)[..., 0], "xseg"
    if meta.seg_ie_polys:
        return polys_mask((size, size), meta.seg_ie_polys), "polygons"
    return hull_mask((size, size), meta.landmarks, meta.eyebrows_expand_mod)[..., 0], "hull"


def export_masks(folder: Path) -> dict[str, int]:
    """`<stem>_mask.jpg` (grey) per face; returns how many masks came from each source."""
    import numpy as np
    from core.facelib.face_meta import jpeg_size
    from core.fileio import write_image
    faces = list_faces(folder)
    sources = {"xseg": 0, "polygons": 0, "hull": 0}
    for p, meta in _progress(faces, "Masks"):
        h, w = jpeg_size(p.read_bytes(), name=str(p))
        mask, source = face_mask(meta, max(h, w))
        sources[source] += 1
        write_image(p.with_name(f"{p.stem}_mask.jpg"), np.round(mask[:h, :w] * 255).astype(np.uint8))
    interact.log_info(f"Wrote {len(faces)} masks (<name>_mask.jpg) in {folder}: {sources['xseg']} from XSeg masks, "
                      f"{sources['polygons']} from XSeg polygons, {sources['hull']} from the landmark hull")
    return sources


def view_aligned(folder: Path, cell: int = 128) -> Path:
    """Write the contact sheet (`contact_sheet_path`): all faces, or an even spread of SHEET_MAX."""
    import cv2
    import numpy as np
    from core.faceset_pak import PAK_NAME, PakReader
    from core.facelib.draw import contact_sheet
    from core.fileio import write_image
    from core.frame_sequence import contact_sheet_path
    pak = folder / PAK_NAME
    if pak.is_file():
        reader = PakReader(pak)
        items = [(e.name, lambda e=e: reader.read(e.name)) for e in reader.entries]
    else:
        reader = None
        items = [(p.name, p.read_bytes) for p, _ in list_faces(folder)]
    try:
        if len(items) > SHEET_MAX:
            items = [items[i] for i in np.unique(np.linspace(0, len(items) - 1, SHEET_MAX).round().astype(int))]
        images, labels = [], []
        for name, read in _progress(items, "Contact sheet"):
            img = cv2.imdecode(np.frombuffer(read(), np.uint8), cv2.IMREAD_REDUCED_COLOR_2)
            if img is not None:
                images.append(img)
                labels.append(name)
    finally:
        if reader is not None:
            reader.close()
    out = contact_sheet_path(folder)
    write_image(out, contact_sheet(images, cell=cell, labels=labels), jpeg_quality=90)
    interact.log_info(f"Contact sheet of {len(images)} faces: {out}")
    return out


# ---------------------------------------------------------------- DeepFaceLab import

def _import_dfl(folder: Path, output_dir: str | None) -> int:
    from core.facelib.dfl_import import import_faceset
    report = import_faceset(folder, output_dir)
    for line in report.refused + report.failed:
        interact.log_err(line)
    where = output_dir or folder
    interact.log_info(f"Converted {len(report.converted)} DeepFaceLab faces to Visage metadata in {where}")
    if report.already_visage:
        interact.log_info(f"{len(report.already_visage)} face(s) already had Visage metadata")
    if report.not_dfl:
        shown = ", ".join(report.not_dfl[:10]) + (" ..." if len(report.not_dfl) > 10 else "")
        interact.log_info(f"Skipped {len(report.not_dfl)} file(s) that are not DeepFaceLab faces: {shown}")
    if report.refused or report.failed:
        interact.log_warn(f"{len(report.refused)} face(s) refused and {len(report.failed)} damaged; "
                          "they were left unchanged")
        return 2
    return 0


def _import_dfl_model(model_dir: str | None, output_dir: str | None) -> int:
    from mainscripts.dfl_model_import import import_dfl_models
    if not model_dir:
        raise VisageError("util --import-dfl-model needs --model-dir (the DeepFaceLab model folder)")
    lines, errors = import_dfl_models(Path(model_dir), Path(output_dir) if output_dir else None)
    for line in lines:
        interact.log_info(line)
    for line in errors:
        interact.log_err(line)
    return 2 if errors else 0
