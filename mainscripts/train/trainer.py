"""`train`: DeepFaceLab's trainer loop for every model in models.MODELS.

Console line `[HH:MM:SS][#000123][0456ms][0.1234][0.2345]` (iteration, ms for it — `15.38s`
from 10 s on, as DeepFaceLab —, src and dst loss); autosave every 25 minutes, at iteration 1 and
on exit; autobackup every N hours; an OpenCV preview window with DeepFaceLab's keys, or with
--no-preview the same preview and a loss plot written as images to the model folder. Ctrl-C saves and exits; a non-finite loss
stops without saving, so the last good save stays.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from core import interact
from core.options import WORKERS, Option
from core.errors import VisageError
from core.nn.backend import add_device_flags, add_worker_flags

AUTOSAVE_MINUTES = 25
PREVIEW_FILE_SECONDS = 60


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    from core.options import CONFIG_HELP
    from models import MODELS
    p = sub.add_parser("train", parents=[parent], help=f"train a model ({', '.join(MODELS)})",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_options_epilog())
    p.add_argument("--training-data-src-dir", help="src aligned faces, e.g. workspace/data_src/aligned "
                   "(for the models that train on src faces)")
    p.add_argument("--training-data-dst-dir", help="dst aligned faces (for the models that train on dst faces)")
    p.add_argument("--pretraining-data-dir", help="aligned faces of many people, used instead of src and dst "
                   "while the model option pretrain is on")
    p.add_argument("--model-dir", required=True, help="model folder, e.g. workspace/model")
    p.add_argument("--model", required=True, choices=list(MODELS), help="which model to train")
    p.add_argument("--force-model-name", help="use (or create) this model without the picker")
    p.add_argument("--no-preview", action="store_true", help="no window: write preview and loss images instead")
    add_device_flags(p, "train")
    add_worker_flags(p)
    p.add_argument("--silent-start", action="store_true", help="ask nothing: saved options, flags, then defaults")
    p.add_argument("--opt", action="append", metavar="NAME=VALUE",
                   help="set a model option, e.g. --opt resolution=96 (repeatable; all options are listed below)")
    p.add_argument("--config", metavar="FILE", help=CONFIG_HELP)
    p.add_argument("--workers", type=WORKERS, default=0, help="sample worker processes per side (0 = auto)")
    p.add_argument("--find-lr", nargs="?", const=100, type=Option("find_lr", int, 100, "sweep iterations", lo=20, hi=10000), metavar="ITERATIONS",
                   help="no training: sweep the learning rate on a copy of the model (default 100 iterations), "
                        "print the suggested learning_rate and plot it to <name>_<Model>_find_lr.png")
    p.set_defaults(func=cli)


def _options_epilog() -> str:
    """Every model option for `train --help`, from the models' own schemas (models.MODELS)."""
    from core.options import describe
    from models import MODELS, model_class
    from models.model_base import COMMON_OPTIONS
    common = {o.name for o in COMMON_OPTIONS}
    asking = [n for n in MODELS if model_class(n).ASKS_OPTIONS]
    lines = [f"model options (--opt NAME=VALUE or --config FILE; {', '.join(asking)} asks for those not given on "
             "a model's first run):",
             f" every model ({', '.join(MODELS)}):", *describe(COMMON_OPTIONS)]
    for name in MODELS:
        own = [o for o in model_class(name).option_schema() if o.name not in common]
        if own:
            lines += [f" {name} only:", *describe(own)]
    return "\n".join(lines)


def cli(args: argparse.Namespace) -> int:
    from core.options import given_options
    from models import model_class
    cls = model_class(args.model)
    face_dirs = cls.face_sets_given({"src": args.training_data_src_dir, "dst": args.training_data_dst_dir})
    pretraining = Path(args.pretraining_data_dir) if args.pretraining_data_dir else None
    for d in (*face_dirs.values(), *([pretraining] if pretraining else [])):
        if not d.is_dir():
            raise VisageError(f"training data folder not found: {d}; extract faces first (steps 4 and 5)")
    given = given_options(args)
    if args.find_lr:
        from mainscripts.train.find_lr import find_lr
        find_lr(cls, Path(args.model_dir), face_dirs.get("src"), face_dirs.get("dst"), args.force_model_name, given,
                args.silent_start, args.cpu_only, args.workers, args.force_gpu_idxs, args.find_lr)
        return 0
    from core.nn.backend import set_workers
    set_workers(args.worker_hosts, args.worker_index)
    window = not args.no_preview and _window_possible()
    model = cls(Path(args.model_dir), face_dirs.get("src"), face_dirs.get("dst"), args.force_model_name, given,
                args.silent_start, args.cpu_only, args.workers, args.force_gpu_idxs, pretraining_dir=pretraining)
    try:
        interact.log_info(model.summary())
        return train(model, window=window)
    finally:
        model.close()


def _window_possible() -> bool:
    """Checked before any question: without a display, train headless (--no-preview) with one line."""
    from core.windows import display_available
    if display_available():
        return True
    interact.log_info("No display found: training without the preview window (as --no-preview); the preview and "
                      "loss images are written to the model folder")
    return False


class Preview:
    """Renders previews; shows them in a window or writes them to the model folder."""

    def __init__(self, model, window: bool):
        from mainscripts.train.train_preview import PreviewState
        self.model, self.window, self.state = model, window, PreviewState()
        faces = model.batches.preview_batch(4 if model.net["resolution"] >= 128 else 6)
        self.src, self.dst = faces.src.target, faces.dst.target
        self.title = f"{model.files.name}_{model.CLASS_NAME}"
        if window:
            from core.windows import open_window
            open_window(self.title, "cannot open the preview window (no display?); use --no-preview")

    def image(self):
        from mainscripts.train.train_preview import render_preview
        title = f"{self.title}  iter {self.model.iter}"
        if hasattr(self.model, "preview_masks"):        # XSeg: its masks, drawn by its own preview
            from mainscripts.xseg.xseg_preview import render_xseg_preview
            return render_xseg_preview(self.model, self.src, self.state, title)
        out = self.model.preview_outputs(self.src, self.dst)
        return render_preview(self.src, self.dst, out, self.model.loss_history, self.state, title,
                              self.model.validation_history)

    def refresh(self) -> None:
        img = self.image()
        if self.window:
            import cv2
            cv2.imshow(self.title, img)
        else:
            from core.fileio import write_image
            from mainscripts.train.train_preview import loss_plot
            write_image(self.model.files.path("preview.jpg"), img, 92)
            write_image(self.model.files.path("loss.png"), loss_plot(self.model.loss_history, 800, 300,
                                                                     validation=self.model.validation_history))

    def history(self) -> None:
        from core.fileio import write_image
        write_image(self.model.files.path("history") / f"{self.model.iter:07d}.jpg", self.image(), 90)

    def poll(self) -> str | None:
        if not self.window:
            return None
        import cv2
        from mainscripts.train.train_preview import handle_key
        key = cv2.waitKey(1)
        if key < 0:
            return None
        self.state, action = handle_key(self.state, key & 0xFF)
        return action


class StatusLine:
    """The iteration line: rewritten in place (`\r`) at a terminal, one line each when the output goes
    to a file or pipe, so a log never holds lines run together."""

    def __init__(self):
        self.tty, self.open = sys.stdout.isatty(), False

    def show(self, line: str, keep: bool) -> None:
        if not self.tty:
            print(line, flush=True)
            return
        print("\r" + line, end="\n" if keep else "", flush=True)
        self.open = not keep

    def close(self) -> None:
        """End a line left open at the terminal, before other output."""
        if self.open:
            print(flush=True)
            self.open = False


def step_time(ms: float) -> str:
    """DeepFaceLab's step time: `0456ms` below 10 s, from 10 s on seconds in 5 characters (`15.38s`)."""
    return f"{int(ms):04d}ms" if ms < 10000 else f"{ms / 1000:0.4f}"[:5] + "s"


def status_line(it: int, ms: float, src: float, dst: float | None, eta: str = "") -> str:
    """DeepFaceLab's line: time, iteration, step time, src and dst loss (one loss when `dst` is None: XSeg)."""
    losses = f"[{src:.4f}]" + ("" if dst is None else f"[{dst:.4f}]")
    return f"[{time.strftime('%H:%M:%S')}][#{it:06d}][{step_time(ms)}]{losses}" + (f"[ETA {eta}]" if eta else "")


def train(model, window: bool = True, autosave_minutes: float = AUTOSAVE_MINUTES, max_minutes: float = 0,
          max_iters: int = 0) -> int:
    """Run until Enter/Ctrl-C/target iteration (or `max_minutes` / `max_iters` more iterations, the demo's
    bounds); returns the exit code."""
    from core.nn.backend import is_chief
    if not is_chief():
        from mainscripts.train.train_worker import train_as_worker
        return train_as_worker(model)
    from mainscripts.train.train_logs import TrainLogs
    from models.model_base import NonFiniteLoss
    preview = Preview(model, window)
    logs = TrainLogs(model, preview.image)
    console = StatusLine()
    history_every = 10 * max(1, model.net["resolution"] // 64)
    backup_seconds = model.options["autobackup_hour"] * 3600
    last_save = last_backup = last_file_preview = time.monotonic()
    started, waited0, last_print = time.monotonic(), model.batches.wait_seconds, 0.0
    clock = None                 # max_minutes counts from the first step, which compiles the graph
    stop_iter = model.iter + max_iters if max_iters else 0
    preview.refresh()
    interact.log_info("Starting. Press Enter in the preview window (or Ctrl-C here) to save and stop.")
    try:
        while not model.reached_target():
            t0 = time.perf_counter()
            src, dst = model.train_iteration()
            ms = (time.perf_counter() - t0) * 1000
            validation = logs.after_iteration(ms)
            now = time.monotonic()
            keep = now - last_print > 60 or model.iter == 1 or validation is not None
            console.show(status_line(model.iter, ms, src, dst if model.SWAPS_FACES else None, model.eta), keep)
            if validation:
                interact.log_info(validation)
            last_print = now if keep else last_print
            if model.iter == 1 or now - last_save > autosave_minutes * 60:
                model.save()
                last_save = now
            if backup_seconds and now - last_backup > backup_seconds:
                model.save()
                model.backup()
                last_backup = now
            if model.options["write_preview_history"] and model.iter % history_every == 0:
                preview.history()
            if not window and now - last_file_preview > PREVIEW_FILE_SECONDS:
                preview.refresh()
                last_file_preview = now
            action = preview.poll()
            if action == "save_exit":
                break
            clock = clock or now
            if max_minutes and now - clock > max_minutes * 60:
                console.close()
                interact.log_info(f"Time limit of {max_minutes:g} minutes reached.")
                break
            if stop_iter and model.iter >= stop_iter:
                console.close()
                interact.log_info(f"{max_iters} iterations done.")
                break
            if action == "save":
                model.save()
            elif action == "backup":
                model.save()
                model.backup()
            elif action == "refresh":
                preview.refresh()
        else:
            console.close()
            interact.log_info(f"Target iteration {model.options['target_iter']} reached.")
    except NonFiniteLoss as e:
        console.close()
        interact.log_err(f"{e}; training stopped without saving, the last good save is kept")
        return 1
    except KeyboardInterrupt:
        console.close()
    finally:
        logs.close()
    total = time.monotonic() - started
    share = (model.batches.wait_seconds - waited0) / total if total > 0 else 0.0
    interact.log_info(f"Saving at iteration {model.iter} (waited for samples {100 * share:.1f} % of the time)")
    model.save()
    preview.refresh()
    if window:
        import cv2
        cv2.destroyAllWindows()
    return 0
