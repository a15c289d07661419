"""Which Keras backend runs the networks, and the few things that differ between backends.

Keras reads its backend once, when it is first imported (KERAS_BACKEND), so `choose_backend`
runs in main() right after the flags are parsed and before any command imports keras:
`--backend`, else VISAGE_BACKEND, else TensorFlow (the design card's default). Model, loss
and optimizer code is plain `keras` / `keras.ops`; what cannot be (finding GPUs, the
compiled train step, the inference call) lives in one small module per backend
(`tf_backend`, `torch_backend`, `jax_backend`) with the same functions, dispatched here.
Weights are saved as plain NumPy arrays, so a model moves between backends as it is.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Callable, Sequence

from core.errors import VisageError
from core.machine import cpu_has_bf16

# backend name -> (package that must be importable, module here, what the user knows it as)
BACKENDS = {"tensorflow": ("tensorflow", "tf_backend", "TensorFlow"),
            "torch": ("torch", "torch_backend", "PyTorch"),
            "jax": ("jax", "jax_backend", "JAX")}
BACKEND_CHOICES = list(BACKENDS)
PARALLEL_BACKENDS = ("tensorflow", "jax")      # those that split a batch over several devices
DEFAULT_BACKEND = "tensorflow"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_POLICY = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
BACKEND_HELP = ("Keras backend: tensorflow (default), torch or jax; also VISAGE_BACKEND. A model trained under one "
                "trains on and merges under the others. Under torch and jax, models_opt_on_gpu=n keeps the "
                "optimizer beside the weights; under torch training uses one GPU")


def add_backend_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=BACKEND_CHOICES, help=BACKEND_HELP)


def choose_backend(flag: str | None) -> str:
    """Set KERAS_BACKEND from `flag`, else VISAGE_BACKEND, else tensorflow; before keras is imported.

    Refuses, with one line, a backend that is not installed, or a change after keras has
    already started on another one (only possible when Visage is used as a library).
    """
    name = flag or os.environ.get("VISAGE_BACKEND") or DEFAULT_BACKEND
    if name not in BACKENDS:
        raise VisageError(f"VISAGE_BACKEND={name!r} is not a backend; choose one of {', '.join(BACKENDS)}")
    package, _, label = BACKENDS[name]
    if importlib.util.find_spec(package) is None:
        others = [b for b, (pkg, _, _) in BACKENDS.items() if b != name and importlib.util.find_spec(pkg) is not None]
        instead = (f"use --backend {DEFAULT_BACKEND}" if name != DEFAULT_BACKEND and DEFAULT_BACKEND in others
                   else f"use an installed one: --backend {others[0]}" if others else f"install {label}")
        raise VisageError(f"backend {name} needs {label}, which is not installed: see the README's GPU section "
                          f"(scripts/setup.sh --gpu ...), or {instead}")
    if "keras" in sys.modules:
        running = sys.modules["keras"].backend.backend()
        if running != name:
            raise VisageError(f"keras already runs on {running}; the backend ({name}) must be chosen before it starts")
        return name
    os.environ["KERAS_BACKEND"] = name
    return name


def backend_name() -> str:
    import keras
    return keras.backend.backend()


def _impl() -> ModuleType:
    return importlib.import_module(f"core.nn.{BACKENDS[backend_name()][1]}")


def describe_backend() -> str:
    """'torch 2.13.0+cpu (keras 3.15.1)': for the banner, the model summary and doctor."""
    import keras
    name = backend_name()
    return f"{name} {importlib.import_module(BACKENDS[name][0]).__version__} (keras {keras.__version__})"


# --- devices ----------------------------------------------------------------------------
def add_device_flags(p: argparse.ArgumentParser, verb: str) -> None:
    """DeepFaceLab's --cpu-only and --force-gpu-idxs, and --backend, for every command that runs a model."""
    p.add_argument("--cpu-only", action="store_true", help=f"{verb} on the CPU even when a GPU is present")
    p.add_argument("--force-gpu-idxs", type=parse_gpu_idxs, metavar="0,1",
                   help=f"{verb} on these GPUs without asking (default: asked when there are several, else all)")
    add_backend_flag(p)


def parse_gpu_idxs(text: str) -> list[int]:
    """'0,1' -> [0, 1]; the argparse type of --force-gpu-idxs and the prompt's parser."""
    try:
        idxs = [int(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        idxs = []
    if not idxs or any(i < 0 for i in idxs):
        raise argparse.ArgumentTypeError(f"'{text}' is not a list of GPU indexes such as 0 or 0,1")
    return idxs


def gpus() -> list[tuple[str, tuple[int, int]]]:
    """(name, compute capability) of each GPU the backend sees; (0, 0) where the driver does not say."""
    return _impl().gpus()


def gpu_build() -> str | None:
    """The GPU build of the backend in use, as the user installed it ('tensorflow[and-cuda] 2.21.0', 'PyTorch
    2.13.0+cu130 (CUDA 13.0 build)', 'jax-cuda12-plugin 0.10.2'), or None for a CPU-only build."""
    return _impl().gpu_build()


def hidden_gpus_hint() -> str:
    """What to check when a GPU build sees no GPU: the driver, and the variables that hide GPUs if set."""
    shown = [f"{k}={os.environ[k]!r}" for k in ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES")
             if k in os.environ]
    return ("check the GPU driver (nvidia-smi, or rocm-smi for AMD) and "
            + (f"{', '.join(shown)}, which can hide GPUs" if shown else "that CUDA_VISIBLE_DEVICES does not hide them"))


def has_gpu() -> bool:
    return bool(gpus())


def select_devices(cpu_only: bool, gpu_idxs: Sequence[int] | None = None, ask: bool = False,
                   parallel: bool = False) -> str:
    """DeepFaceLab's device choice; returns what is used, for the banner and the model summary.

    `cpu_only` hides every GPU (CUDA_VISIBLE_DEVICES=-1, before TensorFlow loads CUDA).
    Otherwise the GPUs in `gpu_idxs` (--force-gpu-idxs), or those chosen at the prompt
    "Choose one or several GPU idxs (separated by comma)" when `ask`, or else all of them;
    on a machine without a GPU the CPU, with one line when GPUs were asked for. Several GPUs
    train data parallel under TensorFlow and JAX when `parallel` (training); otherwise the first
    is used, with a line. With a cluster in TF_CONFIG (--worker-hosts), training is multi-worker.
    """
    from core import interact
    if cpu_only:
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
    if parallel and worker_count() > 1:
        return _multi_worker()
    if cpu_only:
        return "CPU"
    found = gpus()
    if not found:
        vendor = _setup_gpu_vendor()
        if vendor not in ("", "none") and not gpu_idxs:
            interact.log_warn(f"scripts/setup.sh installed the {vendor} GPU build, but {backend_name()} sees no GPU "
                              f"(see `main.py doctor`); running on the CPU")
        if gpu_idxs:
            interact.log_warn(f"GPU {','.join(map(str, gpu_idxs))} asked for, but no GPU is visible to "
                              f"{backend_name()} (see `main.py doctor`); running on the CPU")
        return "CPU"
    names = [n for n, _ in found]
    if gpu_idxs is None and ask and len(found) > 1:
        interact.log_info("\n".join(f"[{i}] : {n}" for i, n in enumerate(names)))
        answer = interact.input_str("Choose one or several GPU idxs (separated by comma)",
                                    ",".join(map(str, range(len(found)))))
        try:
            gpu_idxs = parse_gpu_idxs(answer)
        except argparse.ArgumentTypeError as e:
            raise VisageError(str(e)) from None
    chosen = list(gpu_idxs) if gpu_idxs else list(range(len(found)))
    bad = [i for i in chosen if not 0 <= i < len(found)]
    if bad:
        raise VisageError(f"no GPU {bad[0]}: this machine has {len(found)} ({', '.join(names)})")
    if len(chosen) > 1 and parallel and backend_name() in PARALLEL_BACKENDS:
        data_parallel(chosen)
        return f"GPUs {','.join(map(str, chosen))} data parallel: {', '.join(names[i] for i in chosen)}"
    if len(chosen) > 1:
        interact.log_warn(f"training on several GPUs is built for --backend tensorflow and jax; using GPU "
                          f"{chosen[0]} only")
    _impl().use_gpu(chosen[0])
    return f"GPU {chosen[0]}: {names[chosen[0]]}"


def data_parallel(devices: Sequence[int] | None = None) -> int:
    """Split each training batch over several devices, before the model is built; returns how many.

    Every variable is replicated, each device computes the loss of its slice of the batch and
    the gradients are all-reduced, so one step gives the weights a single device would
    (TensorFlow: MirroredStrategy; JAX: keras.distribution.DataParallel).
    `devices`: GPU indexes, or None for every device the backend has (the CPU's logical devices in tests).
    """
    if backend_name() not in PARALLEL_BACKENDS:
        raise VisageError(f"data-parallel training is built for --backend {' and '.join(PARALLEL_BACKENDS)}, "
                          f"not {backend_name()}")
    return _impl().data_parallel(None if devices is None else list(devices))


# --- several machines (TensorFlow's MultiWorkerMirroredStrategy) --------------------------
def add_worker_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--worker-hosts", metavar="host:port,...",
                   help="train on several machines (TensorFlow only): every worker's host:port, the same list on "
                        "each; with --worker-index. TF_CONFIG, when set, says the same")
    p.add_argument("--worker-index", type=int, metavar="N",
                   help="this machine's place in --worker-hosts; 0 is the chief, which alone saves, previews "
                        "and logs")


def set_workers(hosts: str | None, index: int | None) -> None:
    """--worker-hosts/--worker-index -> TF_CONFIG, which TensorFlow's MultiWorkerMirroredStrategy reads."""
    if hosts is None and index is None:
        return
    workers = [h.strip() for h in (hosts or "").split(",") if h.strip()]
    if not workers or index is None or not 0 <= index < len(workers):
        raise VisageError("--worker-hosts host:port,... and --worker-index N (0 to one less than the number of "
                          "hosts) go together")
    if not all(h.rpartition(":")[2].isdigit() for h in workers):
        raise VisageError(f"--worker-hosts: each worker is host:port, got {hosts!r}")
    os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})


def _tf_config() -> dict:
    try:
        config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    except json.JSONDecodeError:
        raise VisageError("TF_CONFIG is not JSON: see the README's multi-machine recipe") from None
    return config if isinstance(config, dict) else {}


def worker_count() -> int:
    """How many machines train together (TF_CONFIG's cluster); 1 without TF_CONFIG."""
    cluster = _tf_config().get("cluster") or {}
    return max(1, sum(len(cluster.get(role) or []) for role in ("chief", "worker")))


def is_chief() -> bool:
    """Whether this process saves, previews and logs: always, except on the other workers of a cluster."""
    config = _tf_config()
    task, cluster = config.get("task") or {}, config.get("cluster") or {}
    if worker_count() <= 1:
        return True
    if cluster.get("chief"):
        return task.get("type") == "chief"
    return task.get("type", "worker") == "worker" and int(task.get("index", 0)) == 0


def _multi_worker() -> str:
    if backend_name() != "tensorflow":
        raise VisageError(f"training on several machines (TF_CONFIG / --worker-hosts) is built for --backend "
                          f"tensorflow only, not {backend_name()}")
    task = _tf_config().get("task") or {}
    replicas = _impl().multi_worker()
    return (f"{task.get('type', 'worker')} {task.get('index', 0)} of {worker_count()} workers "
            f"({replicas} replicas in all{', chief' if is_chief() else ''})")


def _setup_gpu_vendor() -> str:
    """The --gpu choice scripts/setup.sh remembered in this virtual environment ('' when none)."""
    try:
        return (Path(sys.prefix) / "visage-gpu").read_text(encoding="utf-8").strip()
    except OSError:
        return ""


# --- precision --------------------------------------------------------------------------
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
    caps = [cc for _, cc in gpus()]
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


# --- compiled calls -----------------------------------------------------------------------
def make_train_step(loss_fn: Callable, optimizer, variables: Sequence, fuse_update: bool = True,
                    frozen: Sequence = ()) -> Callable:
    """Compile `loss_fn(batch) -> (total, aux...)` into one gradient step over `variables`.

    `frozen` are the other variables `loss_fn` reads (parts not trained this run): JAX's
    stateless step passes them in rather than baking them into the compiled graph. fp16
    needs loss scaling: pass a keras.optimizers.LossScaleOptimizer (the caller owns it).
    The step returns (total, aux...) as backend tensors; float() of each works everywhere.
    """
    return _impl().make_train_step(loss_fn, optimizer, list(variables), fuse_update, list(frozen))


def make_predict(fn: Callable) -> Callable:
    """`fn` for inference, returning NumPy arrays (no gradient bookkeeping)."""
    return _impl().make_predict(fn)


def peak_memory() -> int | None:
    """Peak bytes the backend has allocated on the (first) GPU, None on the CPU: for bench and gpu_check."""
    return _impl().peak_memory()


def reset_peak_memory() -> None:
    """Start peak_memory() afresh (TensorFlow, PyTorch; JAX keeps one peak per process), so each bench row is its own."""
    _impl().reset_peak_memory()


def optimizer_device(on_cpu: bool):
    """Context placing optimizer state on the CPU when asked and a GPU exists (DFL's option; TensorFlow only)."""
    if backend_name() == "tensorflow":
        return _impl().optimizer_device(on_cpu and has_gpu())
    return contextlib.nullcontext()
