"""`exportdfm`: a trained model as DeepFaceLab's `.dfm` for DeepFaceLive, or as a plain `.onnx`.

DeepFaceLab's flow: pick the model, "Export quantized?", then `<name>_<Model>_model.dfm` is
written beside the model's files. The graph is the model's own inference graph (the one the
merger predicts with); `in_face` is NHWC float 0..1 BGR at the model's resolution, the outputs
are `out_face_mask`, `out_celeb_face`, `out_celeb_face_mask` (AMP adds the `morph_value` input).
"""
from __future__ import annotations

import argparse

from core import interact
from core.options import Option, resolve

OPTIONS = (
    Option("quantize", bool, False, "Store the weights as float16: half the file size; DeepFaceLive computes "
           "as before. If the exported model misbehaves, export again without it.", prompt="Export quantized?"),
)


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    from models import model_names
    from models.onnx_export import FORMATS
    p = sub.add_parser("exportdfm", parents=[parent], help="export a trained model for DeepFaceLive (.dfm) or as ONNX",
                       description="Write the model's swap graph as one ONNX file: <name>_<Model>_model.dfm "
                                   "(DeepFaceLab's names, for DeepFaceLive) or <name>_<Model>_model.onnx.")
    p.add_argument("--model-dir", required=True, help="model folder, e.g. workspace/model")
    p.add_argument("--model", required=True, choices=model_names(swaps_faces=True), help="the model's class")
    p.add_argument("--force-model-name", help="use this model without the picker")
    p.add_argument("--format", choices=list(FORMATS), default="dfm",
                   help="dfm: DeepFaceLab's tensor names (in_face:0 ...), for DeepFaceLive; onnx: the same graph "
                        "with plain names (in_face ...) (default dfm)")
    p.add_argument("--quantize", action=argparse.BooleanOptionalAction, default=None,
                   help=f"{OPTIONS[0].help} (asked; default no)")
    p.set_defaults(func=cli)


def cli(args: argparse.Namespace) -> int:
    given = {} if args.quantize is None else {"quantize": args.quantize}
    from core.nn.backend import gpus
    from models.trained import load_trained
    gpus()                               # the backend's first device look, with its native chatter silenced
    trained = load_trained(args.model_dir, args.model, args.force_model_name, what="export", precision="fp32")
    try:
        opts = resolve(OPTIONS, given, ask=interact.is_interactive())
        from models.onnx_export import export_path
        path = export_path(args.model_dir, trained.title, args.format)
        interact.log_info(f"Exporting {trained.title} (iteration {trained.iteration}) to {path}"
                          + (" with float16 weights" if opts["quantize"] else ""))
        trained.cls.export(trained.options, trained.parts, path, opts["quantize"], args.format)
    finally:
        trained.release()
    interact.log_info(f"Done: {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    return 0
