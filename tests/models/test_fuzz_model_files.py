"""Fuzzing a model folder's readers with mutations of a real model's data.json and part files.

500 seeded mutations (with the 1200 of test_fuzz_readers, 1700 of real files): data.json as bytes (bit flips, cuts, splices) and as JSON (deep
nesting, huge numbers, NaN, wrong types, dropped keys), half of them with the save marker
present (an interrupted save) and half without the previous save to fall back to; and .npz
part files as bytes, plus parts holding a pickled gadget or complex numbers. Loading
(`load_generation`, the options check the trainer and the merger make before building a
network, every part's arrays) must give a sane result or one VisageError, never execute
anything.
"""
from __future__ import annotations

import io
import json
import random
import shutil
from pathlib import Path

import numpy as np

from models.model_check import MAX_ITER
from models.model_files import ModelFiles
from models.saehd import SAEHDModel
from tests.support.fuzz_support import Fuzz, Gadget, byte_mutation, json_mutation

SEED = 7
DATA_MUTATIONS, PART_MUTATIONS = 400, 100
PARTS = ("encoder", "inter_AB", "inter_B", "decoder", "optimizer")


def load_model(model_dir: Path, with_arrays: bool = False):
    """What train and merge read before building a network: the save, its options (and its arrays)."""
    files = ModelFiles(model_dir, "t", "SAEHD")
    generation = files.load_generation()
    if generation is None:
        return None
    options = SAEHDModel.saved_options(generation.data, files.data_path)
    settings = SAEHDModel.settings_from_options(dict(options))
    arrays = {part: files.load_arrays(part) for part in PARTS} if with_arrays else {}
    return generation.data, settings, arrays


def sane(result) -> bool:
    if result is None:
        return True
    data, settings, arrays = result
    return (isinstance(data["iter"], int) and 0 <= data["iter"] <= MAX_ITER and 64 <= settings["resolution"] <= 640
            and all(a is None or all(v.dtype.kind in "fiub" and (v.dtype.kind != "f" or np.isfinite(v).all())
                                     for v in a.values()) for a in arrays.values()))


def gadget_npz(marker: Path) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **{"0000": np.array([Gadget(str(marker))], dtype=object)})
    return buf.getvalue()


def complex_npz() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **{"0000": np.ones((3, 3), np.complex64)})
    return buf.getvalue()


def test_model_readers_survive_mutated_data_json_and_parts(tiny_model, tmp_path):
    rng = random.Random(SEED)
    fuzz = Fuzz()
    marker = tmp_path / "EXECUTED"
    model_dir = tmp_path / "m"
    shutil.copytree(tiny_model, model_dir)
    files = ModelFiles(model_dir, "t", "SAEHD")
    data_blob = files.data_path.read_bytes()
    doc = json.loads(data_blob)
    decoder = files.path("decoder.npz").read_bytes()
    previous = model_dir / "t_SAEHD_previous"
    hidden = tmp_path / "previous"

    for n in range(DATA_MUTATIONS):
        files.data_path.write_bytes(byte_mutation(rng, data_blob, decoder) if n % 3 == 0 else json_mutation(rng, doc))
        if n % 2:
            files.marker_path.write_text("{}")
        if (n // 2) % 2 and previous.exists():
            previous.rename(hidden)
        elif not (n // 2) % 2 and hidden.exists():
            hidden.rename(previous)
        fuzz.call(f"data.json {n}", load_model, model_dir, valid=sane)
        files.marker_path.unlink(missing_ok=True)
    files.data_path.write_bytes(data_blob)

    for n in range(PART_MUTATIONS):
        part = files.path(f"{rng.choice(PARTS)}.npz")
        original = part.read_bytes()
        kind = n % 10
        part.write_bytes(gadget_npz(marker) if kind == 0 else complex_npz() if kind == 1
                         else byte_mutation(rng, original, data_blob))
        fuzz.call(f"{part.name} {n}", load_model, model_dir, True, valid=sane)
        part.write_bytes(original)

    assert fuzz.calls == DATA_MUTATIONS + PART_MUTATIONS
    assert not marker.exists(), "a planted pickle gadget was executed"
    assert not fuzz.failures, f"{len(fuzz.failures)} call(s) failed:\n" + "\n".join(fuzz.failures[:25])
