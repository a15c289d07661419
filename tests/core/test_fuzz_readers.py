"""Fuzzing the readers of face files, faceset.pak and meta.json with mutations of real ones.

1200 seeded, deterministic mutations of aligned faces extracted from the sample clips, of a
pak packed from them and of a meta.json saved from them: bit flips, inserted and deleted
bytes, truncation, spliced JPEG segments, corrupted length fields, and JSON-level edits
(deep nesting, huge numbers, NaN, wrong types, dropped keys, repeated pak ranges, hostile
names, planted pickle gadgets). Every reader must return a valid result or raise VisageError;
anything else is collected and reported at the end. A watchdog (faulthandler) stops the run
with every thread's stack if one call takes over 30 s, and a pickle gadget that would create
a marker file if anything ever unpickled it must never create it.
"""
from __future__ import annotations

import json
import pickle
import random
import shutil
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.facelib import face_meta as fm
from core.faceset_pak import PAK_NAME, PakReader, pack, unpack
from core.sorting.features import FaceRecord, load_chunk
from mainscripts.util import restore_metadata, save_metadata
from samplelib.sample import Sample, load_samples
from tests.support.fuzz_support import Fuzz, Gadget, byte_mutation, json_mutation
from tests.support.hostile_support import embed_raw_meta, make_pak, meta_text, split_pak

SEED = 12
FACE_MUTATIONS, PAK_MUTATIONS, META_JSON_MUTATIONS = 700, 350, 150
HOSTILE_NAMES = ("../x.jpg", "/abs.jpg", "a\\b.jpg", "C:x.jpg", ".hidden.jpg", "a\x00.jpg", "", ".", "..", 5,
                 None, ["a"], "é" * 300 + ".jpg", "\ud800.jpg")


# ---------------------------------------------------------------- mutations

def _gadget_segment(marker: str) -> bytes:
    payload = pickle.dumps(Gadget(marker), protocol=2)  # starts 0x80 like DeepFaceLab's APP15
    return b"\xff\xef" + (len(payload) + 2).to_bytes(2, "big") + payload


def mutate_face(rng: random.Random, face: bytes, other: bytes, marker: str) -> bytes:
    kind = rng.randrange(10)
    if kind < 4:
        return byte_mutation(rng, face, other)
    if kind < 8:
        return embed_raw_meta(face, json_mutation(rng, json.loads(meta_text(face))))
    segments, tail = fm._split_jpeg(face, "face")       # whole segments of the other face, or a gadget
    raws = [s.raw for s in segments]
    extra = rng.choice([s.raw for s in fm._split_jpeg(other, "other")[0]] + [_gadget_segment(marker)])
    raws.insert(rng.randrange(len(raws) + 1), extra)
    return b"\xff\xd8" + b"".join(raws) + tail


def mutate_pak(rng: random.Random, pak: bytes, face: bytes, marker: str) -> bytes:
    index_blob, data = split_pak(pak)
    index = json.loads(index_blob)
    files = index["files"]
    kind = rng.randrange(8)
    if kind < 2:
        return byte_mutation(rng, pak, face)
    if kind == 2:                                       # one range named many times: a disk-filling amplifier
        f = rng.choice(files)
        files = files + [{**f, "name": f"dup_{i}.jpg"} for i in range(rng.choice([1, 50, 2000]))]
    elif kind == 3:                                     # ranges overlapping, or pointing anywhere
        f = dict(rng.choice(files))
        f[rng.choice(["offset", "length"])] += rng.choice([-1, 1, -f["length"] // 2, len(data), -10**6])
        files = [f if g["name"] == f["name"] else g for g in files]
    elif kind == 4:                                     # hostile or repeated names
        i = rng.randrange(len(files))
        files = files[:i] + [{**files[i], "name": rng.choice(HOSTILE_NAMES + (files[0]["name"],))}] + files[i + 1:]
    elif kind == 5:                                     # a face replaced by a DeepFaceLab face with a gadget
        planted = face[:2] + _gadget_segment(marker) + face[2:]
        files = files + [{"name": "planted.jpg", "offset": len(data), "length": len(planted),
                          "crc32": zlib.crc32(planted)}]
        data += planted
    elif kind == 6:
        return make_pak(index_blob, data, version=rng.choice([0, 2, 65535]))
    else:
        return make_pak(json_mutation(rng, index), data)
    return make_pak(json.dumps({"files": files}).encode(), data)


# ---------------------------------------------------------------- the readers and what a valid result is

def _valid_meta(meta: Any) -> bool:
    meta.validate()
    return isinstance(meta, fm.FaceMeta)


def _valid_face(result: Any) -> bool:
    image, meta = result
    return isinstance(image, np.ndarray) and image.ndim == 3 and _valid_meta(meta)


def _valid_samples(samples: Any) -> bool:
    return bool(samples) and all(isinstance(s, Sample) and s.landmarks.shape == (68, 2) for s in samples)


def _pak_read(pak: Path) -> list[bytes]:
    with PakReader(pak) as reader:
        return [data for _, data in reader.items()]


def _sort_read(path: Path) -> FaceRecord | str:
    """Sort's feature reader; its catch-all must never be what handled a file."""
    (_, result), = load_chunk(([str(path)], ("brightness",)))
    if isinstance(result, str) and "cannot be read (" in result:
        raise AssertionError(result)
    return result


@pytest.fixture(scope="module")
def real(src_faceset, tmp_path_factory) -> dict:
    """Three real faces, a pak of them and a meta.json saved from two of them."""
    faces = sorted(src_faceset.glob("*.jpg"))[:3]
    folder = tmp_path_factory.mktemp("fuzz_real")
    for p in faces:
        shutil.copy(p, folder / p.name)
    save_metadata(folder)
    meta_json = (folder / "meta.json").read_bytes()
    pack(folder)
    return {"faces": [p.read_bytes() for p in faces], "names": [p.name for p in faces],
            "pak": (folder / PAK_NAME).read_bytes(), "meta_json": meta_json}


def test_readers_survive_mutated_faces_paks_and_meta_json(real, tmp_path):
    rng = random.Random(SEED)
    fuzz = Fuzz()
    marker = tmp_path / "EXECUTED"
    faces, names = real["faces"], real["names"]

    face_dir = tmp_path / "face"
    face_dir.mkdir()
    path = face_dir / "f.jpg"
    for n in range(FACE_MUTATIONS):
        base, other = rng.sample(faces, 2)
        path.write_bytes(mutate_face(rng, base, other, str(marker)))
        fuzz.call(f"face {n} read_meta", fm.read_meta, path, valid=_valid_meta)
        fuzz.call(f"face {n} read_face", fm.read_face, path, valid=_valid_face)
        fuzz.call(f"face {n} load_samples", load_samples, face_dir, valid=_valid_samples)
        fuzz.call(f"face {n} sort", _sort_read, path)

    for n in range(PAK_MUTATIONS):
        folder = tmp_path / f"pak{n}"
        folder.mkdir()
        pak = folder / PAK_NAME
        pak.write_bytes(mutate_pak(rng, real["pak"], rng.choice(faces), str(marker)))
        fuzz.call(f"pak {n} reader", _pak_read, pak)
        fuzz.call(f"pak {n} load_samples", load_samples, folder, valid=_valid_samples)
        fuzz.call(f"pak {n} unpack", unpack, folder,         # never more bytes out than the pak holds
                  valid=lambda written: sum(p.stat().st_size for p in written) <= pak.stat().st_size)
        shutil.rmtree(folder)

    restore_dir = tmp_path / "restore"
    restore_dir.mkdir()
    saved = json.loads(real["meta_json"])
    for n in range(META_JSON_MUTATIONS):
        for name, face in zip(names, faces):
            (restore_dir / name).write_bytes(face)
        blob = byte_mutation(rng, real["meta_json"], faces[0]) if n % 3 == 0 else json_mutation(rng, saved)
        (restore_dir / "meta.json").write_bytes(blob)
        fuzz.call(f"meta.json {n} restore", restore_metadata, restore_dir,
                  valid=lambda r: all(_valid_meta(fm.read_meta(restore_dir / x)) for x in r["restored"]))

    assert fuzz.calls >= 4 * FACE_MUTATIONS + 3 * PAK_MUTATIONS + META_JSON_MUTATIONS
    assert not marker.exists(), "a planted pickle gadget was executed"
    assert not fuzz.failures, f"{len(fuzz.failures)} reader call(s) failed:\n" + "\n".join(fuzz.failures[:25])
