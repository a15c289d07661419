"""`xseg`: DeepFaceLab's XSeg steps over an aligned faces folder.

editor (label include / exclude polygons), fetch (copy labelled faces to DIR_xseg),
remove-labels (drop the polygons), apply (write a trained XSeg model's mask into every
face), remove (drop the trained masks) and generic-apply (a whole-face mask from the face
mesh, no labelling and no downloaded weights). Every face is updated in place with an
atomic write that keeps the image bytes identical; nothing is deleted before its copy is
on disk.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from core import interact
from core.errors import VisageError

BOOL = argparse.BooleanOptionalAction
COMMANDS = {
    "editor": "label faces: include / exclude polygons (an OpenCV window)",
    "fetch": "copy the labelled faces into <input-dir>_xseg",
    "remove-labels": "remove the XSeg polygons from every face",
    "apply": "write a trained XSeg model's mask into every face",
    "remove": "remove the trained XSeg masks from every face",
    "generic-apply": "give every face a whole-face mask from the face mesh (no model needed)",
}


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("xseg", help="XSeg masks: editor, fetch, remove-labels, apply, remove, generic-apply")
    cmds = p.add_subparsers(dest="xseg_command", required=True, metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        c = cmds.add_parser(name, parents=[parent], help=help_text, description=help_text[0].upper() + help_text[1:])
        c.add_argument("--input-dir", required=True, help="aligned faces folder, e.g. workspace/data_dst/aligned")
        if name == "apply":
            c.add_argument("--model-dir", required=True, help="folder of the trained XSeg model (workspace/model)")
            c.add_argument("--force-model-name", help="use this XSeg model without the picker")
        if name == "editor":
            c.add_argument("--model-dir", help="show a trained XSeg model's live mask in the XSeg views")
        if name == "fetch":
            c.add_argument("--delete-originals", action=BOOL, default=None,
                           help="delete the labelled faces from the input folder once copied (asked; default no)")
        c.set_defaults(func=cli)


def cli(args: argparse.Namespace) -> int:
    from core.faceset_pak import refuse_packed
    folder = Path(args.input_dir)
    if not folder.is_dir():
        raise VisageError(f"input folder not found: {folder}")
    refuse_packed(folder)
    cmd = args.xseg_command
    if cmd == "editor":
        return editor(folder, getattr(args, "model_dir", None))
    if cmd == "fetch":
        fetch(folder, args.delete_originals)
    elif cmd == "remove-labels":
        remove_field(folder, "seg_ie_polys")
    elif cmd == "remove":
        remove_field(folder, "xseg_mask")
    elif cmd == "generic-apply":
        from mainscripts.xseg.xseg_generic import generic_apply
        generic_apply(folder)
    else:
        from mainscripts.xseg.xseg_apply import apply_model
        apply_model(folder, Path(args.model_dir), args.force_model_name)
    return 0


def faces_in(folder: Path) -> list[tuple[Path, object]]:
    from mainscripts.util import list_faces
    return list_faces(folder)


def progress(items: list, desc: str):
    from tqdm import tqdm
    return tqdm(items, desc=desc, unit="face", dynamic_ncols=True, disable=len(items) < 2)


def editor(folder: Path, model_dir: str | None = None) -> int:
    from mainscripts.xseg.xseg_editor import run_editor
    faces = [p for p, _ in faces_in(folder)]
    predict = None
    if model_dir:
        from mainscripts.xseg.xseg_apply import load_predictor
        predict = load_predictor(Path(model_dir), None).mask_for_face
    state = run_editor(faces, predict=predict)
    trashed = len(faces) - state.n_faces
    interact.log_info(f"XSeg editor closed at face {state.index + 1} of {state.n_faces}"
                      + (f"; {trashed} face(s) moved to {folder.name}_trash" if trashed else ""))
    return 0


def fetch(folder: Path, delete: bool | None) -> list[Path]:
    """Copy every face with polygons to `<folder>_xseg` (byte for byte); optionally delete the originals."""
    labelled = [p for p, meta in faces_in(folder) if meta.seg_ie_polys]
    out = folder.parent / f"{folder.name}_xseg"
    out.mkdir(exist_ok=True)
    from core.fileio import atomic_write_bytes
    for p in progress(labelled, "Fetching"):
        atomic_write_bytes(out / p.name, p.read_bytes())
    interact.log_info(f"Copied {len(labelled)} labelled faces to {out}")
    if labelled and (delete if delete is not None else interact.input_bool("Delete original files?", False)):
        for p in labelled:
            p.unlink()
        interact.log_info(f"Deleted the {len(labelled)} labelled faces from {folder}")
    return [out / p.name for p in labelled]


def remove_field(folder: Path, field: str) -> int:
    """Drop `seg_ie_polys` (the labels) or `xseg_mask` (the trained mask) from every face that has it."""
    from core.facelib.face_meta import update_meta
    what = "XSeg polygons (labels)" if field == "seg_ie_polys" else "trained XSeg masks"
    having = [(p, m) for p, m in faces_in(folder) if getattr(m, field)]
    if not having:
        interact.log_info(f"No face in {folder} has {what}; nothing to remove")
        return 0
    if not interact.input_bool(f"Remove the {what} of {len(having)} faces in {folder}?", True):
        return 0
    for p, meta in progress(having, "Removing"):
        setattr(meta, field, [] if field == "seg_ie_polys" else None)
        update_meta(p, meta)
    interact.log_info(f"Removed the {what} of {len(having)} faces")
    return len(having)

