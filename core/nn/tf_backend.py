"""The TensorFlow backend's own parts: its GPUs, the compiled train step, inference, FLOP count.

Model and loss code is written with `keras` / `keras.ops`; core/nn/backend.py dispatches
here when Keras runs on TensorFlow. Measured on the 2-core AVX-512 CPU (see DESIGN.md): a plain
`tf.function` step beats XLA there, except for the optimizer update.
"""
from __future__ import annotations

from typing import Callable


def physical_gpus() -> list:
    """TensorFlow's GPUs; its first look loads CUDA, which logs natively (silenced: core/quiet)."""
    import tensorflow as tf
    from core.quiet import quiet_stderr
    with quiet_stderr():
        return tf.config.list_physical_devices("GPU")


def gpus() -> list[tuple[str, tuple[int, int]]]:
    import tensorflow as tf
    found = []
    for gpu in physical_gpus():
        details = tf.config.experimental.get_device_details(gpu)
        cc = details.get("compute_capability")
        found.append((details.get("device_name", gpu.name), tuple(cc) if cc else (0, 0)))
    return found


def use_gpu(index: int) -> None:
    """Make GPU `index` the only one TensorFlow starts (before its devices are initialised)."""
    import tensorflow as tf
    tf.config.set_visible_devices([physical_gpus()[index]], "GPU")


def peak_memory() -> int | None:
    """Peak bytes allocated on GPU 0 since start, or None without a GPU."""
    import tensorflow as tf
    if not physical_gpus():
        return None
    return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])


def make_train_step(loss_fn: Callable, optimizer, variables: list, fuse_update: bool, frozen: list) -> Callable:
    """One gradient step as a tf.function (see core.nn.backend.make_train_step; `frozen` is not needed here).

    The forward and backward passes run as a plain `tf.function` (XLA was slower for them on
    the CPU); with `fuse_update` the optimizer update alone is compiled with XLA, which fuses
    each variable's elementwise update (moments, step, lr_dropout mask) into one loop:
    Quick96's update falls from ~90 to ~27 ms on the 2-core CPU.
    fp16 needs loss scaling: pass a keras.optimizers.LossScaleOptimizer for that case (the
    caller owns the optimizer); bf16 and fp32 need none.
    """
    import tensorflow as tf

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
    import keras
    import tensorflow as tf
    graph = tf.function(fn, reduce_retracing=True)
    return lambda *args: keras.tree.map_structure(keras.ops.convert_to_numpy, graph(*args))


def optimizer_device(on_cpu: bool):
    """Context placing optimizer state on the CPU (DFL's models_opt_on_gpu=n, asked with a GPU present)."""
    import contextlib
    if on_cpu:
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
