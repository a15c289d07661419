"""Shared, session-scoped fixtures: decoded sample clips and one extraction of a real clip.

Decoding and extraction are the slow parts of the face tests, so each clip is decoded to
PNG frames once per session and the WolfgangLanger clip is extracted once and shared.
The ffmpeg binary comes from imageio-ffmpeg (there is no system ffmpeg); core/video.py is
deliberately not used here so that these fixtures do not depend on it.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from core.sample_media import sample_path

# Commands write a log beside the workspace they work on (core/run_log.py); the tests' logs go here
# instead, so that no test's folder gains a logs/ it does not expect. tests/core/test_run_log.py unsets it.
os.environ.setdefault("VISAGE_LOG_DIR", os.path.join(os.environ.get("TMPDIR", "/tmp"), f"visage_test_logs_{os.getpid()}"))


def decode_frames(video: Path, out: Path) -> None:
    """Every frame of `video` as out/00000.png, 00001.png, ... (numbered from 0).

    `-fps_mode passthrough` writes each decoded frame once: the default constant-rate
    output duplicates frames of variable-rate clips (noface_face.mov would give 765 PNGs
    instead of its 169 frames), which would shift every frame number quoted in the tests.
    """
    from imageio_ffmpeg import get_ffmpeg_exe
    out.mkdir(parents=True, exist_ok=True)
    cmd = [get_ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(video), "-map", "0:v:0",
           "-fps_mode", "passthrough", "-start_number", "0", str(out / "%05d.png")]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not any(out.glob("*.png")):
        raise RuntimeError(f"ffmpeg could not decode {video}: {proc.stderr.strip()[-500:]}")


FramesFn = Callable[..., Path]


@pytest.fixture(scope="session")
def frames(tmp_path_factory) -> FramesFn:
    """frames(name, every=1, count=0) -> folder of PNG frames of the sample clip `name`.

    The clip is decoded once per session. `every`/`count` give a subsampled folder (every
    n-th frame / the first `count` frames) whose files keep their original frame numbers,
    so a test can still name the frame it is talking about.
    """
    cache: dict[tuple[str, int, int], Path] = {}

    def get(name: str, every: int = 1, count: int = 0) -> Path:
        full_key = (name, 1, 0)
        if full_key not in cache:
            folder = tmp_path_factory.mktemp(f"frames_{Path(name).stem}")
            decode_frames(sample_path(name), folder)
            cache[full_key] = folder
        key = (name, every, count)
        if key not in cache:
            files = sorted(cache[full_key].glob("*.png"))
            files = files[:count] if count else files
            folder = tmp_path_factory.mktemp(f"frames_{Path(name).stem}_e{every}_n{count}")
            for f in files[::every]:
                os.link(f, folder / f.name)
            cache[key] = folder
        return cache[key]
    return get


@dataclass
class Extraction:
    frames_dir: Path
    output_dir: Path
    report: object          # mainscripts.extract.extractor.ExtractReport
    image_size: int


@pytest.fixture(scope="session")
def wolfgang_extraction(frames, tmp_path_factory) -> Extraction:
    """WolfgangLanger_Pexels.mp4 (472 frames, one woman) extracted as whole_face at 128 px."""
    from core.facelib.face_type import FaceType
    from mainscripts.extract.extractor import extract
    src = frames("WolfgangLanger_Pexels.mp4")
    out = tmp_path_factory.mktemp("wolfgang") / "aligned"
    report = extract(src, out, face_type=FaceType.WHOLE_FACE, image_size=128, workers=2)
    return Extraction(src, out, report, 128)


def _extract_faceset(frames_dir: Path, out: Path, face_type_name: str, size: int = 128) -> Path:
    """Extract `frames_dir` into `out` (2 workers) and return `out`; fails if no face was found."""
    from core.facelib.face_type import face_type_from_str
    from mainscripts.extract.extractor import extract
    report = extract(frames_dir, out, face_type=face_type_from_str(face_type_name), image_size=size,
                     jpeg_quality=90, workers=2)
    if not report.faces:
        raise RuntimeError(f"no faces extracted from {frames_dir}")
    return out


@pytest.fixture(scope="session")
def src_faceset(frames, tmp_path_factory) -> Path:
    """12 whole_face 128 px faces of the woman (every 40th frame of WolfgangLanger_Pexels.mp4)."""
    return _extract_faceset(frames("WolfgangLanger_Pexels.mp4", every=40),
                            tmp_path_factory.mktemp("faceset_src") / "aligned", "whole_face")


@pytest.fixture(scope="session")
def dst_faceset(frames, tmp_path_factory) -> Path:
    """12 whole_face 128 px faces of the man (every 6th frame of single_face.mp4)."""
    return _extract_faceset(frames("single_face.mp4", every=6),
                            tmp_path_factory.mktemp("faceset_dst") / "aligned", "whole_face")


@pytest.fixture(scope="session")
def full_faceset(frames, tmp_path_factory) -> Path:
    """3 full_face 128 px faces of the woman (every 160th frame): narrower than whole_face."""
    return _extract_faceset(frames("WolfgangLanger_Pexels.mp4", every=160),
                            tmp_path_factory.mktemp("faceset_full") / "aligned", "full_face")


@pytest.fixture(scope="session")
def tiny_model(src_faceset, dst_faceset, tmp_path_factory) -> Path:
    """A tiny SAEHD liae-ud 64 named `t`, saved at iterations 1 and 2 (copy it before changing it)."""
    from tests.support.train_support import train_tiny
    return train_tiny(src_faceset, dst_faceset, tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def display():
    """One Xvfb server for the whole test run, as $DISPLAY (window tests skip without Xvfb).

    Session-wide because Qt keeps its X connection for the life of the process and exits
    when that server goes away: a server per test would kill the test process at random.
    """
    import shutil
    import time
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed")
    num = 90 + os.getpid() % 9
    server = subprocess.Popen(["Xvfb", f":{num}", "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = f":{num}"
    yield f":{num}"
    server.terminate()
    server.wait()
    if old is None:
        os.environ.pop("DISPLAY", None)
    else:
        os.environ["DISPLAY"] = old


@pytest.fixture(autouse=True)
def _float32_policy_after_each_test():
    """Models set Keras' global precision policy (bf16 on this kind of CPU); later tests expect fp32."""
    yield
    import sys
    if "keras" in sys.modules:
        sys.modules["keras"].mixed_precision.set_global_policy("float32")


@pytest.fixture(autouse=True)
def _restore_interactive():
    """Commands run with --non-interactive switch prompting off process-wide; switch it back."""
    yield
    from core import interact
    interact.set_non_interactive(False)


@pytest.fixture
def faces(src_faceset, tmp_path) -> Path:
    """A private copy of src_faceset (12 faces of the woman) that a test may change."""
    import shutil
    folder = tmp_path / "aligned"
    shutil.copytree(src_faceset, folder)
    return folder


@pytest.fixture
def woman(src_faceset, tmp_path) -> Path:
    """12 tagged faces of the woman (w_<frame>_0) in a fresh folder (the sort tests)."""
    from tests.support.sort_support import copy_tagged
    folder = tmp_path / "aligned"
    copy_tagged(src_faceset, folder, "w_")
    return folder


@pytest.fixture
def mixed(src_faceset, dst_faceset, tmp_path) -> Path:
    """12 tagged faces of the woman (w_*) and 12 of the man (m_*) (the sort tests)."""
    from tests.support.sort_support import copy_tagged
    folder = tmp_path / "aligned"
    copy_tagged(src_faceset, folder, "w_")
    copy_tagged(dst_faceset, folder, "m_")
    return folder
