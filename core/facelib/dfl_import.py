"""Import DeepFaceLab aligned faces: their pickled APP15 dict becomes Visage JSON metadata.

DeepFaceLab stores each face's metadata as `pickle.dumps(dict)` in one APP15 segment.
Unpickling runs whatever callables the data names, so a faceset from the internet could run
code on the reader's machine. It is read here, and only here, through `RestrictedUnpickler`:
its `find_class` admits the handful of numpy and builtin names that arrays and plain
containers need, each replaced by a checking stand-in (plain number dtypes only, no preset
sizes); any other name stops the load before anything is called, object state (BUILD) is
accepted only for plain arrays and dtypes, and the opcodes that make instances of arbitrary
classes refuse. DeepFaceLab never needs more: it stores strings, numbers, lists, tuples,
dicts, numpy arrays and scalars, and bytes.
"""
from __future__ import annotations

import importlib
import io
import os
import pickle
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np

from core.errors import VisageError
from core.facelib.face_meta import (FaceMeta, embed, extract, jpeg_size, legacy_dfl_payload,
                                    strip_metadata)
from core.facelib.face_type import NAMES, face_type_from_str

MAX_PICKLE_BYTES = 16 * 1024 * 1024


class RefusedPickle(VisageError):
    """The pickle names a callable or a construct outside the allow-list; nothing was called."""


def _numpy_attr(*candidates: str) -> Callable:
    """numpy 2 renamed numpy.core to numpy._core; DFL files name the old module."""
    for dotted in candidates:
        module, _, attr = dotted.rpartition(".")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"none of {candidates} exists in this numpy")


_PLAIN_KINDS = "biufc"              # bool, ints, floats, complex: all DeepFaceLab stores
_NDARRAY = type("ndarray_marker", (), {"__repr__": lambda self: "numpy.ndarray"})()


def _plain_dtype(dt: Any) -> np.dtype:
    if not isinstance(dt, np.dtype):
        if not isinstance(dt, (str, bytes)):
            raise RefusedPickle("an array whose dtype is not a type code")
        dt = np.dtype(dt.decode("ascii") if isinstance(dt, bytes) else dt)
    if dt.kind not in _PLAIN_KINDS or dt.hasobject or dt.fields is not None or dt.subdtype is not None:
        raise RefusedPickle(f"an array of dtype {dt} (only plain numbers are accepted)")
    return dt


def _safe_dtype(code: Any, align: Any = False, copy: Any = True) -> np.dtype:
    """numpy.dtype for plain number types only; always a private copy (BUILD mutates it)."""
    if not isinstance(code, str):
        raise RefusedPickle("a numpy dtype built from something other than a type code")
    return np.dtype(_plain_dtype(code), bool(align), True)


def _safe_reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """numpy's pickle creates an empty array here and fills it in BUILD (checked there)."""
    if subtype is not _NDARRAY:
        raise RefusedPickle(f"an array of class {subtype!r}")
    if tuple(shape) != (0,):
        raise RefusedPickle("an array reconstructed with a preset shape")
    reconstruct = _numpy_attr("numpy._core.multiarray._reconstruct", "numpy.core.multiarray._reconstruct")
    return reconstruct(np.ndarray, (0,), _plain_dtype(dtype))


def _safe_scalar(dtype: Any, *args: Any) -> Any:
    scalar = _numpy_attr("numpy._core.multiarray.scalar", "numpy.core.multiarray.scalar")
    if not (len(args) == 1 and isinstance(args[0], bytes)):
        raise RefusedPickle("a numpy scalar not built from raw bytes")
    return scalar(_plain_dtype(dtype), *args)


def _safe_frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    if not isinstance(buf, (bytes, bytearray)):
        raise RefusedPickle("an array over a non-byte buffer")
    frombuffer = _numpy_attr("numpy._core.numeric._frombuffer", "numpy.core.numeric._frombuffer")
    return frombuffer(buf, _plain_dtype(dtype), shape, order)


def _latin1_encode(text: Any, encoding: Any = "latin1") -> bytes:
    """Protocol 2 stores bytes as _codecs.encode(str, 'latin1'); no other codec is looked up."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise RefusedPickle("_codecs.encode with a codec other than latin1")
    return text.encode("latin1")


def _safe_bytearray(*args: Any) -> bytearray:
    """bytearray from bytes (or protocol 2's latin1 text), never from a size (a memory bomb)."""
    if not args:
        return bytearray()
    if len(args) == 1 and isinstance(args[0], (bytes, bytearray)):
        return bytearray(args[0])
    if len(args) == 2 and isinstance(args[0], str) and args[1] in ("latin1", "latin-1"):
        return bytearray(args[0], "latin1")
    raise RefusedPickle("a bytearray built from something other than bytes")


def _safe_collection(kind: type) -> Callable:
    def build(items: Any = ()) -> Any:
        if not isinstance(items, (list, tuple, set, frozenset)):
            raise RefusedPickle(f"a {kind.__name__} built from a {type(items).__name__}")
        return kind(items)
    return build


_NUMPY_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray")
_NUMERIC_MODULES = ("numpy.core.numeric", "numpy._core.numeric")
_BUILTIN_MODULES = ("builtins", "__builtin__")     # protocol 2 writes Python 2's name
# Every global a DeepFaceLab pickle may name, each mapped to a checking stand-in.
ALLOWED: dict[tuple[str, str], Any] = {
    **{(m, "_reconstruct"): _safe_reconstruct for m in _NUMPY_MODULES},
    **{(m, "scalar"): _safe_scalar for m in _NUMPY_MODULES},
    **{(m, "_frombuffer"): _safe_frombuffer for m in _NUMERIC_MODULES},
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _safe_dtype,
    ("_codecs", "encode"): _latin1_encode,
    **{(m, "set"): _safe_collection(set) for m in _BUILTIN_MODULES},
    **{(m, "frozenset"): _safe_collection(frozenset) for m in _BUILTIN_MODULES},
    **{(m, "bytearray"): _safe_bytearray for m in _BUILTIN_MODULES},
}
_DTYPE_KEYS_NONE = (2, 3, 4)        # dtype state: subarray, names, fields must be None


def _check_build(inst: Any, state: Any) -> None:
    """BUILD may only fill a plain array, or set the byte order of a plain dtype."""
    if isinstance(inst, np.dtype):
        ok = (isinstance(state, tuple) and len(state) in (8, 9) and state[0] in (3, 4)
              and state[1] in ("<", ">", "|", "=") and all(state[i] is None for i in _DTYPE_KEYS_NONE)
              and state[7] == 0 and (len(state) == 8 or state[8] is None))
        if not ok:
            raise RefusedPickle("a numpy dtype with fields, flags or metadata")
    elif type(inst) is np.ndarray:
        ok = (isinstance(state, tuple) and len(state) == 5 and isinstance(state[2], np.dtype)
              and isinstance(state[4], (bytes, bytearray)))
        if not ok:
            raise RefusedPickle("a numpy array whose data is not raw bytes")
        _plain_dtype(state[2])
    else:
        raise RefusedPickle(f"setting the state of a {type(inst).__name__}")


class RestrictedUnpickler(pickle._Unpickler):
    """Loads only plain containers and numpy arrays of numbers.

    The pure-Python unpickler is used because its opcode table can be narrowed: globals go
    through `find_class` (the allow-list), BUILD is checked by `_check_build`, and the
    opcodes that make arbitrary objects (INST, OBJ, NEWOBJ, EXT, persistent ids) refuse.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def find_class(self, module: str, name: str) -> Any:
        target = ALLOWED.get((module, name))
        if target is None:
            raise RefusedPickle(f"pickled data references {module}.{name}")
        return target

    def _load_build(self) -> None:
        _check_build(self.stack[-2] if len(self.stack) >= 2 else None, self.stack[-1])
        pickle._Unpickler.load_build(self)

    def _refuse(self) -> None:
        raise RefusedPickle("pickled data builds objects of arbitrary classes")

    def persistent_load(self, pid: Any) -> Any:
        raise RefusedPickle("pickled data uses a persistent id")


RestrictedUnpickler.dispatch[pickle.BUILD[0]] = RestrictedUnpickler._load_build
for _op in (pickle.INST, pickle.OBJ, pickle.NEWOBJ, pickle.NEWOBJ_EX, pickle.EXT1, pickle.EXT2, pickle.EXT4):
    RestrictedUnpickler.dispatch[_op[0]] = RestrictedUnpickler._refuse


def restricted_load(source: bytes | BinaryIO, what: str, remedy: str) -> Any:
    """Unpickle DeepFaceLab data (a face's metadata, a model's data.dat or weights) through
    RestrictedUnpickler. A refusal or damage is one line starting with `what` (damage ends with
    `remedy`); nothing named by the data is ever called."""
    stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    try:
        return RestrictedUnpickler(stream).load()
    except RefusedPickle as e:
        raise RefusedPickle(f"{what}: {e}; refused, nothing was executed") from None
    except RecursionError:
        raise RefusedPickle(f"{what}: pickled data is nested too deeply; refused") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            MemoryError, OverflowError, UnicodeDecodeError, struct.error) as e:
        why = "the data ends early" if isinstance(e, EOFError) else f"{type(e).__name__}: {str(e)[:80]}"
        raise VisageError(f"{what} is truncated or damaged ({why}); {remedy}") from None


def load_dfl_dict(payload: bytes, name: str) -> dict:
    """DeepFaceLab's metadata dict from its APP15 payload, through the restricted unpickler."""
    if len(payload) > MAX_PICKLE_BYTES:
        raise VisageError(f"DFL face {name}: metadata is {len(payload)} bytes, far too large; refused")
    data = restricted_load(payload, f"DFL face {name}: its metadata",
                           "copy the face again from the DeepFaceLab faceset")
    if not isinstance(data, dict):
        raise VisageError(f"DFL face {name}: metadata is a {type(data).__name__}, not DeepFaceLab's dict")
    return data


# ---------------------------------------------------------------- DFL dict -> FaceMeta

def _array(d: dict, key: str, shape: tuple[int, int], name: str) -> np.ndarray:
    try:
        arr = np.asarray(d[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise VisageError(f"DFL face {name}: {key} is not an array of numbers") from None
    if arr.shape != shape or not np.isfinite(arr).all():
        raise VisageError(f"DFL face {name}: {key} has shape {arr.shape}, expected {shape} finite numbers")
    return arr.astype(np.float32)


def _polys(raw: Any, name: str) -> list[dict]:
    """DFL's {'polys': [{'type': 0|1, 'pts': Nx2}]} or the older [(type, pts), ...] form."""
    if raw is None:
        return []
    if isinstance(raw, dict):
        items = [(p.get("type"), p.get("pts")) if isinstance(p, dict) else (None, None)
                 for p in raw.get("polys", [])]
    elif isinstance(raw, (list, tuple)):
        items = [tuple(p) if isinstance(p, (list, tuple)) and len(p) == 2 else (None, None) for p in raw]
    else:
        raise VisageError(f"DFL face {name}: seg_ie_polys is a {type(raw).__name__}, "
                          "not DeepFaceLab's polygon list; it cannot be converted")
    out = []
    for kind, pts in items:
        try:
            arr = np.asarray(pts, np.float64).reshape(-1, 2)
            kind = int(kind)
        except (TypeError, ValueError):
            raise VisageError(f"DFL face {name}: seg_ie_polys holds a polygon that is not "
                              "(type, points); it cannot be converted") from None
        if kind not in (0, 1) or not np.isfinite(arr).all():
            raise VisageError(f"DFL face {name}: seg_ie_polys holds a polygon of unknown type {kind}")
        if len(arr):
            out.append({"type": "include" if kind == 1 else "exclude", "points": arr.tolist()})
    return out


def _xseg_png(raw: Any, name: str) -> bytes | None:
    """DFL stores cv2.imencode output (PNG, or JPEG when the PNG was over 8 KB); Visage keeps PNG."""
    import cv2
    if raw is None:
        return None
    buf = np.frombuffer(bytes(raw), np.uint8) if isinstance(raw, (bytes, bytearray)) \
        else np.asarray(raw).astype(np.uint8, copy=False).reshape(-1)
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    if img is None:
        raise VisageError(f"DFL face {name}: its XSeg mask cannot be decoded")
    if img.ndim == 3:
        img = img[..., 0]
    if img.dtype != np.uint8:
        img = (img.astype(np.float32) / np.iinfo(img.dtype).max * 255).round().astype(np.uint8)
    return cv2.imencode(".png", img)[1].tobytes()


def dfl_dict_to_meta(d: dict, name: str, image_size: int) -> FaceMeta:
    """Map DeepFaceLab's keys to FaceMeta; pitch/yaw and other extras are dropped."""
    face_type = d.get("face_type", "full_face")    # DFL's own default when the key is absent
    if not isinstance(face_type, str) or face_type not in NAMES:
        raise VisageError(f"DFL face {name}: unknown face_type {face_type!r}")
    missing = [k for k in ("landmarks", "source_filename", "source_rect", "source_landmarks") if d.get(k) is None]
    if missing:
        raise VisageError(f"DFL face {name}: metadata lacks {', '.join(missing)}; re-extract it in DeepFaceLab")
    source_landmarks = _array(d, "source_landmarks", (68, 2), name)
    if d.get("image_to_face_mat") is not None:
        mat = _array(d, "image_to_face_mat", (2, 3), name)
    elif face_type != "mark_only":                 # very old faces: recompute it as DFL would
        from core.facelib.geometry import face_transform
        mat = face_transform(source_landmarks, face_type_from_str(face_type), image_size)
    else:
        mat = np.array([[1, 0, 0], [0, 1, 0]], np.float32)
    try:
        rect = tuple(int(round(float(v))) for v in np.asarray(d["source_rect"]).reshape(-1))
        ebm = d.get("eyebrows_expand_mod")
        ebm = 1.0 if ebm is None else float(ebm)
    except (TypeError, ValueError):
        raise VisageError(f"DFL face {name}: source_rect or eyebrows_expand_mod is not numeric") from None
    if len(rect) != 4:
        raise VisageError(f"DFL face {name}: source_rect has {len(rect)} numbers, expected 4")
    src_name = d["source_filename"]
    if isinstance(src_name, bytes):
        src_name = src_name.decode("utf-8", "replace")
    polys = d.get("seg_ie_polys") if d.get("seg_ie_polys") is not None else d.get("ie_polys")
    meta = FaceMeta(face_type=face_type, landmarks=_array(d, "landmarks", (68, 2), name),
                    source_filename=str(src_name), source_rect=rect, source_landmarks=source_landmarks,
                    image_to_face_mat=mat, eyebrows_expand_mod=ebm, seg_ie_polys=_polys(polys, name),
                    xseg_mask=_xseg_png(d.get("xseg_mask"), name))
    try:
        meta.validate()
    except VisageError as e:
        raise VisageError(f"DFL face {name}: {e}") from None
    return meta


# ---------------------------------------------------------------- files

def convert_bytes(data: bytes, name: str) -> tuple[bytes, FaceMeta] | None:
    """(Visage JPEG bytes, metadata) for a DeepFaceLab face, or None if it is not one.

    The image data is kept byte-identical; only the pickled segment is replaced.
    """
    payload = legacy_dfl_payload(data, name=name)
    if payload is None:
        return None
    d = load_dfl_dict(payload, name)
    try:
        meta = dfl_dict_to_meta(d, name, max(jpeg_size(data, name=name)))
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, RecursionError) as e:
        raise VisageError(f"DFL face {name}: its metadata has an unexpected layout ({type(e).__name__}: "
                          f"{str(e)[:80]}); re-extract it in DeepFaceLab") from None
    return embed(strip_metadata(data, name=name), meta, name=name), meta


@dataclass
class ImportReport:
    converted: list[str] = field(default_factory=list)
    already_visage: list[str] = field(default_factory=list)
    not_dfl: list[str] = field(default_factory=list)       # no face metadata, or not a JPEG
    refused: list[str] = field(default_factory=list)       # one line each: dangerous pickles
    failed: list[str] = field(default_factory=list)        # one line each: damaged metadata


def import_faceset(input_dir: str | os.PathLike, output_dir: str | os.PathLike | None = None) -> ImportReport:
    """Convert every DeepFaceLab face of `input_dir`, in place or into `output_dir` (same names).

    Each converted file is written atomically; a refused or damaged face is left untouched and
    reported, and the others are still converted.
    """
    from core.fileio import atomic_write_bytes, list_images
    input_dir = Path(input_dir)
    out_dir = Path(output_dir) if output_dir else input_dir
    report = ImportReport()
    files = list_images(input_dir)
    if not files:
        raise VisageError(f"no images in {input_dir}; point --input-dir at a DeepFaceLab aligned folder")
    for p in files:
        try:
            data = p.read_bytes()
        except OSError as e:
            report.failed.append(f"{p.name}: could not be read ({e.strerror or e})")
            continue
        if not data.startswith(b"\xff\xd8"):
            report.not_dfl.append(p.name)
            continue
        try:
            converted = convert_bytes(data, p.name)
            if converted is None:
                if extract(data, name=p.name) is not None:
                    report.already_visage.append(p.name)
                    if out_dir != input_dir:
                        atomic_write_bytes(out_dir / p.name, data)
                else:
                    report.not_dfl.append(p.name)
                continue
        except RefusedPickle as e:
            report.refused.append(str(e))
            continue
        except VisageError as e:
            report.failed.append(str(e))
            continue
        atomic_write_bytes(out_dir / p.name, converted[0])
        report.converted.append(p.name)
    return report
