"""faceset.pak on real faces: byte-identical pack/unpack, random access, refusals, training from a pak."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

import main
from core.errors import VisageError
from core.faceset_pak import PAK_NAME, PakReader, pack, unpack
from core.facelib.face_meta import read_meta
from samplelib.sample import load_samples
from samplelib.sample_processor import load_image
from tests.mainscripts.train.test_trainer import TINY, train_cli


def util(folder: Path, *flags: str) -> int:
    return main.main(["util", "--input-dir", str(folder), *flags])


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.jpg"))}


def test_pack_unpack_round_trip_is_byte_identical(faces):
    stray = faces / "notes.jpg"                       # a picture without face metadata stays loose
    cv2.imwrite(str(stray), np.full((32, 32, 3), 99, np.uint8))
    originals = {k: v for k, v in snapshot(faces).items() if k != "notes.jpg"}
    metas = {name: read_meta(faces / name) for name in originals}
    assert len(originals) == 12

    assert util(faces, "--pack-faceset", "--delete-originals") == 0
    assert (faces / PAK_NAME).is_file()
    assert sorted(p.name for p in faces.iterdir() if p.suffix != ".json") == sorted([PAK_NAME, "notes.jpg"])
    with PakReader(faces / PAK_NAME) as reader:
        assert sorted(reader.names()) == sorted(originals)
        assert all(reader.read(n) == originals[n] for n in originals)

    assert util(faces, "--unpack-faceset", "--delete-originals") == 0
    assert not (faces / PAK_NAME).exists()
    after = snapshot(faces)
    after.pop("notes.jpg")
    assert after == originals
    assert all(read_meta(faces / n) == metas[n] for n in originals)


def test_pack_keeps_originals_when_told(faces):
    before = snapshot(faces)
    assert util(faces, "--pack-faceset", "--no-delete-originals") == 0
    assert snapshot(faces) == before and (faces / PAK_NAME).is_file()
    with pytest.raises(VisageError, match="already holds faceset.pak"):
        pack(faces)
    # unpacking next to identical files rewrites nothing and loses nothing
    assert [p.name for p in unpack(faces)] == list(PakReader(faces / PAK_NAME).names())
    assert snapshot(faces) == before


def test_pak_layout_and_random_access(faces):
    originals = snapshot(faces)
    pack(faces)
    pak = faces / PAK_NAME
    raw = pak.read_bytes()
    magic, version, index_len = struct.unpack(">9sHQ", raw[:19])
    assert (magic, version) == (b"VISAGEPAK", 1)
    index = json.loads(raw[19:19 + index_len])
    assert len(index["files"]) == 12 and b"pickle" not in raw[:19 + index_len]
    with PakReader(pak) as reader:
        assert reader._f.tell() == 19 + index_len          # only header + index were read
        names = reader.names()
        middle = names[7]
        assert reader.read(middle) == originals[middle]
        entry = reader.entry(middle)
        assert raw[entry.offset:entry.offset + entry.length] == originals[middle]
    # damage one face: the others still read, the damaged one is refused by its checksum
    damaged = bytearray(raw)
    damaged[entry.offset + entry.length // 2] ^= 0xFF
    pak.write_bytes(bytes(damaged))
    with PakReader(pak) as reader:
        assert reader.read(names[0]) == originals[names[0]]
        with pytest.raises(VisageError, match="damaged"):
            reader.read(middle)


def test_pak_refuses_unsafe_names_and_conflicts(faces, tmp_path):
    evil = tmp_path / "evil"
    evil.mkdir()
    index = json.dumps({"files": [{"name": "../escape.jpg", "offset": 0, "length": 1, "crc32": 0}]}).encode()
    (evil / PAK_NAME).write_bytes(struct.pack(">9sHQ", b"VISAGEPAK", 1, len(index)) + index + b"x")
    with pytest.raises(VisageError, match="bad file name"):
        unpack(evil)
    assert not (tmp_path / "escape.jpg").exists()
    (evil / PAK_NAME).write_bytes(b"not a pak at all")
    with pytest.raises(VisageError, match="not a Visage faceset pak"):
        PakReader(evil / PAK_NAME)

    pack(faces)
    victim = sorted(faces.glob("*.jpg"))[3]
    victim.write_bytes(b"an edited file that must not be overwritten")
    with pytest.raises(VisageError, match="differ from the faces of the same name"):
        unpack(faces)
    assert victim.read_bytes() == b"an edited file that must not be overwritten"


def test_loader_reads_the_pak_like_the_files(faces):
    loose = load_samples(faces)
    loose_images = [load_image(s)[0] for s in loose]
    assert util(faces, "--pack-faceset", "--delete-originals") == 0
    assert not list(faces.glob("*.jpg"))
    packed = load_samples(faces)
    assert [Path(s.path).name for s in packed] == [Path(s.path).name for s in loose]
    for a, b, img in zip(loose, packed, loose_images):
        assert b.pak_entry is not None and a.pak_entry is None
        assert np.array_equal(a.landmarks, b.landmarks) and a.image_size == b.image_size
        assert a.face_type == b.face_type and a.yaw == b.yaw
        assert np.array_equal(load_image(b)[0], img)            # same pixels, read from the pak
    # debug images beside a pak are not faces; a loose face beside a pak is refused
    assert util(faces, "--add-landmarks-debug-images") == 2      # packed: unpack first
    cv2.imwrite(str(faces / "00001_0_debug.jpg"), np.zeros((8, 8, 3), np.uint8))
    assert len(load_samples(faces)) == 12
    with PakReader(faces / PAK_NAME) as reader:
        (faces / reader.names()[0]).write_bytes(reader.read(reader.names()[0]))
    with pytest.raises(VisageError, match="holds both faceset.pak and 1 loose face"):
        load_samples(faces)


def test_model_trains_from_a_packed_faceset(faces, dst_faceset, tmp_path):
    assert util(faces, "--pack-faceset", "--delete-originals") == 0
    model_dir = tmp_path / "model"
    assert train_cli(faces, dst_faceset, model_dir, opts=TINY + ["target_iter=2"]) == 0
    data = json.loads((model_dir / "t_SAEHD_data.json").read_text())
    assert data["iter"] == 2 and len(data["loss_history"]) == 2
    assert all(np.isfinite(v).all() for v in data["loss_history"])
