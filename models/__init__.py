"""Trainable models, found by name (DeepFaceLab's --model values)."""
from __future__ import annotations

MODELS = {"SAEHD": "models.saehd:SAEHDModel", "Quick96": "models.quick96:Quick96Model",
          "XSeg": "models.xseg:XSegModel"}


def model_class(name: str):
    import importlib
    from core.errors import VisageError
    key = {k.lower(): k for k in MODELS}.get(name.lower())
    if key is None:
        raise VisageError(f"unknown model {name}; choose one of {', '.join(MODELS)}")
    module, cls = MODELS[key].split(":")
    return getattr(importlib.import_module(module), cls)
