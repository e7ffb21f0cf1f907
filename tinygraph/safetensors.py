"""The safetensors format, read and written with numpy alone (no pickle, no third-party code).

A ``.safetensors`` file is::

    8 bytes      N, the header's length, an unsigned little-endian integer
    N bytes      the header: UTF-8 JSON, padded with spaces to a multiple of 8 bytes,
                 {"__metadata__": {str: str}, name: {"dtype": "F64", "shape": [2, 3],
                 "data_offsets": [begin, end]}, ...}
    the rest     the tensors' raw little-endian bytes in C order; ``data_offsets`` count from here

This is the format of Hugging Face's ``safetensors`` library (``safetensors.numpy`` and
``safetensors.torch`` read what ``save_file`` writes, and ``load_file`` reads what they write). For the
same tensors ``save_file`` writes the bytes the library writes: tensors ordered by dtype (widest
first) then name, so each starts aligned to its item size; metadata keys are sorted (the library
writes them in its hash map's order, which varies from run to run).

``load_file`` checks the whole header before it allocates anything: the length N against the file
(and ``MAX_HEADER_BYTES``), the JSON's nesting (``MAX_DEPTH``, counted without parsing) and its types,
no repeated names, each entry's dtype, shape and offsets, ``end - begin`` equal to the bytes its shape
and dtype need, the tensors contiguous, non-overlapping and filling the data exactly to the end of
the file, and their total under ``max_bytes``. Every problem is a ``SafetensorsError`` naming the file,
the tensor and what is wrong.

Writes are atomic (``tinygraph.io.atomic_write``): a crash leaves the previous file intact.
"""
import json
import math
import os
import re
import stat
from collections.abc import Mapping

import numpy as np

from .errors import TinygraphError
from .io import atomic_write
from .tensor import Tensor

MAX_BYTES = 16 * 2**30          # default cap on the total size of a file's tensors (load_file)
MAX_HEADER_BYTES = 100_000_000  # the safetensors library's own limit on the header
MAX_DEPTH = 3                   # {name: {"shape": [...]}} is as deep as a valid header goes
METADATA = "__metadata__"
_CHUNK = 16 * 2**20             # bytes read at a time

# safetensors dtype -> numpy dtype (little-endian), in the library's order of its Dtype enum, which
# its writer sorts by (widest last here; written first). BF16, the F8 and F4/F6 kinds and complex
# have no numpy dtype: load_file names them.
DTYPES = {"BOOL": "|b1", "U8": "|u1", "I8": "|i1", "I16": "<i2", "U16": "<u2", "F16": "<f2",
          "I32": "<i4", "U32": "<u4", "F32": "<f4", "F64": "<f8", "I64": "<i8", "U64": "<u8"}
_RANK = {name: rank for rank, name in enumerate(DTYPES)}
_NAMES = {np.dtype(code).newbyteorder("="): name for name, code in DTYPES.items()}
_NOT_IN_NUMPY = ("BF16", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64")


class SafetensorsError(TinygraphError, ValueError):
    """A safetensors file that is missing, truncated, corrupt, or holds what numpy cannot represent."""


class TensorInfo:
    """One header entry: ``dtype`` (numpy, little-endian), ``shape``, and ``begin``/``end`` byte
    offsets into the data section."""
    __slots__ = ("dtype", "shape", "begin", "end")

    def __init__(self, dtype, shape, begin, end):
        self.dtype, self.shape, self.begin, self.end = dtype, shape, begin, end

    def __repr__(self):
        return f"TensorInfo({self.dtype.str}, {self.shape}, [{self.begin}, {self.end}])"


class Header:
    """A checked header: ``tensors`` {name: TensorInfo} in file order, ``metadata`` {str: str} or
    None, ``data_start`` (8 + N) and ``file_size``."""

    def __init__(self, path, tensors, metadata, data_start, file_size):
        self.path, self.tensors, self.metadata = path, tensors, metadata
        self.data_start, self.file_size = data_start, file_size

    @property
    def nbytes(self):
        """Bytes of tensor data after the header (the file's size minus the header's end)."""
        return self.file_size - self.data_start


# --- writing -----------------------------------------------------------------------------------------
def save_file(tensors, path, metadata=None):
    """Write ``tensors`` ({name: array or Tensor}) and ``metadata`` ({str: str} or None) to ``path``.

    Arrays are stored in C order, little-endian; dtypes bool, (u)int8..64 and float16/32/64.
    Raises ``TypeError``/``ValueError`` naming the entry before anything is written.
    """
    arrays = _check_tensors(tensors)
    if metadata is not None:
        if not isinstance(metadata, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise TypeError(f"save_file: metadata must be a dict of str -> str (the format stores "
                            f"strings only; json.dumps other values), got {_short(metadata)}")
        metadata = dict(sorted(metadata.items()))   # canonical (the library's order is a hash's)
    order = sorted(arrays, key=lambda name: (-_RANK[_NAMES[arrays[name].dtype]], name))
    header, offset = {} if metadata is None else {METADATA: metadata}, 0
    for name in order:
        array = arrays[name]
        header[name] = {"dtype": _NAMES[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)

    def write(f):
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for name in order:
            array = arrays[name]
            little = array.astype(array.dtype.newbyteorder("<"), copy=False)
            f.write(np.ascontiguousarray(little).reshape(-1).view(np.uint8).data)
    atomic_write(path, write)


def _check_tensors(tensors):
    """``{name: ndarray}`` (native byte order) after checking names and dtypes."""
    if not isinstance(tensors, Mapping):
        raise TypeError(f"save_file: expected a dict of name -> array (e.g. model.state_dict()), got "
                        f"{type(tensors).__name__}")
    arrays = {}
    for name, value in tensors.items():
        if not isinstance(name, str) or name == METADATA:
            raise ValueError(f"save_file: tensor names must be strings other than {METADATA!r}, got "
                             f"{name!r}")
        array = value._data if isinstance(value, Tensor) else np.asarray(value)
        dtype = array.dtype.newbyteorder("=") if array.dtype.byteorder != "|" else array.dtype
        if dtype not in _NAMES:
            raise TypeError(f"save_file: tensor {name!r} has dtype {array.dtype}; safetensors files "
                            f"hold bool, (u)int8-64 and float16/32/64 (convert with .astype)")
        arrays[name] = array.astype(dtype, copy=False)
    return arrays


# --- reading -----------------------------------------------------------------------------------------
def load_file(path, *, max_bytes=None):
    """``{name: ndarray}`` from a safetensors file, in file order; see the module docstring for what is
    checked first. ``max_bytes`` (default ``MAX_BYTES``, 16 GiB) caps the tensors' total size."""
    header = read_header(path, max_bytes=max_bytes)
    return read_tensors(header)


def read_header(path, *, max_bytes=None):
    """The checked ``Header`` of a safetensors file; reads the header only, allocates no tensor."""
    path = os.fspath(path)
    limit = MAX_BYTES if max_bytes is None else max_bytes
    size = _file_size(path)
    if size < 8:
        raise _corrupt(path, f"it has {size} bytes, fewer than the 8 of the header length")
    try:
        with open(path, "rb") as f:
            length = int.from_bytes(f.read(8), "little")
            if length > MAX_HEADER_BYTES or 8 + length > size:
                raise _corrupt(path, f"its header claims {length} bytes, but at most "
                                     f"{min(MAX_HEADER_BYTES, size - 8)} can be there (the file has "
                                     f"{size} bytes; headers are at most {MAX_HEADER_BYTES})")
            blob = f.read(length)
    except OSError as exc:
        raise SafetensorsError(f"safetensors file {path!r} cannot be read ({exc.strerror or exc})") from None
    if len(blob) != length:
        raise _corrupt(path, f"its header stops after {len(blob)} of {length} bytes")
    tensors, metadata = _parse_header(path, blob)
    data_size = size - 8 - length
    _check_layout(path, tensors, data_size)
    total = sum(info.end - info.begin for info in tensors.values())
    if total > limit:
        raise SafetensorsError(f"safetensors file {path!r} is too large to load: its tensors need {total} "
                               f"bytes ({total / 2**30:.1f} GiB), more than max_bytes={limit}; pass a "
                               f"larger max_bytes if the file is trusted")
    return Header(path, tensors, metadata, 8 + length, size)


def read_tensors(header):
    """The tensors a checked ``Header`` describes, read from its file (which must not have changed)."""
    path, arrays = header.path, {}
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size != header.file_size:
                raise _corrupt(path, f"it changed size while being read ({header.file_size} bytes, "
                                     f"then {os.fstat(f.fileno()).st_size})")
            for name, info in header.tensors.items():
                flat = np.empty(math.prod(info.shape), dtype=info.dtype)
                view = memoryview(flat.view(np.uint8))
                f.seek(header.data_start + info.begin)
                done, need = 0, info.end - info.begin
                while done < need:
                    n = f.readinto(view[done:done + _CHUNK])
                    if not n:
                        raise _corrupt(path, f"tensor {name!r}: its data stops after {done} of {need} bytes")
                    done += n
                native = flat.astype(flat.dtype.newbyteorder("="), copy=False)
                arrays[name] = native.reshape(info.shape)
    except OSError as exc:
        raise SafetensorsError(f"safetensors file {path!r} cannot be read ({exc.strerror or exc})") from None
    except MemoryError:
        raise SafetensorsError(f"safetensors file {path!r}: its {header.nbytes} bytes of tensors do not "
                               f"fit in memory") from None
    return arrays


def _file_size(path):
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise SafetensorsError(f"safetensors file {path!r} does not exist") from None
    except OSError as exc:
        raise SafetensorsError(f"safetensors file {path!r} cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        what = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise SafetensorsError(f"safetensors file {path!r} is {what}")
    return info.st_size


def _parse_header(path, blob):
    """``({name: TensorInfo}, metadata)`` from the header bytes, every entry checked."""
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _corrupt(path, f"its header is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not text.startswith("{"):
        raise _corrupt(path, f"its header does not start with '{{' (it starts {_short(text[:20])}); "
                             f"this is not a safetensors file")
    depth = json_depth(blob)
    if depth > MAX_DEPTH:
        raise _corrupt(path, f"its header's JSON is nested {depth} levels deep; a safetensors header has "
                             f"{MAX_DEPTH}")
    try:
        header = json.loads(text, object_pairs_hook=_unique)
    except _Repeated as exc:
        raise _corrupt(path, f"its header names {_short(exc.args[0])} twice") from None
    except ValueError as exc:  # JSONDecodeError, or an integer of too many digits
        raise _corrupt(path, f"its header is not valid JSON ({' '.join(str(exc).split())[:200]})") from None
    if not isinstance(header, dict):
        raise _corrupt(path, f"its header is a JSON {type(header).__name__}, not an object")
    metadata = header.pop(METADATA, None)
    if metadata is not None and not (isinstance(metadata, dict) and all(
            isinstance(v, str) for v in metadata.values())):
        raise _corrupt(path, f"its {METADATA} must be an object of strings, got {_short(metadata)}")
    return {name: _entry(path, name, entry) for name, entry in header.items()}, metadata


def _entry(path, name, entry):
    def bad(what):
        return _corrupt(path, f"tensor {_short(name)}: {what}")
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise bad(f"expected {{dtype, shape, data_offsets}}, got {_short(entry)}")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype in _NOT_IN_NUMPY:
        raise bad(f"dtype {dtype} has no numpy equivalent; save it as F32 (tensor.float()) or F16")
    if dtype not in DTYPES:
        raise bad(f"unknown dtype {_short(dtype)}; expected one of {', '.join(DTYPES)}")
    if not (isinstance(shape, list) and len(shape) <= 64 and all(type(d) is int and d >= 0 for d in shape)):
        raise bad(f"the shape must be a list of at most 64 non-negative integers, got {_short(shape)}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
            and 0 <= offsets[0] <= offsets[1]):
        raise bad(f"data_offsets must be [begin, end] with 0 <= begin <= end, got {_short(offsets)}")
    info = TensorInfo(np.dtype(DTYPES[dtype]), tuple(shape), offsets[0], offsets[1])
    need = math.prod(info.shape) * info.dtype.itemsize
    if info.end - info.begin != need:
        raise bad(f"{dtype} {info.shape} needs {need} bytes, but data_offsets {offsets} span "
                  f"{info.end - info.begin}")
    return info


def _check_layout(path, tensors, data_size):
    """The tensors tile the data section exactly: contiguous, non-overlapping, no bytes left over."""
    position, previous = 0, None
    for name, info in sorted(tensors.items(), key=lambda item: (item[1].begin, item[1].end)):
        if info.begin != position:
            where = "at the start" if previous is None else f"after tensor {_short(previous)}"
            problem = "a gap" if info.begin > position else "an overlap"
            raise _corrupt(path, f"tensor {_short(name)} starts at byte {info.begin} of the data, leaving "
                                 f"{problem} {where} (which ends at {position})")
        position, previous = info.end, name
    if position != data_size:
        raise _corrupt(path, f"its tensors cover {position} bytes of data, but the file holds "
                             f"{data_size} after the header")


class _Repeated(ValueError):
    pass


def _unique(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise _Repeated(key)
        seen[key] = value
    return seen


def json_depth(blob):
    """The deepest nesting of ``[``/``{`` in JSON bytes, counted without parsing (no recursion), a
    megabyte at a time (a header may have 100 MB)."""
    codes = np.frombuffer(_JSON_STRING.sub(b'""', blob), dtype=np.uint8)
    depth = deepest = 0
    for start in range(0, len(codes), 2**20):
        chunk = codes[start:start + 2**20]
        steps = np.isin(chunk, _OPEN).astype(np.int32) - np.isin(chunk, _CLOSE).astype(np.int32)
        running = depth + np.cumsum(steps, dtype=np.int64)
        deepest, depth = max(deepest, int(running.max())), int(running[-1])
    return deepest


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_OPEN, _CLOSE = np.frombuffer(b"[{", dtype=np.uint8), np.frombuffer(b"]}", dtype=np.uint8)


def _corrupt(path, what):
    return SafetensorsError(f"safetensors file {path!r} is truncated or corrupt: {what}")


def _short(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
