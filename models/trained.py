"""A trained model read back for use (merge, export): its class, saved options and weights.

No optimizer, no sample workers, nothing asked but which model (DeepFaceLab's picker) when
several are saved. The network comes from the model class's own `build_parts`, so merge and
export never rebuild a model's parts themselves.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import VisageError


@dataclass
class TrainedModel:
    cls: type
    name: str
    options: dict[str, Any]
    parts: dict
    iteration: int
    precision: str
    lock: Any                     # shared lock on the model folder, held while this object lives

    @property
    def title(self) -> str:
        return f"{self.name}_{self.cls.CLASS_NAME}"

    def inference(self):
        """The model's inference graph (ModelBase.build_inference) over the loaded weights."""
        return self.cls.build_inference(self.options, self.parts)

    def release(self) -> None:
        self.lock.release()


def load_trained(model_dir: str | Path, model: str, force_name: str | None = None, what: str = "merge",
                 precision: str | None = None) -> TrainedModel:
    """Open a saved model for `what` (merge, export): a clear line when there is none or it has no weights.

    `precision` overrides the saved one (export builds its graph in fp32).
    """
    from core.nn.backend import set_precision
    from models import model_class
    from models.model_files import ModelFiles, list_models, pick_model
    cls = model_class(model)
    model_dir = Path(model_dir)
    names = list_models(model_dir, cls.CLASS_NAME) if model_dir.is_dir() else []
    if not names:
        raise VisageError(f"no trained {cls.CLASS_NAME} model in {model_dir}; train one first (step 6)")
    name = pick_model(model_dir, cls.CLASS_NAME, force_name)
    if name not in names:
        raise VisageError(f"no {cls.CLASS_NAME} model named '{name}' in {model_dir}; "
                          f"saved models: {', '.join(names)}")
    files = ModelFiles(model_dir, name, cls.CLASS_NAME)
    lock = files.lock(exclusive=False, what=what)
    try:
        generation = files.load_generation()
        if generation is None:
            raise VisageError(f"model {name}_{cls.CLASS_NAME} in {model_dir} has no complete save; train it first")
        options = cls.saved_options(generation.data, files.data_path)
        used = set_precision(precision or options.get("precision", "auto"))
        parts = cls.build_parts(options)
        missing = files.load_parts(parts)
        if missing:
            raise VisageError(f"model {name}_{cls.CLASS_NAME} has no saved weights for {', '.join(missing)}; "
                              f"train it first (step 6)")
    except BaseException:
        lock.release()
        raise
    return TrainedModel(cls, name, options, parts, int(generation.data.get("iter", 0)), used, lock)
