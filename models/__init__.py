"""Trainable models, found by name (DeepFaceLab's --model values).

The one list of models: every command's --model choices, the trainer's help, bench and the
merger read it from here (`MODELS`, `model_names()`).
"""
from __future__ import annotations

MODELS = {"SAEHD": "models.saehd:SAEHDModel", "AMP": "models.amp:AMPModel", "Quick96": "models.quick96:Quick96Model",
          "XSeg": "models.xseg:XSegModel"}


def model_class(name: str):
    import importlib
    from core.errors import VisageError
    key = {k.lower(): k for k in MODELS}.get(name.lower())
    if key is None:
        raise VisageError(f"unknown model {name}; choose one of {', '.join(MODELS)}")
    module, cls = MODELS[key].split(":")
    return getattr(importlib.import_module(module), cls)


def model_names(swaps_faces: bool = False) -> list[str]:
    """The registered models; with `swaps_faces`, only those merge and export can use (not XSeg)."""
    return [n for n in MODELS if not swaps_faces or model_class(n).SWAPS_FACES]
