"""Training telemetry on real faces: held-out validation faces, history.csv, TensorBoard events, ETA."""
from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from mainscripts.train.train_preview import VAL_SRC_COLOUR, loss_plot
from models import validation
from tests.support.train_support import TINY, data, train_cli


def test_held_out_faces_never_reach_the_sample_workers(src_faceset, dst_faceset):
    """What each worker process was started with (its spec) leaves the validation faces out."""
    from samplelib.generator import TrainingBatches, face_name
    from samplelib.sample_processor import SampleConfig
    from core.facelib.face_type import FaceType
    chosen = {}

    def held_out(names):
        chosen.update({side: validation.choose(n, 2.0) for side, n in names.items()})
        chosen["all"] = names
        return {side: chosen[side] for side in ("src", "dst")}
    cfg = SampleConfig(resolution=64, face_type=FaceType.WHOLE_FACE)
    with TrainingBatches(src_faceset, dst_faceset, cfg, cfg, 2, workers=1, held_out=held_out) as tb:
        assert len(chosen["src"]) == 2 and len(chosen["dst"]) == 2      # 12 faces: a fifth at most
        for side in ("src", "dst"):
            trained = {face_name(s) for spec in tb.specs[side] for s in spec.samples}
            assert trained and not trained & set(chosen[side])
            assert trained | set(chosen[side]) == set(chosen["all"][side])
            assert [face_name(s) for s in tb.validation_samples[side]] == chosen[side]
        faces = tb.validation_batch()
        assert faces.src.target.shape == (2, 64, 64, 3) and faces.dst.mask.shape == (2, 64, 64, 1)
        assert next(tb).src.target.shape == (2, 64, 64, 3)


def test_held_out_counts():
    assert validation.held_out_count(12, 2.0) == 2            # small set: at most a fifth
    assert validation.held_out_count(100, 2.0) == 8           # at least 8
    assert validation.held_out_count(1000, 2.0) == 20         # 2 %
    assert validation.held_out_count(10000, 2.0) == 64        # at most 64
    assert validation.held_out_count(3, 2.0) == 0 and validation.held_out_count(1000, 0) == 0
    names = [f"{i:05d}.jpg" for i in range(1000)]
    picked = validation.choose(names, 2.0)
    assert len(set(picked)) == 20 and picked[0] < "00050" and picked[-1] > "00950"   # spread over the set


@pytest.fixture(scope="module")
def logged(src_faceset, dst_faceset, tmp_path_factory):
    """A tiny SAEHD trained to 4 then resumed to 6, validated every 2 iterations, an image every 4."""
    mp = pytest.MonkeyPatch()
    mp.setattr(validation, "VALIDATE_EVERY", 2)
    mp.setattr("mainscripts.train.train_logs.IMAGE_EVERY", 4)
    mp.setattr("mainscripts.train.train_logs.SCALAR_EVERY", 2)
    model_dir = tmp_path_factory.mktemp("telemetry")
    try:
        assert train_cli(src_faceset, dst_faceset, model_dir, opts=TINY + ["target_iter=4"]) == 0
        first = data(model_dir)
        assert train_cli(src_faceset, dst_faceset, model_dir, opts=["target_iter=6"]) == 0
    finally:
        mp.undo()
    return model_dir, first, data(model_dir)


def test_validation_is_recorded_once_and_logged_beside_the_loss(logged):
    model_dir, first, second = logged
    held = first["validation"]
    assert len(held["src"]) == 2 and len(held["dst"]) == 2
    assert second["validation"] == held                              # fixed across runs
    rows = second["validation_history"]
    assert [r[0] for r in rows] == [2, 4, 6] and rows[:2] == first["validation_history"]
    for _, src_loss, dst_loss, src_ssim, dst_ssim in rows:
        assert 0 < src_loss < 20 and 0 < dst_loss < 20 and 0 < src_ssim < 1 and 0 < dst_ssim < 1
    loss_png = cv2.imread(str(Path(model_dir) / "t_SAEHD_loss.png"))
    assert (loss_png == VAL_SRC_COLOUR).all(-1).any()                # the validation line in the graph
    plain = loss_plot(second["loss_history"], 800, 300)
    assert not (plain == VAL_SRC_COLOUR).all(-1).any()


def test_history_csv_has_every_iteration_and_the_validation(logged):
    model_dir, _, second = logged
    with open(Path(model_dir) / "t_SAEHD_history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["iteration"]) for r in rows] == list(range(1, 7))
    assert [float(r["src_loss"]) for r in rows] == pytest.approx([h[0] for h in second["loss_history"]], abs=1e-5)
    measured = [r for r in rows if r["val_src_ssim"]]
    assert [int(r["iteration"]) for r in measured] == [2, 4, 6]
    assert float(measured[-1]["val_dst_loss"]) == pytest.approx(second["validation_history"][-1][2], abs=1e-5)
    assert all(float(r["learning_rate"]) == pytest.approx(5e-5) for r in rows)


def test_tensorboard_reads_the_events(logged):
    event_file_loader = pytest.importorskip("tensorboard.backend.event_processing.event_file_loader")
    model_dir, _, second = logged
    files = sorted((Path(model_dir) / "t_SAEHD_logs").glob("events.out.tfevents.*"))
    assert len(files) == 2                                            # one per run
    scalars, images = {}, []
    for path in files:
        for event in event_file_loader.LegacyEventFileLoader(str(path)).Load():
            for v in event.summary.value:
                if v.HasField("image"):
                    images.append((event.step, v.image))
                else:
                    scalars.setdefault(v.tag, {})[event.step] = v.simple_value
    assert set(scalars) >= {"loss/src", "loss/dst", "ms_per_iter", "learning_rate", "validation/src_loss",
                            "validation/dst_ssim"}
    assert sorted(scalars["validation/src_ssim"]) == [2, 4, 6]
    assert scalars["validation/dst_loss"][6] == pytest.approx(second["validation_history"][-1][2], abs=1e-4)
    assert scalars["loss/src"][6] == pytest.approx(np.mean([h[0] for h in second["loss_history"][4:6]]), rel=1e-4)
    assert scalars["learning_rate"][2] == pytest.approx(5e-5)
    assert [s for s, _ in images] == [4]
    img = cv2.imdecode(np.frombuffer(images[0][1].encoded_image_string, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape[:2] == (images[0][1].height, images[0][1].width) and img.std() > 10


def test_status_line_shows_the_eta(src_faceset, dst_faceset, tmp_path, capsys):
    assert train_cli(src_faceset, dst_faceset, tmp_path, opts=TINY + ["target_iter=3", "validation_faces=0"]) == 0
    out = capsys.readouterr().out
    assert "[ETA 0:00:0" in out                                     # the status lines
    assert "eta to target : 0:00:00" in (tmp_path / "t_SAEHD_summary.txt").read_text()
    assert data(tmp_path)["validation"] == {"src": [], "dst": []} and not data(tmp_path)["validation_history"]


def test_csv_rows_past_the_saved_iteration_are_dropped(tmp_path):
    from mainscripts.train.train_logs import CSV_HEADER, trim_csv
    path = tmp_path / "h.csv"
    path.write_text(CSV_HEADER + "\n1,0,1,1,1,1,,,,\n2,0,1,1,1,1,,,,\n3,0,1,1,1,1,,,,\n4,0,1,")
    trim_csv(path, 2)
    assert path.read_text() == CSV_HEADER + "\n1,0,1,1,1,1,,,,\n2,0,1,1,1,1,,,,\n"


def test_crc32c_and_damaged_validation_record():
    from core.errors import VisageError
    from core.tb_events import crc32c
    assert crc32c(b"123456789") == 0xE3069283                      # the standard check value
    with pytest.raises(VisageError, match="plain face file names"):
        validation.check_record({"src": ["../../etc/passwd"], "dst": []})
    with pytest.raises(VisageError, match="validation_history"):
        validation.check_history([[1, 2, 3]])


def test_find_lr_leaves_the_model_alone_and_its_rate_trains(tiny_model, src_faceset, dst_faceset, tmp_path, capsys):
    """The sweep runs on a copy; at the suggested rate the loss falls, at 100 times it it does not."""
    import re
    import shutil
    import keras
    from models.model_base import NonFiniteLoss
    from tests.support.train_support import make_model, tiny_given
    model_dir = tmp_path / "m"
    shutil.copytree(tiny_model, model_dir)
    before = {p.name: p.read_bytes() for p in model_dir.rglob("*") if p.is_file() and p.name != "t_SAEHD_lock"}
    assert train_cli(src_faceset, dst_faceset, model_dir, opts=["batch_size=4"], extra=["--find-lr", "40"]) == 0
    suggested = float(re.search(r"--opt learning_rate=(\S+)", capsys.readouterr().out).group(1))
    after = {p.name: p.read_bytes() for p in model_dir.rglob("*") if p.is_file() and p.name != "t_SAEHD_lock"}
    assert after.pop("t_SAEHD_find_lr.png") and after == before                  # only the plot is new
    assert cv2.imread(str(model_dir / "t_SAEHD_find_lr.png")).shape == (360, 800, 3)
    assert 1e-7 < suggested < 1e-2
    drops = []
    for lr in (suggested, 100 * suggested):
        keras.utils.set_random_seed(0)
        model = make_model(src_faceset, dst_faceset, tmp_path / f"r{lr:g}",
                           tiny_given(batch_size="4", validation_faces="0", learning_rate=str(lr)))
        try:
            losses = [sum(model.train_iteration()) for _ in range(20)]
            drops.append(np.mean(losses[:5]) - np.mean(losses[-5:]))
        except NonFiniteLoss:
            drops.append(-np.inf)                                           # diverged: did not fall
        finally:
            model.close()
    assert drops[0] > 0.5 and drops[0] > drops[1] + 0.5, drops


@pytest.mark.parametrize("ms,shown", [(456.7, "[0456ms]"), (9999.9, "[9999ms]"), (10000, "[10.00s]"),
                                      (15384.0, "[15.38s]"), (123456.0, "[123.4s]")])
def test_status_line_shows_the_step_time_as_dfl(ms, shown):
    """DeepFaceLab switches to seconds at 10 s; tools that read its lines (bench.py) expect that."""
    from mainscripts.train.trainer import status_line
    line = status_line(7, ms, 1.5, 2.25)
    assert line[10:] == f"[#000007]{shown}[1.5000][2.2500]"


def test_train_with_the_gan_on_logs_src_and_dst(src_faceset, dst_faceset, tmp_path):
    """With the GAN on, loss_history rows carry the discriminator's column too; train runs and logs."""
    opts = TINY + ["gan_power=0.1", "gan_patch_size=8", "gan_dims=4", "target_iter=2", "validation_faces=0"]
    assert train_cli(src_faceset, dst_faceset, tmp_path, opts=opts) == 0
    rows = list(csv.DictReader((tmp_path / "t_SAEHD_history.csv").open()))
    history = data(tmp_path)["loss_history"]
    assert len(history[-1]) > 2 and [r["src_loss"] for r in rows] == [f"{h[0]:.5f}" for h in history]
