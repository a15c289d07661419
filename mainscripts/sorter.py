"""`sort`: DeepFaceLab's faceset sort tool, plus sorting by identity.

`main.py sort --input-dir workspace/data_src/aligned --by blur` measures every face (both
cores, a progress bar), orders them, moves rejected faces to `<dir>_trash`, and renames
the rest 00000.jpg, 00001.jpg... in the new order. The face metadata is inside each JPEG,
so nothing else changes. Without --by the method is asked with DeepFaceLab's numbered
menu; method options (--target, --similar, --ref) are asked only when the method needs
them. Files that cannot be read or carry no face metadata are listed at the end and left
where they are. The methods themselves live in core/sorting/.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path

from core import interact
from core.errors import VisageError
from core.options import WORKERS, Option, Settings, add_flags
from core.sorting.methods import BY_NAME, METHODS, NAMES, SortOptions

DEFAULT_METHOD = "blur"
METHOD_HELP = {
    "blur": "sharpest first (CPBD edge-width sharpness inside the face hull)",
    "motion-blur": "sharpest first by Laplacian variance (ksize 11) inside the face hull; catches motion blur",
    "face-yaw": "by head turn: faces turned toward the image's left first, toward its right last",
    "face-pitch": "by head tilt: faces looking up first, looking down last",
    "face-source-rect-size": "largest face in the source frame first",
    "hist": "similar colour histograms next to each other (greedy nearest neighbour)",
    "hist-dissim": "most unusual grey histogram (of the face hull) first",
    "brightness": "brightest first",
    "hue": "highest mean hue first",
    "black": "fewest black (zero) pixels first",
    "origname": "back to source-frame order",
    "oneface": "faces from frames with more than one face go to trash",
    "absdiff": "similar pixels next to each other (greedy nearest neighbour on 32x32 grey thumbnails)",
    "final-by-blur": "keep the best --target faces covering all head poses, sharpest per pose; rest to trash",
    "final-by-size": "as final-by-blur, choosing by face size in the source frame (faster)",
    "id-ref": "most like the --ref person first; other people (distance > --threshold) to trash",
    "id-group": "group faces by person (biggest group first) so each person's faces are contiguous",
}


SCHEMA = (
    Option("by", str, DEFAULT_METHOD, "sort method (asked with DeepFaceLab's numbered menu); the methods are listed "
           "below", choices=NAMES, asked=False),
    Option("target", int, 2000, "final-by-blur/final-by-size: how many faces to keep; the rest go to the trash "
           "folder. DeepFaceLab's advice: about 2000 for a src faceset", prompt="Target number of faces?",
           lo=1, hi=10**7),
    Option("similar", bool, True, "absdiff: put similar faces next to each other, or (--no-similar) dissimilar ones",
           prompt="Sort by similar?"),
    Option("threshold", float, 0.6, "id-ref/id-group: identity distance below which two faces are the same person "
           "(dlib's calibration; lower = stricter); distances lie in 0..2", lo=0.01, hi=1.99, asked=False),
    WORKERS,
)


@dataclass
class SortReport:
    method: str
    faces: int = 0
    renamed: int = 0
    trashed: int = 0
    trash_dir: Path | None = None
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    groups: list[int] | None = None      # id-group: sizes of the person groups, in file order
    seconds: float = 0.0


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("sort", parents=[parent], help="sort aligned faces in place (DeepFaceLab's sort methods)",
                       description="Sort a folder of aligned faces: rename them 00000.jpg... in the new order; "
                                   "rejected faces go to <dir>_trash.",
                       epilog="methods:\n" + "\n".join(f"  {n:22s} {METHOD_HELP[n]}" for n in NAMES),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input-dir", required=True, help="folder of aligned faces, e.g. workspace/data_src/aligned")
    add_flags(p, SCHEMA, example="by=face-yaw")
    p.add_argument("--ref", action="append", default=[], metavar="PHOTO",
                   help="id-ref: reference photo, aligned face, or folder of them (repeatable)")
    p.set_defaults(func=cli)


def ask_method() -> str:
    """DeepFaceLab's numbered menu of sort methods."""
    interact.log_info("Choose sorting method:")
    for i, m in enumerate(METHODS):
        interact.log_info(f"[{i}] {m.description}")
    idx = interact.input_int("Sorting method", NAMES.index(DEFAULT_METHOD), (0, len(METHODS) - 1),
                             help_text="\n".join(f"[{i}] {m.name}: {METHOD_HELP[m.name]}"
                                                 for i, m in enumerate(METHODS)))
    return METHODS[idx].name


def resolve_options(method: str, opts: Settings, refs: list[str]) -> SortOptions:
    """The method's own options, from flags or asked (only the ones this method uses)."""
    out = SortOptions(threshold=opts["threshold"])
    if method.startswith("final-"):
        out.target = opts["target"]
    elif method == "absdiff":
        out.similar = opts["similar"]
    elif method == "id-ref":
        refs = list(refs)
        if not refs and interact.is_interactive():
            answer = interact.input_str("Reference photo (path; several separated by ;)", "",
                                        help_text="A photo of the person to keep (any image with one clear "
                                                  "face), an aligned face, or a folder of them")
            refs = [r.strip() for r in answer.split(";") if r.strip()]
        if not refs:
            raise VisageError("id-ref needs a reference photo of the person to keep: pass --ref PHOTO")
        from core.sorting.by_identity import reference_embeddings
        out.references = reference_embeddings(refs)
    return out


def sort_folder(input_dir: str | Path, method: str, opts: SortOptions | None = None,
                workers: int = 0) -> SortReport:
    """Sort the faces of `input_dir` in place by `method`; returns what was done."""
    from core.fileio import list_images
    from core.sorting.features import load_faces
    from core.sorting.renaming import apply_sort
    from core.workers import default_workers
    start = time.monotonic()
    input_dir = Path(input_dir)
    if method not in BY_NAME:
        raise VisageError(f"unknown sort method {method!r}; choose one of: {', '.join(NAMES)}")
    m = BY_NAME[method]
    opts = opts or SortOptions()
    if method == "id-ref" and opts.references is None:
        raise VisageError("id-ref needs a reference photo of the person to keep: pass --ref PHOTO")
    files = list_images(input_dir)
    if not files:
        raise VisageError(f"no images in {input_dir}; extract faces into it first (main.py extract)")
    interact.log_info(f"Sorting {len(files)} files in {input_dir} by {method} ...")
    records, skipped = load_faces(files, m.features, workers or default_workers())
    report = SortReport(method, faces=len(records), skipped=skipped)
    if not records:
        raise VisageError(f"no aligned faces in {input_dir}: none of its {len(files)} images carries Visage face "
                          "metadata (first: " + (skipped[0] if skipped else "?") + ")")
    result = m.run(records, opts)
    report.notes, report.groups = result.notes, result.groups
    if result.change:
        done = apply_sort(input_dir, [r.path for r in result.order], [r.path for r in result.trash])
        report.renamed, report.trashed, report.trash_dir = done.renamed, done.trashed, done.trash_dir
        if done.skipped_names:
            report.notes.append(f"names held by files outside the sort were skipped: {', '.join(done.skipped_names)}")
    report.seconds = time.monotonic() - start
    return report


def print_report(r: SortReport) -> None:
    for note in r.notes:
        interact.log_info(note)
    line = f"Sorted {r.faces} faces by {r.method} in {r.seconds:.1f} s: {r.renamed} renamed in the new order"
    if r.trashed:
        line += f", {r.trashed} moved to {r.trash_dir}"
    interact.log_info(line)
    if r.skipped:
        interact.log_warn(f"{len(r.skipped)} file(s) left in place untouched:")
        for s in r.skipped:
            interact.log_warn(f"  {s}")


def cli(args: argparse.Namespace) -> int:
    from core.faceset_pak import refuse_packed
    from core.fileio import list_images
    input_dir = Path(args.input_dir)
    opts = Settings.from_args(args, SCHEMA)
    refuse_packed(input_dir)
    if not list_images(input_dir):        # fail on a bad folder before asking anything
        raise VisageError(f"no images in {input_dir}; extract faces into it first (main.py extract)")
    method = opts["by"] if "by" in opts.given or not interact.is_interactive() else ask_method()
    report = sort_folder(input_dir, method, resolve_options(method, opts, args.ref), workers=opts["workers"])
    print_report(report)
    return 0
