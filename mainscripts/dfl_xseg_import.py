"""DeepFaceLab's XSeg model folder as a Visage XSeg model (part of `util --import-dfl-model`).

DeepFaceLab keeps an XSeg model as `XSeg_data.dat` (iteration, options face_type / batch_size
/ pretrain, loss history, preview samples; DFL names the model after its class, so there is no
`<name>_` in front, though one is accepted), `XSeg_256.npy` (the network: a pickled dict
'conv01/conv/weight:0' -> array) and `XSeg_256_opt.npy` (RMSprop: 'iters:0' and one
accumulator 'acc_XSeg/<weight>_0:0' per weight). All three are read through the restricted
unpickler. The network is DFL's layer for layer (core/nn/xseg_archi.py): each Visage weight is
taken from DFL's of the same block, kind and shape; dense1's rows and dense2's columns are
reordered from DFL's channel-first flatten / reshape to Keras' channel-last, and so are
their optimizer accumulators. The optimizer state converts exactly (Visage's RMSprop keeps
the same accumulator per weight and DFL's update rule; only lr_dropout's random stream starts
anew). The Visage model is named `XSeg` (or the `<name>` of `<name>_XSeg_data.dat`), at
resolution 256 as DFL's, with DFL's face type, pretrain switch, batch size and iteration.

Checked against DeepFaceLab itself (tests/mainscripts/test_dfl_model_import.py): DFL's own
network class at a narrow width (the test data must stay small), and, once by hand, a model
DeepFaceLab trained (70 MB, not kept; README "Bring your DeepFaceLab model").
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np

from core.errors import VisageError

DFL_RES = 256                          # DFL's XSeg always works at 256
WEIGHTS = f"XSeg_{DFL_RES}.npy"
OPTIMIZER = f"XSeg_{DFL_RES}_opt.npy"
_BLOCK = re.compile(r"((?:conv|uconv|up)\d+)_(conv|frn)")
_FRN = {"gamma": "frn/weight", "beta": "frn/bias", "eps": "frn/eps", "tau": "tlu/tau"}


def dfl_xseg_key(path: str) -> str:
    """DFL's key of a Visage XSeg variable: 'XSeg/conv01_frn/eps' -> 'conv01/frn/eps:0'."""
    layer, var = path.removeprefix("XSeg/").rsplit("/", 1)
    m = _BLOCK.fullmatch(layer)          # DFL's ConvBlock / UpConvBlock: conv + frn + tlu
    if m and m.group(2) == "frn" and var in _FRN:
        return f"{m.group(1)}/{_FRN[var]}:0"
    var = {"kernel": "weight", "bias": "bias"}.get(var, var)
    return f"{m.group(1)}/conv/{var}:0" if m else f"{layer}/{var}:0"        # dense1, dense2, out_conv


def _channels_first_to_last(arr: np.ndarray, axis: int, hwc: tuple[int, int, int]) -> np.ndarray:
    h, w, c = hwc
    moved = np.moveaxis(arr, axis, 0)
    out = moved.reshape((c, h, w) + moved.shape[1:]).transpose((1, 2, 0) + tuple(range(3, moved.ndim + 2)))
    return np.moveaxis(out.reshape(moved.shape), 0, axis)


def _layout(net, key: str, arr: np.ndarray) -> np.ndarray:
    """dense1 reads DFL's (c, h, w) flatten, dense2 writes its (c, h, w) reshape: reorder to (h, w, c)."""
    if key == "dense1/weight:0":
        return _channels_first_to_last(arr, 0, tuple(int(d) for d in net.get_layer("flatten").input.shape[1:]))
    if key in ("dense2/weight:0", "dense2/bias:0"):
        return _channels_first_to_last(arr, arr.ndim - 1, tuple(int(d) for d in net.get_layer("reshape").output.shape[1:]))
    return arr


def _checked(arr, key: str, shape: tuple, source: str, what: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.dtype.kind != "f" or arr.shape != shape or not np.isfinite(arr).all():
        raise VisageError(f"{source}: {key} is {arr.dtype} {arr.shape}; Visage's {what} needs finite floats "
                          f"of shape {shape}")
    return arr.astype(np.float32)


def convert_xseg_weights(net, dfl_weights: dict, source: str = WEIGHTS) -> list[np.ndarray]:
    """The arrays for `net.weights` (in its order) from DFL's XSeg weight dict; one line on any mismatch."""
    out, used = [], set()
    for v in net.weights:
        key = dfl_xseg_key(v.path)
        if key not in dfl_weights:
            raise VisageError(f"{source} has no weight {key} (Visage's {v.path}); it was made by another "
                              f"DeepFaceLab version, or is not an XSeg model")
        out.append(_layout(net, key, _checked(dfl_weights[key], key, tuple(v.shape), source, v.path)))
        used.add(key)
    extra = sorted(set(dfl_weights) - used)
    if extra:
        raise VisageError(f"{source} holds weights Visage's XSeg network has no place for ({', '.join(extra[:4])})")
    return out


def convert_xseg_optimizer(opt, net, dfl_opt: dict, source: str = OPTIMIZER) -> int:
    """Put DFL's RMSprop state (iteration count, one accumulator per weight) into Visage's built RMSprop `opt`.

    Returns DFL's optimizer iteration. Accumulators are matched to their weight by DFL's naming."""
    iters = np.asarray(dfl_opt.get("iters:0", 0))
    if iters.shape != () or iters.dtype.kind not in "iu" or int(iters) < 0:
        raise VisageError(f"{source}: iters:0 is {iters.dtype} {iters.shape}, not DFL's iteration count")
    used = {"iters:0"}
    for v in net.trainable_variables:
        weight_key = dfl_xseg_key(v.path)
        key = "acc_XSeg/" + weight_key.replace(":", "_") + ":0"
        if key not in dfl_opt:
            raise VisageError(f"{source} has no accumulator {key} (for {weight_key})")
        acc = _checked(dfl_opt[key], key, tuple(v.shape), source, f"accumulator of {v.path}")
        opt._accumulators[opt._get_variable_index(v)].assign(_layout(net, weight_key, acc))
        used.add(key)
    extra = sorted(set(dfl_opt) - used)
    if extra:
        raise VisageError(f"{source} holds optimizer slots Visage's XSeg has no place for ({', '.join(extra[:4])})")
    opt.iterations.assign(int(iters))
    return int(iters)


def import_dfl_xseg(model_dir: Path, name: str, output_dir: Path) -> str:
    """Convert DFL's XSeg model of `model_dir` (data file `<name>_XSeg_data.dat`, or `XSeg_data.dat` when
    `name` is empty) into `output_dir`; returns the line saying what was converted. Writes nothing on an error."""
    from core.nn.optimizers import optimizer_state
    from mainscripts.dfl_model_import import REMEDY, _plain, convert_options, load_dfl_file
    from models.model_files import ModelFiles, list_models
    from models.xseg import PART, XSegModel, make_optimizer
    title = f"{name}_XSeg" if name else "XSeg"
    visage_name = name or "XSeg"
    if output_dir.is_dir() and visage_name in list_models(output_dir, XSegModel.CLASS_NAME):
        raise VisageError(f"{title}: {output_dir} already holds a Visage XSeg model named {visage_name}; give "
                          f"another --output-dir or rename one of them")
    data = load_dfl_file(model_dir / f"{title}_data.dat")
    dfl_options = data.get("options")
    if not isinstance(dfl_options, dict):
        raise VisageError(f"DFL model {title}: its data.dat has no options dict; {REMEDY}")
    options, dropped = convert_options(XSegModel, {**dfl_options, "resolution": DFL_RES}, title)
    iteration = _plain(data.get("iter", 0))
    if not isinstance(iteration, int) or isinstance(iteration, bool) or iteration < 0:
        raise VisageError(f"{title}_data.dat: iteration {iteration!r} is not a whole number; {REMEDY}")
    history = [[float(_plain(x)) for x in row] for row in data.get("loss_history") or []
               if isinstance(row, (list, tuple)) and row]
    path = model_dir / WEIGHTS
    if not path.is_file():
        raise VisageError(f"{title}: {WEIGHTS} is missing; a DeepFaceLab XSeg model is {title}_data.dat with "
                          f"{WEIGHTS} (and {OPTIMIZER})")
    net = XSegModel.build_parts(options)[PART]
    arrays = convert_xseg_weights(net, load_dfl_file(path))
    parts = {PART: {f"{i:04d}": a for i, a in enumerate(arrays)}}
    opt_note = f"; {OPTIMIZER} not found: the optimizer starts fresh"
    if (model_dir / OPTIMIZER).is_file():
        net.set_weights(arrays)
        opt = make_optimizer()
        opt.build(net.trainable_variables)
        opt_iter = convert_xseg_optimizer(opt, net, load_dfl_file(model_dir / OPTIMIZER))
        parts["optimizer"] = optimizer_state(opt)
        opt_note = f"; optimizer state converted ({OPTIMIZER}, {opt_iter} steps)"
    files = ModelFiles(output_dir, visage_name, XSegModel.CLASS_NAME)
    lock = files.lock(exclusive=True, what="import")
    try:
        files.save(parts, {"model": XSegModel.CLASS_NAME, "iter": iteration, "options": options,
                           "loss_history": history, "saved_at": time.time(), "validation": None,
                           "validation_history": []})
    finally:
        lock.release()
    n = sum(a.size for a in arrays)
    line = (f"{title}: converted iteration {iteration}, face type {options['face_type']}, resolution {DFL_RES}, "
            f"pretrain {'on' if options['pretrain'] else 'off'} ({n:,} weights) -> "
            f"{output_dir / (visage_name + '_XSeg_data.json')}{opt_note}")
    dropped = [k for k in dropped if k != "resolution"]
    if dropped:
        line += f"; DFL options Visage has no use for: {', '.join(dropped)}"
    return line

