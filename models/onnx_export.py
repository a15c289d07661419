"""A model's inference graph as one ONNX file: a DeepFaceLab `.dfm` (for DeepFaceLive) or plain `.onnx`.

The converter is Keras' own `Model.export(format="onnx")`: one call that works under every
Keras backend (tf2onnx under TensorFlow, torch.onnx under PyTorch, jax2tf + tf2onnx under
JAX), on the same graph the merger predicts with, so nothing about the network is declared
twice. The `onnx` package then gives the graph DeepFaceLab's tensor names (a `.dfm` keeps
TensorFlow's `:0` suffixes, as DFL's tf2onnx export does, because DeepFaceLive feeds
`in_face:0` / `morph_value:0`) and, when asked, stores the weights as float16 with a Cast
back to float32 in front of each use: half the file, the same float32 maths and inputs.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from core.errors import VisageError

# format -> (file suffix, tensor-name suffix)
FORMATS = {"dfm": (".dfm", ":0"), "onnx": (".onnx", "")}
OPSET = 17
MIN_FP16_SIZE = 16            # smaller float constants (shapes, epsilons) stay float32


def export_path(model_dir: Path, title: str, fmt: str) -> Path:
    """DeepFaceLab's file name, `<name>_<Model>_model.dfm` (`.onnx` for the plain format)."""
    return Path(model_dir) / f"{title}_model{FORMATS[fmt][0]}"


def export_onnx(graph, path: Path, quantize: bool = False, graph_name: str = "visage", fmt: str = "dfm") -> None:
    """Convert the keras.Model `graph` and write it to `path` atomically (a failed export leaves nothing)."""
    import onnx
    from core.fileio import atomic_write_bytes
    from core.quiet import quiet_stderr
    specs = list(graph.inputs)
    with tempfile.TemporaryDirectory(prefix="visage_export_") as tmp:
        raw = Path(tmp) / "raw.onnx"
        try:
            with quiet_stderr():
                graph.export(str(raw), format="onnx", verbose=False, opset_version=OPSET,
                             input_signature=[specs[0]] if len(specs) == 1 else [specs])
        except ImportError as e:
            raise VisageError(f"ONNX export needs its converter ({e.name}); install the pinned requirements "
                              f"(scripts/setup.sh)") from None
        proto = onnx.load(str(raw))
    rename(proto, [t.name for t in specs], list(graph.output_names), FORMATS[fmt][1])
    fixed_dims(proto, [tuple(t.shape) for t in specs])
    if quantize:
        fp16_weights(proto)
    proto.graph.name = graph_name
    onnx.checker.check_model(proto)
    atomic_write_bytes(path, proto.SerializeToString())


def rename(proto, inputs: list[str], outputs: list[str], suffix: str) -> None:
    """Give the graph's inputs and outputs these names (+ suffix), in order, everywhere they are used."""
    graph = proto.graph
    real_inputs = [i for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    if len(real_inputs) != len(inputs) or len(graph.output) != len(outputs):
        raise VisageError(f"the converted graph has {len(real_inputs)} inputs / {len(graph.output)} outputs, "
                          f"expected {len(inputs)} / {len(outputs)}")
    mapping = {v.name: name + suffix for v, name in zip([*real_inputs, *graph.output], [*inputs, *outputs])}
    for v in [*real_inputs, *graph.output]:
        v.name = mapping[v.name]
    for node in graph.node:
        node.input[:] = [mapping.get(n, n) for n in node.input]
        node.output[:] = [mapping.get(n, n) for n in node.output]


def fixed_dims(proto, shapes: list[tuple]) -> None:
    """Write the inputs' fixed sizes into the graph (the converter leaves a leading one symbolic):
    AMP's `morph_value` is (1,), as DeepFaceLab declares it and DeepFaceLive feeds it."""
    graph = proto.graph
    real_inputs = [i for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    for value, shape in zip(real_inputs, shapes):
        for dim, size in zip(value.type.tensor_type.shape.dim, shape):
            if size is not None:
                dim.ClearField("dim_param")
                dim.dim_value = int(size)


def fp16_weights(proto) -> None:
    """DeepFaceLab's "Export quantized?": float32 weights stored as float16, cast back where used."""
    from onnx import TensorProto, helper, numpy_helper
    graph, casts = proto.graph, []
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT or int(np.prod(init.dims)) < MIN_FP16_SIZE:
            continue
        name = init.name
        half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), f"{name}__fp16")
        init.CopyFrom(half)
        casts.append(helper.make_node("Cast", [half.name], [name], to=TensorProto.FLOAT, name=f"{name}__cast"))
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    converted = {c.output[0] for c in casts}          # old IR versions also list weights as graph inputs
    kept = [i for i in graph.input if i.name not in converted]
    del graph.input[:]
    graph.input.extend(kept)
