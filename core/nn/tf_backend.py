"""Everything TensorFlow-specific in one place: device choice, precision, the compiled step.

Model and loss code is written with `keras` / `keras.ops`; only this module knows that the
backend is TensorFlow. Measured on the 2-core AVX-512 CPU (see DESIGN.md): a plain
`tf.function` step beats XLA there, and Keras' mixed_bfloat16 policy is ~1.7x faster than
fp32 with the same loss curve, so `precision=auto` picks bf16 where the hardware computes it
natively (CPUs with AVX512_BF16 or AMX, NVIDIA Ampere or newer), mixed fp16 on older NVIDIA
GPUs, and fp32 otherwise (`auto_precision`).
"""
from __future__ import annotations

import argparse
import os
from typing import Callable, Sequence

from core.errors import VisageError
from core.machine import cpu_has_bf16

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_POLICY = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


def select_devices(cpu_only: bool, gpu_idxs: Sequence[int] | None = None, ask: bool = False) -> str:
    """DeepFaceLab's device choice, made before TensorFlow starts its devices; returns what is used.

    `cpu_only` hides every GPU (before TensorFlow loads CUDA at all). Otherwise the GPUs in
    `gpu_idxs` (--force-gpu-idxs), or those chosen at the prompt "Choose one or several GPU
    idxs (separated by comma)" when `ask`, or else all of them; on a machine without a GPU the
    CPU, with one line when GPUs were asked for. One GPU trains: data-parallel training over
    several is not built yet, so a choice of several uses the first and says so.
    """
    from core import interact
    if cpu_only:
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
        return "CPU"
    import tensorflow as tf
    gpus = physical_gpus()
    if not gpus:
        if gpu_idxs:
            interact.log_warn(f"GPU {','.join(map(str, gpu_idxs))} asked for, but no GPU is visible to TensorFlow "
                              f"(see `main.py doctor`); running on the CPU")
        return "CPU"
    names = [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus]
    if gpu_idxs is None and ask and len(gpus) > 1:
        interact.log_info("\n".join(f"[{i}] : {n}" for i, n in enumerate(names)))
        answer = interact.input_str("Choose one or several GPU idxs (separated by comma)",
                                    ",".join(map(str, range(len(gpus)))))
        try:
            gpu_idxs = parse_gpu_idxs(answer)
        except argparse.ArgumentTypeError as e:
            raise VisageError(str(e)) from None
    chosen = list(gpu_idxs) if gpu_idxs else list(range(len(gpus)))
    bad = [i for i in chosen if not 0 <= i < len(gpus)]
    if bad:
        raise VisageError(f"no GPU {bad[0]}: this machine has {len(gpus)} ({', '.join(names)})")
    if len(chosen) > 1:
        interact.log_warn(f"training on several GPUs is not built yet; using GPU {chosen[0]} only")
    tf.config.set_visible_devices([gpus[chosen[0]]], "GPU")
    return f"GPU {chosen[0]}: {names[chosen[0]]}"


def add_device_flags(p: argparse.ArgumentParser, verb: str) -> None:
    """DeepFaceLab's --cpu-only and --force-gpu-idxs, for every command that runs a model."""
    p.add_argument("--cpu-only", action="store_true", help=f"{verb} on the CPU even when a GPU is present")
    p.add_argument("--force-gpu-idxs", type=parse_gpu_idxs, metavar="0,1",
                   help=f"{verb} on these GPUs without asking (default: asked when there are several, else all)")


def parse_gpu_idxs(text: str) -> list[int]:
    """'0,1' -> [0, 1]; the argparse type of --force-gpu-idxs and the prompt's parser."""
    try:
        idxs = [int(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        idxs = []
    if not idxs or any(i < 0 for i in idxs):
        raise argparse.ArgumentTypeError(f"'{text}' is not a list of GPU indexes such as 0 or 0,1")
    return idxs


def physical_gpus() -> list:
    """TensorFlow's GPUs; its first look loads CUDA, which logs natively (silenced: core/quiet)."""
    import tensorflow as tf
    from core.quiet import quiet_stderr
    with quiet_stderr():
        return tf.config.list_physical_devices("GPU")


def has_gpu() -> bool:
    return bool(gpu_compute_capabilities())


def gpu_compute_capabilities() -> list[tuple[int, int]]:
    """(major, minor) of each visible GPU; (0, 0) where the driver does not say."""
    import tensorflow as tf
    caps = []
    for gpu in physical_gpus():
        cc = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        caps.append(tuple(cc) if cc else (0, 0))
    return caps


def resolve_precision(precision: str) -> str:
    """'auto' -> the concrete choice for this machine."""
    if precision not in PRECISIONS:
        raise VisageError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision if precision != "auto" else auto_precision()[0]


def auto_precision() -> tuple[str, str]:
    """What `precision=auto` picks on this machine, and why (for the summary and `doctor`).

    bf16 needs no loss scaling and has fp32's range: it is the choice wherever the hardware
    computes it natively (NVIDIA Ampere, compute capability 8.0, and newer; CPUs with
    AVX512-BF16 or AMX). Older NVIDIA GPUs get fp16 with loss scaling; anything else fp32.
    """
    caps = gpu_compute_capabilities()
    if caps:
        cc = ", ".join(f"{a}.{b}" for a, b in caps)
        if min(caps) >= (8, 0):
            return "bf16", f"GPU compute capability {cc} (Ampere or newer): mixed bf16"
        return "fp16", f"GPU compute capability {cc} (older than Ampere): mixed fp16 with loss scaling"
    if cpu_has_bf16():
        return "bf16", "the CPU has AVX512-BF16/AMX: mixed bf16, ~1.7x fp32's speed"
    return "fp32", "no GPU and no bf16 instructions on the CPU"


def set_precision(precision: str) -> str:
    """Set the Keras global dtype policy; variables and losses stay float32 under it."""
    import keras
    concrete = resolve_precision(precision)
    keras.mixed_precision.set_global_policy(_POLICY[concrete])
    return concrete


def make_train_step(loss_fn: Callable, optimizer, variables: Sequence, fuse_update: bool = True) -> Callable:
    """Compile `loss_fn(batch) -> (total, aux...)` into one gradient step over `variables`.

    The forward and backward passes run as a plain `tf.function` (XLA was slower for them on
    the CPU); with `fuse_update` the optimizer update alone is compiled with XLA, which fuses
    each variable's elementwise update (moments, step, lr_dropout mask) into one loop:
    Quick96's update falls from ~90 to ~27 ms on the 2-core CPU.
    fp16 needs loss scaling: pass a keras.optimizers.LossScaleOptimizer for that case (the
    caller owns the optimizer); bf16 and fp32 need none.
    """
    import tensorflow as tf

    variables = list(variables)

    def apply(grads):
        optimizer.apply_gradients(zip(grads, variables))

    if fuse_update:
        apply = tf.function(apply, jit_compile=True)

    @tf.function(reduce_retracing=True)
    def step(batch):
        with tf.GradientTape() as tape:
            total, *aux = loss_fn(batch)
            scaled = optimizer.scale_loss(total) if hasattr(optimizer, "scale_loss") else total
        apply(tape.gradient(scaled, variables))
        return (total, *aux)
    return _quiet_first_call(step)


def _quiet_first_call(fn: Callable) -> Callable:
    """`fn` whose first call (the one that traces and compiles, where XLA logs natively) is silenced."""
    from core.quiet import quiet_stderr
    first = True

    def call(*args):
        nonlocal first
        if not first:
            return fn(*args)
        with quiet_stderr():
            out = fn(*args)
        first = False
        return out
    return call


def make_predict(fn: Callable) -> Callable:
    import tensorflow as tf
    return tf.function(fn, reduce_retracing=True)


def optimizer_device(on_cpu: bool):
    """Context placing optimizer state on the CPU when asked and a GPU exists (DFL's option)."""
    import contextlib
    if on_cpu and has_gpu():
        import tensorflow as tf
        return tf.device("/CPU:0")
    return contextlib.nullcontext()


def forward_flops(fn: Callable, *example_args) -> int:
    """Floating-point operations of one call of `fn` (graph count by TensorFlow's profiler)."""
    import tensorflow as tf
    from tensorflow.python.profiler import model_analyzer, option_builder
    concrete = tf.function(fn).get_concrete_function(*example_args)
    opts = option_builder.ProfileOptionBuilder(option_builder.ProfileOptionBuilder.float_operation()
                                               ).with_empty_output().build()
    return int(model_analyzer.profile(concrete.graph, options=opts).total_float_ops)
