"""`exportdfm` on really trained (tiny) SAEHD models: onnxruntime on the file predicts what the merger does.

Eight real faces of the man, cropped as the merger crops them, go through Visage's own predictor and
through onnxruntime on the exported file; DeepFaceLab's tensor names and layouts are checked as
DeepFaceLive reads them (in_face:0 NHWC at the model's resolution; out_face_mask:0, out_celeb_face:0,
out_celeb_face_mask:0).
"""
from __future__ import annotations

import numpy as np
import pytest

import main
from tests.support.train_support import TINY, model_faces, train_cli

FACES = 8



@pytest.fixture(scope="module")
def trained(src_faceset, dst_faceset, tmp_path_factory):
    """archi -> a folder with a tiny SAEHD `t` (df-ud / liae-ud, 64 px, fp32 like the export) trained one step."""
    def train(archi):
        out = tmp_path_factory.mktemp(f"export_{archi}")
        opts = [o for o in TINY if not o.startswith("archi=")] + [f"archi={archi}-ud", "target_iter=1",
                                                                  "precision=fp32"]
        assert train_cli(src_faceset, dst_faceset, out, opts=opts) == 0
        return out
    return train


@pytest.mark.parametrize("archi", ["df", "liae"])
def test_exported_dfm_predicts_as_the_merger(archi, trained, dst_faceset):
    import onnx
    import onnxruntime as ort
    from models.predictor import FacePredictor
    model_dir = trained(archi)
    base = ["exportdfm", "--model-dir", str(model_dir), "--model", "SAEHD", "--force-model-name", "t",
            "--non-interactive"]
    assert main.main(base + ["--no-quantize"]) == 0
    assert main.main(base + ["--quantize", "--format", "onnx"]) == 0
    dfm, plain = model_dir / "t_SAEHD_model.dfm", model_dir / "t_SAEHD_model.onnx"

    predictor = FacePredictor(model_dir, "SAEHD", "t")
    faces = model_faces(dst_faceset, predictor)
    expected = predictor.predict_batch(list(faces))
    want = {"mask": np.stack([e[2] for e in expected]), "face": np.stack([e[0] for e in expected]),
            "face_mask": np.stack([e[1] for e in expected])}
    del predictor

    for path, suffix, tolerance in ((dfm, ":0", 1e-3), (plain, "", 1e-2)):
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (inp,) = sess.get_inputs()
        assert inp.name == f"in_face{suffix}" and inp.shape[1:] == [64, 64, 3] and inp.type == "tensor(float)"
        outs = sess.get_outputs()
        assert [o.name for o in outs] == [f"out_face_mask{suffix}", f"out_celeb_face{suffix}",
                                          f"out_celeb_face_mask{suffix}"]
        assert [o.shape[1:] for o in outs] == [[64, 64, 1], [64, 64, 3], [64, 64, 1]]
        got = dict(zip(("mask", "face", "face_mask"), sess.run(None, {inp.name: faces})))
        for key in want:
            assert got[key].shape == want[key].shape
            assert np.abs(got[key] - want[key]).max() <= tolerance, (path.name, key)
    # quantized: the weights really are float16 (half the file), not a renamed copy of the fp32 export
    weights = onnx.load(str(plain)).graph.initializer
    assert any(w.data_type == onnx.TensorProto.FLOAT16 for w in weights)
    assert plain.stat().st_size < 0.6 * dfm.stat().st_size


def test_export_without_a_trained_model_is_one_line(tmp_path, capsys):
    assert main.main(["exportdfm", "--model-dir", str(tmp_path), "--model", "SAEHD", "--non-interactive"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"error: no trained SAEHD model in {tmp_path}; train one first (step 6)" in err[0]
    assert not list(tmp_path.glob("*.dfm"))
