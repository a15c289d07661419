"""The JAX backend's own parts: its GPUs, the train step as one `jax.jit` over Keras' stateless API.

JAX arrays are immutable, so the step is a pure function of (trained values, optimizer
values, frozen values, batch): the loss runs inside `keras.StatelessScope`, which maps every
Keras variable to the value passed in, `jax.value_and_grad` differentiates it, and the
optimizer's `stateless_apply` returns the new values, which are then assigned back to the
variables (a reference swap, no copy). Forward, backward and update compile as one XLA
program, so the update is always fused. `data_parallel` spreads it over several devices with
keras.distribution.DataParallel.
"""
from __future__ import annotations

from typing import Callable


def gpus() -> list[tuple[str, tuple[int, int]]]:
    import jax
    try:
        found = jax.devices("gpu")
    except RuntimeError:                  # no GPU platform in this jaxlib
        return []
    caps = []
    for d in found:
        cc = str(getattr(d, "compute_capability", "0.0")).split(".")
        caps.append((d.device_kind, (int(cc[0]), int(cc[1]) if len(cc) > 1 else 0)))
    return caps


def gpu_build() -> str | None:
    """'jax-cuda12-plugin 0.10.2' (jax[cuda12], jax[cuda13], ROCm's plugin) when one is installed, else None."""
    import importlib.metadata as md
    import re
    for dist in md.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if re.fullmatch(r"jax-(cuda|rocm)\d+-plugin", name):
            return f"{name} {dist.version}"
    return None


def use_gpu(index: int) -> None:
    import jax
    jax.config.update("jax_default_device", jax.devices("gpu")[index])


def peak_memory() -> int | None:
    import jax
    if jax.default_backend() == "cpu":
        return None
    stats = jax.devices()[0].memory_stats() or {}
    return stats.get("peak_bytes_in_use")


def reset_peak_memory() -> None:
    """JAX has no reset: peak_bytes_in_use is the process's peak (bench measures each backend in its own process)."""


def data_parallel(devices: list | None) -> int:
    """Replicate every variable built from now on over `devices` (GPU indexes; None = every device, CPU
    included) and split each batch between them: XLA all-reduces the gradients inside the one step."""
    import jax
    import keras
    found = jax.devices() if devices is None else [jax.devices("gpu")[i] for i in devices]
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=found))
    return len(found)


def make_train_step(loss_fn: Callable, optimizer, variables: list, fuse_update: bool, frozen: list) -> Callable:
    import jax
    import keras
    opt_vars = list(optimizer.variables)

    def loss_of(trained, opt_values, fixed, batch):
        mapping = list(zip(variables, trained)) + list(zip(opt_vars, opt_values)) + list(zip(frozen, fixed))
        with keras.StatelessScope(state_mapping=mapping):
            total, *aux = loss_fn(batch)
            scaled = optimizer.scale_loss(total) if hasattr(optimizer, "scale_loss") else total
        return scaled, (total, *aux)

    grad_fn = jax.value_and_grad(loss_of, has_aux=True)

    def pure_step(trained, opt_values, fixed, batch):
        (_, outs), grads = grad_fn(trained, opt_values, fixed, batch)
        new_trained, new_opt = optimizer.stateless_apply(opt_values, grads, trained)
        return new_trained, new_opt, outs

    compiled = jax.jit(pure_step, donate_argnums=(0, 1) if jax.default_backend() != "cpu" else ())
    dist = keras.distribution.distribution()

    def place(x):
        """Under data_parallel, each replica gets its slice of the batch; the variables are replicated."""
        if dist is None:
            return x
        if x.shape[0] % len(dist.device_mesh.devices.flat):
            from core.errors import VisageError
            raise VisageError(f"batch of {x.shape[0]} does not split over {len(dist.device_mesh.devices.flat)} "
                              f"devices: use a batch_size that is a multiple of the device count")
        return jax.device_put(x, dist.get_data_layout(x.shape).backend_layout)

    def step(batch):
        new_trained, new_opt, outs = compiled([v.value for v in variables], [v.value for v in opt_vars],
                                              [v.value for v in frozen], tuple(place(b) for b in batch))
        for v, x in zip(variables, new_trained):
            v.assign(x)
        for v, x in zip(opt_vars, new_opt):
            v.assign(x)
        return outs
    return step


def make_predict(fn: Callable) -> Callable:
    import keras
    return lambda *args: keras.tree.map_structure(keras.ops.convert_to_numpy, fn(*args))
