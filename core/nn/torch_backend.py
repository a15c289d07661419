"""The PyTorch backend's own parts: its GPUs, the train step by autograd, inference without gradients.

Keras on torch keeps each variable as a `torch.nn.Parameter`, so one step is: the loss in
eager mode, `torch.autograd.grad` over the trained variables (no `.grad` left behind on the
frozen ones), then the optimizer's update under `torch.no_grad()`. All of it runs eagerly, so `fuse_update`
has no effect on this backend. `torch.compile` was tried and is not offered (README "GPU and Keras
backends" has the figures): compiling the loss made dynamo recompile Keras' layer hooks past its
limit and the process crashed (a segmentation fault); compiling the update alone was slower on the CPU.
"""
from __future__ import annotations

from typing import Callable


def gpus() -> list[tuple[str, tuple[int, int]]]:
    """CUDA GPUs (ROCm builds show AMD GPUs here too) with compute capability, or Apple's MPS device."""
    import torch
    if not torch.cuda.is_available():
        mps = getattr(torch.backends, "mps", None)
        return [("Apple GPU (MPS)", (0, 0))] if mps is not None and mps.is_available() else []
    return [(torch.cuda.get_device_name(i), tuple(torch.cuda.get_device_capability(i)))
            for i in range(torch.cuda.device_count())]


def gpu_build() -> str | None:
    """'PyTorch 2.13.0+cu130 (CUDA 13.0 build)' or its ROCm build; None for the CPU build (MPS is in every macOS build)."""
    import torch
    if getattr(torch.version, "hip", None):
        return f"PyTorch {torch.__version__} (ROCm {torch.version.hip} build)"
    if getattr(torch.version, "cuda", None):
        return f"PyTorch {torch.__version__} (CUDA {torch.version.cuda} build)"
    return None


def use_gpu(index: int) -> None:
    """Keras on torch places tensors on "cuda", the current device: make it GPU `index` (MPS has one)."""
    import torch
    if torch.cuda.is_available():
        torch.cuda.set_device(index)


def peak_memory() -> int | None:
    import torch
    return int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None


def reset_peak_memory() -> None:
    import torch
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def make_train_step(loss_fn: Callable, optimizer, variables: list, fuse_update: bool, frozen: list) -> Callable:
    import torch
    from keras.ops import convert_to_tensor
    params = [v.value for v in variables]

    def step(batch):
        total, *aux = loss_fn(tuple(convert_to_tensor(b) for b in batch))     # NumPy arrays do not mix with torch
        scaled = optimizer.scale_loss(total) if hasattr(optimizer, "scale_loss") else total
        grads = torch.autograd.grad(scaled, params, allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params)]
        with torch.no_grad():
            optimizer.apply(grads, variables)
        return tuple(t.detach() for t in (total, *aux))
    return step


def make_predict(fn: Callable) -> Callable:
    import keras
    import torch

    def predict(*args):
        with torch.no_grad():
            out = fn(*(keras.ops.convert_to_tensor(a) for a in args))
        return keras.tree.map_structure(keras.ops.convert_to_numpy, out)
    return predict
