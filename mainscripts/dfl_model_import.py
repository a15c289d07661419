"""`util --import-dfl-model`: a DeepFaceLab model folder becomes a Visage model.

DeepFaceLab keeps a model as `<name>_<Model>_data.dat` (a pickled dict: iter, options,
loss_history, preview samples) and one `<name>_<Model>_<part>.npy` per network part (a
pickled dict: layer path -> array). Both are read only through the restricted unpickler of
the faceset import (`core.facelib.dfl_import.restricted_load`): plain containers and number
arrays, nothing a file can name is ever called. The options keep DeepFaceLab's names and
values (Visage's schema uses the same), the iteration and loss history carry over, and every
weight is placed by its DeepFaceLab layer name and checked by shape; the result is saved as
one Visage save (`ModelFiles.save`), so the model trains on, merges and exports as if it had
been trained here.

Two layouts differ between the programs and are converted, not copied: DeepFaceLab flattens
the encoder's output and reshapes inter's dense output in channel-first order (it keeps its
saves portable between NCHW and NHWC), Visage in Keras' NHWC order, so the rows of inter's
first dense kernel and the columns of its second are permuted. Not converted: the optimizer
state of SAEHD / AMP / Quick96 (`*_opt.npy`: Visage's optimizer starts fresh, as after deleting
DFL's opt file) and the GAN / true-face discriminators (re-initialised when their power is on).
XSeg models (`XSeg_data.dat`, `XSeg_256.npy`, `XSeg_256_opt.npy`) convert with their optimizer
state: mainscripts/dfl_xseg_import.py.
"""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import VisageError

# DeepFaceLab's model classes that Visage converts, by DFL's file-name class.
CONVERTIBLE = ("SAEHD", "AMP", "Quick96", "XSeg")
DFL_CLASSES = ("SAEHD", "AMP", "Quick96", "XSeg")
_DATA = re.compile(r"(.+)_(" + "|".join(DFL_CLASSES) + r")_data\.dat")
REMEDY = "copy the model folder again from DeepFaceLab"


def find_dfl_models(model_dir: Path) -> list[tuple[str, str]]:
    """(name, DFL model class) of every `<name>_<Model>_data.dat` in the folder; DFL's XSeg writes
    `XSeg_data.dat`, with no name (given as '')."""
    found = []
    for p in sorted(model_dir.glob("*_data.dat")):
        m = _DATA.fullmatch(p.name)
        if m:
            found.append((m.group(1), m.group(2)))
        elif p.name == "XSeg_data.dat":
            found.append(("", "XSeg"))
    return found


def load_dfl_file(path: Path) -> dict:
    """One DeepFaceLab pickle (data.dat or a part's .npy) as a dict, through the restricted unpickler."""
    from core.facelib.dfl_import import restricted_load
    try:
        with open(path, "rb") as f:
            data = restricted_load(f, f"DFL model file {path.name}", REMEDY)
    except OSError as e:
        raise VisageError(f"could not read {path}: {e.strerror or e}") from None
    if not isinstance(data, dict):
        raise VisageError(f"DFL model file {path.name} holds a {type(data).__name__}, not DeepFaceLab's dict; {REMEDY}")
    return data


def _plain(value: Any) -> Any:
    """numpy scalars (DFL stores np.clip results) as Python numbers, so options validate and save as JSON."""
    return value.item() if isinstance(value, np.generic) else value


def convert_options(cls: type, dfl_options: Any, name: str) -> tuple[dict, list[str]]:
    """Visage options from DFL's (same names and values), checked by the schema; and the DFL keys dropped."""
    from core.options import resolve
    if not isinstance(dfl_options, dict):
        raise VisageError(f"DFL model {name}: its data.dat has no options dict; {REMEDY}")
    names = {o.name for o in cls.option_schema()}
    plain = {str(k): _plain(v) for k, v in dfl_options.items()}
    try:
        options = resolve(cls.option_schema(), {}, {k: v for k, v in plain.items() if k in names})
    except VisageError as e:
        raise VisageError(f"DFL model {name}: {e}") from None
    return options, sorted(k for k in plain if k not in names)


# ---------------------------------------------------------------- weights

_LAYER_RULES = (                         # Visage layer path -> DFL's (after the encoder's own rule)
    (re.compile(r"up/conv/"), "upscale1/conv1/"),          # inter's upscale
    (re.compile(r"up(\d+)/conv/"), r"upscale\1/conv1/"),
    (re.compile(r"upm(\d+)/conv/"), r"upscalem\1/conv1/"),
    (re.compile(r"rgb/"), "out_conv/"),
    (re.compile(r"mask/"), "out_convm/"),
)


def dfl_weight_name(part: str, path: str, t_encoder: bool, dfl_class: str = "SAEHD") -> str:
    """DFL's key of a Visage variable: 'encoder/down2/conv/kernel' -> 'down1/downs_1/conv1/weight:0'.

    AMP's network names each down/upscale block as DFL does, so only their conv is renamed."""
    rel = path.split("/", 1)[1] if path.startswith(part + "/") else path
    layer, _, var = rel.rpartition("/")
    layer += "/"
    m = re.fullmatch(r"down(\d+)/conv/", layer) if part == "encoder" and dfl_class != "AMP" else None
    if dfl_class == "AMP":
        layer = re.sub(r"^((?:down|upscale|upscalem)\d+)/conv/$", r"\1/conv1/", layer)
    elif m:       # DFL's plain encoder is one DownscaleBlock 'down1' holding downs_0..3; -t names each downN
        layer = f"down{m.group(1)}/conv1/" if t_encoder else f"down1/downs_{int(m.group(1)) - 1}/conv1/"
    else:
        for pattern, repl in _LAYER_RULES:
            if pattern.fullmatch(layer):
                layer = pattern.sub(repl, layer)
                break
    return layer + {"kernel": "weight:0", "bias": "bias:0"}.get(var, var + ":0")


def _channels_first_to_last(arr: np.ndarray, axis: int, hwc: tuple[int, int, int]) -> np.ndarray:
    """Reorder one axis that DFL indexes (c, h, w) into Keras' (h, w, c)."""
    h, w, c = hwc
    moved = np.moveaxis(arr, axis, 0)
    out = moved.reshape((c, h, w) + moved.shape[1:]).transpose((1, 2, 0) + tuple(range(3, moved.ndim + 2)))
    return np.moveaxis(out.reshape(moved.shape), 0, axis)


def _layout_fix(part: str, key: str, arr: np.ndarray, model, encoder_hwc: tuple[int, int, int]) -> np.ndarray:
    """inter's dense layers: DFL's channel-first flatten / reshape order to Keras' channel-last."""
    if not part.startswith("inter"):
        return arr
    if key == "dense1/weight:0":
        return _channels_first_to_last(arr, 0, encoder_hwc)
    if key in ("dense2/weight:0", "dense2/bias:0"):
        hwc = tuple(int(d) for d in model.get_layer("reshape").output.shape[1:])
        return _channels_first_to_last(arr, arr.ndim - 1, hwc)
    return arr


def convert_parts(parts: dict, dfl_weights: dict[str, dict], t_encoder: bool, title: str,
                  dfl_class: str = "SAEHD") -> dict[str, list]:
    """Each Visage part's arrays in its weight order, each from DFL's layer of the same name and shape.

    AMP's network flattens and reshapes channel-first as DFL's does, so its weights need no reorder."""
    reorder = dfl_class != "AMP"
    encoder_hwc = tuple(int(d) for d in parts["encoder"].get_layer("flatten").input.shape[1:]) if reorder else None
    converted = {}
    for part, model in parts.items():
        weights, source = dfl_weights[part], f"{title}_{part}.npy"
        out, used = [], set()
        for v in model.weights:
            key = dfl_weight_name(part, v.path, t_encoder, dfl_class)
            if key not in weights:
                raise VisageError(f"{source} has no weight {key} (Visage's {v.path}); the model was made by "
                                  f"another DeepFaceLab version, or with other options than its data.dat says")
            arr = np.asarray(weights[key])
            if arr.dtype.kind != "f" or arr.shape != tuple(v.shape) or not np.isfinite(arr).all():
                raise VisageError(f"{source}: {key} is {arr.dtype} {arr.shape}; Visage's {v.path} needs finite "
                                  f"floats of shape {tuple(v.shape)}")
            arr = arr.astype(np.float32)
            out.append(_layout_fix(part, key, arr, model, encoder_hwc) if reorder else arr)
            used.add(key)
        extra = sorted(set(weights) - used)
        if extra:
            raise VisageError(f"{source} holds weights Visage's network has no place for ({', '.join(extra[:4])}); "
                              f"this DeepFaceLab layout is not supported")
        converted[part] = out
    return converted


# ---------------------------------------------------------------- one model

def import_dfl_model(model_dir: Path, name: str, dfl_class: str, output_dir: Path) -> str:
    """Convert one DFL model; returns the line saying what was converted. Writes nothing on any error."""
    from models import model_class
    from models.model_files import ModelFiles, list_models
    title = f"{name}_{dfl_class}"
    if dfl_class not in CONVERTIBLE:
        raise VisageError(f"{title}: importing DeepFaceLab {dfl_class} models is not supported yet "
                          f"(supported: {', '.join(CONVERTIBLE)})")
    if dfl_class == "XSeg":                      # its own files and optimizer: mainscripts/dfl_xseg_import.py
        from mainscripts.dfl_xseg_import import import_dfl_xseg
        return import_dfl_xseg(model_dir, name, output_dir)
    cls = model_class(dfl_class)
    if output_dir.is_dir() and name in list_models(output_dir, cls.CLASS_NAME):
        raise VisageError(f"{title}: {output_dir} already holds a Visage model of that name; give another "
                          f"--output-dir or rename one of them")
    data = load_dfl_file(model_dir / f"{title}_data.dat")
    options, dropped = convert_options(cls, data.get("options"), title)
    iteration = _plain(data.get("iter", 0))
    if not isinstance(iteration, int) or isinstance(iteration, bool) or iteration < 0:
        raise VisageError(f"{title}_data.dat: iteration {iteration!r} is not a whole number; {REMEDY}")
    history = [[float(_plain(x)) for x in row] for row in data.get("loss_history") or []
               if isinstance(row, (list, tuple)) and row]
    parts = cls.build_parts(options)
    dfl_weights = {}
    for part in parts:
        path = model_dir / f"{title}_{part}.npy"
        if not path.is_file():
            raise VisageError(f"{title}: {path.name} is missing; a DeepFaceLab {dfl_class} model needs "
                              f"{', '.join(f'{p}.npy' for p in parts)}")
        dfl_weights[part] = load_dfl_file(path)
    t_encoder = "t" in str(options.get("archi", "")).partition("-")[2]
    converted = convert_parts(parts, dfl_weights, t_encoder, title, dfl_class)
    files = ModelFiles(output_dir, name, cls.CLASS_NAME)
    lock = files.lock(exclusive=True, what="import")
    try:
        files.save({part: {f"{i:04d}": a for i, a in enumerate(arrays)} for part, arrays in converted.items()},
                   {"model": cls.CLASS_NAME, "iter": iteration, "options": options, "loss_history": history,
                    "saved_at": time.time(), "validation": None, "validation_history": []})
    finally:
        lock.release()
    n = sum(a.size for arrays in converted.values() for a in arrays)
    left = [p.name.removeprefix(title + "_") for p in sorted(model_dir.glob(f"{title}_*.npy"))
            if p.stem.removeprefix(title + "_") not in parts]
    line = (f"{title}: converted iteration {iteration}, {len(options)} options, {len(parts)} parts "
            f"({', '.join(parts)}; {n:,} weights) -> {output_dir / (title + '_data.json')}")
    if left:
        line += f"; not converted (start fresh): {', '.join(left)}"
    if dropped:
        line += f"; DFL options Visage has no use for: {', '.join(dropped)}"
    return line


def import_dfl_models(model_dir: Path, output_dir: Path | None = None) -> tuple[list[str], list[str]]:
    """Convert every DFL model of `model_dir` (into `output_dir`, default the same folder).

    Returns (one line per converted model, one line per refused one): a model that cannot be
    converted does not stop the others. VisageError when the folder holds no DFL model.
    """
    if not model_dir.is_dir():
        raise VisageError(f"model folder not found: {model_dir}")
    found = find_dfl_models(model_dir)
    if not found:
        raise VisageError(f"no DeepFaceLab model in {model_dir}: expected <name>_<Model>_data.dat "
                          f"(Model one of {', '.join(DFL_CLASSES)}) beside its .npy parts")
    out = Path(output_dir) if output_dir else model_dir
    from core.nn.backend import gpus
    gpus()                               # the backend's first device look, with its native chatter silenced
    lines, errors = [], []
    for name, dfl_class in found:
        try:
            lines.append(import_dfl_model(model_dir, name, dfl_class, out))
        except VisageError as e:
            errors.append(str(e))
    return lines, errors
