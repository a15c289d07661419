"""`faceset.pak`: a whole faceset in one file, read with random access and no pickle.

Tens of thousands of small face files are slow to copy and to list (DeepFaceLab packs them
for the same reason). A pak keeps every face's JPEG bytes unchanged (the metadata is
already inside each JPEG), so unpacking gives the files back byte for byte.

Layout (all integers big-endian):
    b"VISAGEPAK"  version:u16  index_length:u64                    header, 19 bytes
    index: UTF-8 JSON {"files": [{"name", "offset", "length", "crc32"}, ...]}
    data:  the files' bytes, one after the other; offsets count from the end of the index
A reader needs the header and the index only; each face is then one seek and one read.
The reader refuses an index whose entries overlap or repeat data, so unpacking never writes
more bytes than the pak holds (a small pak cannot be made to fill a disk).
"""
from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from core.errors import VisageError
from core.fileio import atomic_writer, parse_json

PAK_NAME = "faceset.pak"
MAGIC = b"VISAGEPAK"
VERSION = 1
_HEADER = struct.Struct(">9sHQ")
_MAX_INDEX = 256 * 1024 * 1024
FACE_EXTS = (".jpg", ".jpeg")
# Images util writes beside the faces (`<stem>_debug.jpg`, `<stem>_mask.jpg`); they carry no
# face metadata and are never faces.
AUX_SUFFIXES = ("_debug", "_mask")


def is_aux_image(path: str | os.PathLike) -> bool:
    """True for util's debug/mask images, which live beside the faces but are not faces."""
    return Path(path).stem.endswith(AUX_SUFFIXES)


@dataclass(frozen=True)
class PakEntry:
    """Where one face lives inside a pak (`offset` is absolute in the file)."""
    pak_path: str
    name: str
    offset: int
    length: int
    crc32: int


def _safe_name(name: object) -> bool:
    """A plain file name every file system takes: no folders, drive, hidden dot, NUL, or over 255 bytes."""
    return (isinstance(name, str) and name not in ("", ".", "..") and not name.startswith(".")
            and "/" not in name and "\\" not in name and "\x00" not in name and ":" not in name
            and len(name.encode("utf-8")) <= 255)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _refuse_overlaps(entries: list[PakEntry], path: Path) -> None:
    """Each face's bytes are its own: shared or overlapping ranges would let unpack write more than the pak holds."""
    end, previous = 0, None
    for e in sorted(entries, key=lambda e: (e.offset, e.length)):
        if e.offset < end:
            raise VisageError(f"{path} is damaged or crafted: {e.name} shares its bytes with {previous}; "
                              "refused (nothing was unpacked)")
        if e.length:
            end, previous = e.offset + e.length, e.name


def read_entry(entry: PakEntry, handle=None) -> bytes:
    """The bytes of one face, checked against its CRC (a damaged pak never decodes silently)."""
    try:
        if handle is None:
            with open(entry.pak_path, "rb") as f:
                f.seek(entry.offset)
                data = f.read(entry.length)
        else:
            handle.seek(entry.offset)
            data = handle.read(entry.length)
    except OSError as e:
        raise VisageError(f"could not read {entry.pak_path}: {e.strerror or e}") from e
    if len(data) != entry.length or zlib.crc32(data) != entry.crc32:
        raise VisageError(f"{entry.pak_path} is damaged ({entry.name} does not match its checksum); "
                          "restore the pak from a copy or re-extract the faces")
    return data


class PakReader:
    """Random access to the faces of a pak by name; only the header and index are read up front."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        try:
            self._f = open(self.path, "rb")
        except FileNotFoundError as e:
            raise VisageError(f"faceset pak not found: {self.path}") from e
        except OSError as e:
            raise VisageError(f"could not open {self.path}: {e.strerror or e}") from e
        try:
            self.entries = self._read_index()
        except BaseException:
            self._f.close()
            raise
        self._by_name = {e.name: e for e in self.entries}

    def _read_index(self) -> list[PakEntry]:
        size = os.fstat(self._f.fileno()).st_size
        head = self._f.read(_HEADER.size)
        if len(head) < _HEADER.size or not head.startswith(MAGIC):
            raise VisageError(f"{self.path} is not a Visage faceset pak (a DeepFaceLab .pak cannot be read: "
                              "unpack it with DeepFaceLab, then import with util --import-dfl-faceset)")
        _, version, index_len = _HEADER.unpack(head)
        if version > VERSION:
            raise VisageError(f"{self.path} is pak format version {version}, newer than this Visage "
                              f"understands ({VERSION}); update Visage")
        if index_len > min(_MAX_INDEX, size - _HEADER.size):
            raise VisageError(f"{self.path} is truncated or damaged (bad index length)")
        damaged = f"{self.path} has a damaged index; restore it from a copy"
        try:
            index = parse_json(self._f.read(index_len), "it")
        except VisageError as e:
            raise VisageError(f"{damaged} ({e})") from e
        files = index.get("files") if isinstance(index, dict) else None
        if not isinstance(files, list) or not all(isinstance(f, dict) and all(
                _is_count(f.get(k)) for k in ("offset", "length", "crc32")) for f in files):
            raise VisageError(damaged)
        base = _HEADER.size + index_len
        entries = [PakEntry(str(self.path), f.get("name"), base + f["offset"], f["length"], f["crc32"])
                   for f in files]
        seen: set[str] = set()
        for e in entries:
            if not _safe_name(e.name) or e.name in seen:
                raise VisageError(f"{self.path} has a bad file name in its index ({e.name!r:.80}); refused")
            if e.offset + e.length > size:
                raise VisageError(f"{self.path} is truncated or damaged ({e.name} lies outside the file)")
            seen.add(e.name)
        _refuse_overlaps(entries, self.path)
        return entries

    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def __len__(self) -> int:
        return len(self.entries)

    def entry(self, name: str) -> PakEntry:
        try:
            return self._by_name[name]
        except KeyError:
            raise VisageError(f"{name} is not in {self.path}") from None

    def read(self, name: str) -> bytes:
        return read_entry(self.entry(name), self._f)

    def items(self) -> Iterator[tuple[PakEntry, bytes]]:
        for e in self.entries:
            yield e, read_entry(e, self._f)

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> PakReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise VisageError(f"could not read {path}: {e.strerror or e}") from e


def refuse_packed(folder: str | os.PathLike) -> None:
    """One clear line for commands that edit face files in place (sort, util, resize)."""
    if (Path(folder) / PAK_NAME).is_file():
        raise VisageError(f"{folder} is packed into {PAK_NAME}; unpack it first (util --unpack-faceset)")


def read_faceset(faces_dir: str | os.PathLike) -> Iterator[tuple[Path, bytes, PakEntry | None]]:
    """(path, JPEG bytes, pak entry or None) of every face image in a faceset folder.

    The one reader every command uses: from `faceset.pak` when the folder has one (in packed
    order; loose faces beside it are refused rather than silently mixed), else the loose
    files in natural order. util's _debug/_mask images come through too; callers skip those
    that carry no face metadata (`is_aux_image`).
    """
    from core.fileio import list_images
    faces_dir = Path(faces_dir)
    if not faces_dir.is_dir():
        raise VisageError(f"faceset folder not found: {faces_dir}")
    files = list_images(faces_dir, exts=FACE_EXTS)
    pak = faces_dir / PAK_NAME
    if not pak.is_file():
        for path in files:
            yield path, _read(path), None
        return
    loose = [p for p in files if not is_aux_image(p)]
    if loose:
        raise VisageError(f"{faces_dir} holds both {PAK_NAME} and {len(loose)} loose face image(s) "
                          f"(e.g. {loose[0].name}); unpack the pak (util --unpack-faceset) or move "
                          "the loose images out")
    with PakReader(pak) as reader:
        for entry, data in reader.items():
            yield pak / entry.name, data, entry


def write_pak(pak_path: str | os.PathLike, files: list[Path]) -> None:
    """Write `files` into a new pak atomically (temporary file, fsync, rename).

    The index comes before the data, so a first pass reads each file for its length and
    CRC; the second pass copies it and refuses if it changed in between.
    """
    pak_path = Path(pak_path)
    index, offset = [], 0
    for p in files:
        data = _read(p)
        index.append({"name": p.name, "offset": offset, "length": len(data), "crc32": zlib.crc32(data)})
        offset += len(data)
    blob = json.dumps({"files": index}, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    with atomic_writer(pak_path) as f:
        f.write(_HEADER.pack(MAGIC, VERSION, len(blob)))
        f.write(blob)
        for p, item in zip(files, index):
            data = _read(p)
            if len(data) != item["length"] or zlib.crc32(data) != item["crc32"]:
                raise VisageError(f"{p} changed while it was being packed; run the pack again")
            f.write(data)


@dataclass
class PackResult:
    pak_path: Path
    packed: list[Path]      # the face files now inside the pak (still on disk)
    skipped: list[Path]     # images without face metadata, left where they are


def pack(folder: str | os.PathLike) -> PackResult:
    """Pack every aligned face of `folder` into `folder/faceset.pak` and verify it.

    Nothing is deleted here: the caller removes `packed` once the user agrees, and the pak
    has been fully written and read back by then.
    """
    from core.facelib.face_meta import extract
    from core.fileio import list_images
    folder = Path(folder)
    pak_path = folder / PAK_NAME
    if pak_path.exists():
        raise VisageError(f"{folder} already holds {PAK_NAME}; unpack it first (util --unpack-faceset)")
    faces, skipped = [], []
    for p in list_images(folder, FACE_EXTS):
        (faces if extract(_read(p), name=str(p)) is not None else skipped).append(p)
    if not faces:
        raise VisageError(f"no aligned faces in {folder} to pack; extract faces first")
    write_pak(pak_path, faces)
    with PakReader(pak_path) as reader:           # read it all back before anyone deletes originals
        if reader.names() != [p.name for p in faces]:
            raise VisageError(f"{pak_path} did not read back correctly; the original files were kept")
        for _ in reader.items():
            pass
    return PackResult(pak_path, faces, skipped)


def unpack(folder: str | os.PathLike) -> list[Path]:
    """Write every face of `folder/faceset.pak` back as a file, byte-identical.

    A file of the same name that already exists with other content stops the unpack before
    anything is written; the pak itself is left for the caller to delete.
    """
    from core.fileio import atomic_write_bytes
    folder = Path(folder)
    written = []
    with PakReader(folder / PAK_NAME) as reader:
        conflicts = [e.name for e in reader.entries
                     if (folder / e.name).exists() and _read(folder / e.name) != reader.read(e.name)]
        if conflicts:
            raise VisageError(f"{len(conflicts)} file(s) in {folder} (e.g. {conflicts[0]}) differ from the "
                              f"faces of the same name in {PAK_NAME}; move them away and unpack again "
                              "(nothing was written)")
        for entry, data in reader.items():
            target = folder / entry.name
            if not target.exists():
                atomic_write_bytes(target, data)
            written.append(target)
    return written
