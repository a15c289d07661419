"""Run under JAX with two logical CPU devices: one data-parallel step against one single-device step.

`XLA_FLAGS=--xla_force_host_platform_device_count=2 python -m tests.support.data_parallel_support FACES_DIR`
prints one JSON line: the largest weight difference after one step, and the devices each
variable and batch slice lived on in the parallel run.
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


def one_step(parallel: bool, init: list | None, batch: tuple) -> tuple[list, list, dict]:
    import keras
    from keras import ops
    from core.nn import archis, optimizers
    from core.nn.backend import data_parallel, make_train_step
    from core.nn.losses import reconstruction_loss
    keras.distribution.set_distribution(None)
    replicas = data_parallel() if parallel else 1
    parts = archis.build_parts("liae-ud", 64, 32, 16, 16, 16)
    variables = archis.trainable_variables(parts, archis.trainable_parts("liae", True))
    if init is not None:
        for v, x in zip(variables, init):
            v.assign(x)
    init = [np.array(v.numpy()) for v in variables]
    opt = optimizers.AdaBelief(1e-3, lr_dropout=0.3, clipnorm=1.0, seed=7, name="adabelief")
    opt.build(variables)

    def loss_fn(b):
        src, dst = b
        out = archis.forward("liae", parts, src, dst)
        s = ops.mean(reconstruction_loss(src, out["pred_src_src"], 64))
        d = ops.mean(reconstruction_loss(dst, out["pred_dst_dst"], 64))
        return s + d, s, d

    step = make_train_step(loss_fn, opt, variables)
    step(batch)
    seen = {"replicas": replicas, "variable_devices": len(variables[0].value.sharding.device_set)}
    return init, [np.array(v.numpy()) for v in variables], seen


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    from core.nn.backend import choose_backend, set_precision
    choose_backend("jax")
    import jax
    set_precision("fp32")
    x = faces(Path(sys.argv[1]))
    batch = (x[:2], x[2:4])
    init, single, _ = one_step(False, None, batch)
    _, parallel, seen = one_step(True, init, batch)
    moved = max(float(np.abs(a - b).max()) for a, b in zip(single, init))
    diff = max(float(np.abs(a - b).max()) for a, b in zip(single, parallel))
    print(json.dumps({"devices": len(jax.devices()), "moved": moved, "max_diff": diff, **seen}))
