"""Run under one backend with two logical CPU devices: one data-parallel step against one single-device step.

`python -m tests.support.data_parallel_support BACKEND FACES_DIR` (jax needs
XLA_FLAGS=--xla_force_host_platform_device_count=2; tensorflow splits its CPU into two logical
devices here, before it starts) prints one JSON line: the largest weight difference after one
step, and the devices each variable lived on in the parallel run.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]


def faces(folder: Path, n: int = 4, res: int = 64) -> np.ndarray:
    files = sorted(folder.glob("*.jpg"))[:n]
    return np.stack([cv2.resize(cv2.imread(str(f)), (res, res), interpolation=cv2.INTER_AREA) for f in files]
                    ).astype(np.float32) / 255.0


def _no_distribution() -> None:
    import keras
    if keras.backend.backend() == "jax":
        keras.distribution.set_distribution(None)
    else:
        import tensorflow as tf
        tf.distribute.experimental_set_strategy(None)


def _variable_devices(v) -> int:
    import keras
    if keras.backend.backend() == "jax":
        return len(v.value.sharding.device_set)
    return len({c.device for c in getattr(v.value, "values", [v.value])})


def one_step(parallel: bool, init: list | None, batch: tuple) -> tuple[list, list, dict]:
    from keras import ops
    from core.nn import archis, optimizers
    from core.nn.backend import data_parallel, make_train_step
    from core.nn.losses import reconstruction_loss
    _no_distribution()
    replicas = data_parallel() if parallel else 1
    parts = archis.build_parts("liae-ud", 64, 32, 16, 16, 16)
    variables = archis.trainable_variables(parts, archis.trainable_parts("liae", True))
    if init is not None:
        for v, x in zip(variables, init):
            v.assign(x)
    init = [np.array(v.numpy()) for v in variables]
    # epsilon 1e-3, not DFL's 1e-7: a first AdaBelief step is lr·m/(√v+ε) ≈ 3.5·lr·sign(g), whose slope at g≈0
    # is 0.1·lr/ε, so with 1e-7 a last-bit difference in a near-zero gradient (the two devices sum in another
    # order, and a LeakyReLU input at ~1e-8 may fall on the other side) becomes up to a whole step in the
    # weights: measured 3e-6 typical, 6e-3 in one CI run. With 1e-3 the update is smooth in g (measured
    # diff 1.5e-8 for the same 3e-3 move), so the comparison sees the split, the all-reduce, clipgrad and
    # the lr_dropout masks, not rounding.
    opt = optimizers.AdaBelief(1e-3, lr_dropout=0.3, clipnorm=1.0, seed=7, name="adabelief", epsilon=1e-3)
    opt.build(variables)

    def loss_fn(b):
        src, dst = b
        out = archis.forward("liae", parts, src, dst)
        s = ops.mean(reconstruction_loss(src, out["pred_src_src"], 64))
        d = ops.mean(reconstruction_loss(dst, out["pred_dst_dst"], 64))
        return s + d, s, d

    step = make_train_step(loss_fn, opt, variables)
    step(batch)
    seen = {"replicas": replicas, "variable_devices": _variable_devices(variables[0])}
    return init, [np.array(v.numpy()) for v in variables], seen


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    from core.nn.backend import choose_backend, set_precision
    backend = choose_backend(sys.argv[1])
    if backend == "tensorflow":
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        devices = len(tf.config.list_logical_devices("CPU"))
    else:
        import jax
        devices = len(jax.devices())
    set_precision("fp32")
    import keras
    keras.utils.set_random_seed(0)        # the same initial weights every run (XLA repeats a step bit for bit)
    x = faces(Path(sys.argv[2]))
    batch = (x[:2], x[2:4])
    init, single, _ = one_step(False, None, batch)
    _, parallel, seen = one_step(True, init, batch)
    moved = max(float(np.abs(a - b).max()) for a, b in zip(single, init))
    diff = max(float(np.abs(a - b).max()) for a, b in zip(single, parallel))
    print(json.dumps({"devices": devices, "moved": moved, "max_diff": diff, **seen}))
