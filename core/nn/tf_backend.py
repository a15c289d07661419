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


def gpu_build() -> str | None:
    """'tensorflow[and-cuda] 2.21.0' when TensorFlow's CUDA libraries (its and-cuda extra) are installed, else None."""
    import importlib.metadata as md
    import re
    try:
        wanted = [re.match(r"[A-Za-z0-9_.\-]+", r)[0] for r in md.requires("tensorflow") or []
                  if re.search(r"extra\s*==\s*['\"]and-cuda['\"]", r)]
        version = md.version("tensorflow")
    except md.PackageNotFoundError:
        return None
    for dist in wanted:
        try:
            md.version(dist)
        except md.PackageNotFoundError:
            continue
        return f"tensorflow[and-cuda] {version}"
    return None


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


def reset_peak_memory() -> None:
    import tensorflow as tf
    if physical_gpus():
        tf.config.experimental.reset_memory_stats("GPU:0")


def data_parallel(devices: list | None) -> int:
    """MirroredStrategy over GPUs `devices` (None: every GPU, else every logical CPU device, as in the tests),
    set as the current strategy so that every variable built from now on is mirrored; returns the replica count."""
    import tensorflow as tf
    if devices is not None:
        names = [f"/gpu:{i}" for i in devices]
    else:
        names = [d.name for d in tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")]
    tf.distribute.experimental_set_strategy(tf.distribute.MirroredStrategy(names))
    return len(names)


def multi_worker() -> int:
    """MultiWorkerMirroredStrategy from TF_CONFIG (each worker's own GPUs, or its CPU), set as the current
    strategy before any variable exists; returns the replica count over all workers."""
    import tensorflow as tf
    from core.quiet import quiet_stderr
    with quiet_stderr():
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    tf.distribute.experimental_set_strategy(strategy)
    return int(strategy.num_replicas_in_sync)


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
    if tf.distribute.has_strategy():
        return _distributed_train_step(loss_fn, optimizer, variables)

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


def _distributed_train_step(loss_fn: Callable, optimizer, variables: list) -> Callable:
    """The step under a (Multi-Worker)MirroredStrategy: each replica takes its slice of the batch, and one
    all-reduce of the gradients makes every replica apply the single-device update.

    Each replica's loss is divided by the replica count, so the summed gradients are those of the
    whole batch's mean loss. They are all-reduced here, before the optimizer sees them, so that
    clipgrad clips the whole batch's gradient norm (Keras clips before its own all-reduce, which
    would clip each replica's part); the optimizer's own all-reduce is then turned off. Each
    device updates its copy of every variable and of the lr_dropout seed the same way, so the
    masks agree. The update is not XLA-fused here (the strategy's cross-device calls are not XLA's).
    """
    import tensorflow as tf
    strategy = tf.distribute.get_strategy()
    n = strategy.num_replicas_in_sync
    local = len(strategy.extended.worker_devices)
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    for opt in {id(optimizer): optimizer, id(inner): inner}.values():
        opt._all_reduce_sum_gradients = lambda grads_and_vars: grads_and_vars      # done in replica_step

    def replica_step(batch):
        with tf.GradientTape() as tape:
            total, *aux = loss_fn(batch)
            scaled = optimizer.scale_loss(total) if hasattr(optimizer, "scale_loss") else total
            scaled = scaled / n
        grads = tape.gradient(scaled, variables)
        used = [i for i, g in enumerate(grads) if g is not None]      # None: untouched, as on one device
        summed = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, [grads[i] for i in used])
        grads = list(grads)
        for i, g in zip(used, summed):
            grads[i] = g
        optimizer.apply_gradients(zip(grads, variables))
        return (total, *aux)

    @tf.function(reduce_retracing=True)
    def run(dist_batch):
        outs = strategy.run(replica_step, args=(dist_batch,))
        return tuple(strategy.reduce(tf.distribute.ReduceOp.MEAN, o, axis=None) for o in outs)

    def step(batch):
        rows = int(batch[0].shape[0])
        if rows % local:
            from core.errors import VisageError
            raise VisageError(f"batch of {rows} does not split over {local} devices: use a batch_size that is a "
                              f"multiple of the device count")
        k = rows // local

        def part(ctx):
            i = ctx.replica_id_in_sync_group % local
            return tuple(tf.convert_to_tensor(b[i * k:(i + 1) * k]) for b in batch)
        return run(strategy.experimental_distribute_values_from_function(part))
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
