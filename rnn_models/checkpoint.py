"""Checkpoints without pickle: one numpy ``.npz`` file, written atomically, read against a schema.

Layout of the archive (every entry a plain numeric array, so ``np.load(allow_pickle=False)`` reads it):

- ``__meta__``: UTF-8 JSON as a uint8 array: the format tag and version, the ``config`` dict,
  ``model_keys``, the optimiser and trainer state as JSON trees whose arrays are references
  ``{"__array__": "<entry>"}``, and ``arrays``: each entry's dtype, shape and CRC-32 of its data.
- ``model/<parameter name>``: the model's ``state_dict()`` arrays.
- ``optimizer/...``, ``trainer/...``: arrays referenced from the JSON trees, named by their path in
  the tree (``optimizer/state.0.exp_avg``, ``trainer/history/loss``).

Writing goes to a temporary file in the target's directory, is flushed and fsynced, then renamed over
the target with ``os.replace`` (``tinygraph.io.atomic_write``): a crash, a kill or a full disk leaves the
previous checkpoint intact. NaN/inf in the model or optimiser state are refused unless
``allow_nonfinite=True``.

Reading checks the whole file before allocating any array: a zip of exactly the members the metadata
names, each stored or deflated and not encrypted, each ``.npy`` header (parsed with numpy's header
reader, which allocates nothing) of a numeric dtype whose shape accounts for the member's size, the
total under ``max_bytes``, the metadata JSON no deeper than ``MAX_DEPTH`` (checked without recursion)
and of the right types, each array reference at the place in its tree that its name says, and the
model config consistent with the saved arrays. Only then are the arrays read, and each is compared
with the CRC-32 the metadata recorded for it (so members cannot be swapped or re-headed unnoticed).
Every problem is a ``CheckpointError`` naming the file, the member and what is wrong; nothing is
unpickled, ever.

A path ending in ``.safetensors`` selects the safetensors layout instead (``tinygraph.safetensors``,
written and read by our own numpy code): the model's arrays under their ``state_dict`` names, so the
file *is* a state dict that ``safetensors.torch.load_file`` loads into ``rnn_models.to_torch(model)``;
optimiser and trainer arrays under their ``optimizer/...``/``trainer/...`` names; the metadata JSON
above (with its CRC-32 table) as the string ``__metadata__["__meta__"]``. It is checked as strictly:
the header before anything is allocated, then the metadata and every tensor as for an ``.npz``. A
safetensors file without that metadata — a state dict another program wrote, e.g.
``safetensors.torch.save_file(torch_model.state_dict(), path)`` — loads as a checkpoint holding only
the model state.
"""
import io
import json
import math
import os
import re
import stat
import struct
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import numpy.lib.format as npy

from tinygraph import safetensors
from tinygraph.errors import StateDictError, TinygraphError
from tinygraph.io import atomic_write

FORMAT = "tinygraph-checkpoint"
VERSION = 1
_META = "__meta__"
SAFETENSORS = ".safetensors"  # the suffix that selects the safetensors layout

MAX_BYTES = 16 * 2**30        # default cap on the total size of a checkpoint's arrays (load_checkpoint)
MAX_META_BYTES = 64 * 2**20   # cap on the metadata JSON
MAX_DEPTH = 64                # deepest JSON nesting accepted in the metadata
_MAX_HEADER = 10_000          # longest .npy header accepted (numpy's own default limit)
_MAX_DIM = 2**31 - 1          # largest size accepted in a model config
_MAX_NDIM = 64                # numpy's limit on dimensions
_CHUNK = 16 * 2**20           # bytes read from a member at a time
# zip flag bits that may be set: 1-2 (deflate level), 3 (sizes after the data), 11 (UTF-8 names)
_ALLOWED_FLAGS = 0x0002 | 0x0004 | 0x0008 | 0x0800
# what the zip and .npy readers raise on a damaged file (MemoryError and RecursionError are prevented
# by the checks, not caught)
_READ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError,
                TypeError, KeyError, IndexError, OverflowError, struct.error, NotImplementedError,
                RuntimeError, SyntaxError)


class CheckpointError(TinygraphError, ValueError):
    """A checkpoint file that is missing, corrupt, truncated, or does not fit the model it is loaded into."""


class NonFiniteError(TinygraphError, FloatingPointError):
    """NaN or inf where finite numbers are required: a training loss or gradient, or a value that would
    be saved in a checkpoint. ``finding`` is what was found without the advice (e.g. ``"step 3: the loss
    is nan"``), for callers that give their own."""

    def __init__(self, message, finding=None):
        super().__init__(message)
        self.finding = finding or message


@dataclass
class Checkpoint:
    """The contents of a checkpoint file (all plain data: arrays, dicts, lists, numbers, strings)."""
    model_state: dict
    config: dict = field(default_factory=dict)
    optimizer_state: dict | None = None
    trainer_state: dict | None = None
    path: str = ""


# --- JSON trees with array leaves --------------------------------------------------------------------
def _encode(obj, arrays, path):
    """``obj`` as a JSON-able tree; each ndarray moves into ``arrays`` under its ``path`` in the tree
    (e.g. ``optimizer/state.0.exp_avg``).

    Dicts with non-string keys (e.g. ``{0: ...}``) and tuples are tagged so that they come back exactly
    as they went in.
    """
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biuf":
            raise TypeError(f"save_checkpoint: cannot store an array of dtype {obj.dtype} at {path}")
        key = path if path not in arrays else f"{path}#{len(arrays)}"
        arrays[key] = obj
        return {"__array__": key}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, arrays, f"{path}/{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, arrays, f"{path}/{i}") for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _encode(v, arrays, f"{path}/{k}") for k, v in obj.items()}
        return {"__items__": [[_encode(k, arrays, f"{path}/{k}.key"), _encode(v, arrays, f"{path}/{k}")]
                              for k, v in obj.items()]}
    raise TypeError(f"save_checkpoint: cannot store a {type(obj).__name__} at {path} "
                    f"(only arrays, numbers, strings, None, lists, tuples and dicts)")


def _decode(tree, archive):
    if isinstance(tree, list):
        return [_decode(v, archive) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if "__array__" in tree:
        return archive[tree["__array__"]]
    if "__tuple__" in tree:
        return tuple(_decode(v, archive) for v in tree["__tuple__"])
    if "__items__" in tree:
        return {_hashable(_decode(k, archive)): _decode(v, archive) for k, v in tree["__items__"]}
    return {k: _decode(v, archive) for k, v in tree.items()}


def _hashable(key):
    return tuple(_hashable(k) for k in key) if isinstance(key, (list, tuple)) else key



# --- writing -----------------------------------------------------------------------------------------
def save_checkpoint(path, model, optimizer=None, config=None, trainer_state=None, *, allow_nonfinite=False):
    """Write ``model.state_dict()``, ``optimizer.state_dict()``, ``config`` (a JSON-able dict) and
    ``trainer_state`` (step, RNG states, history: arrays, numbers, strings, lists, dicts) to ``path``.

    Raises ``NonFiniteError`` (and writes nothing) if the model or optimiser state holds NaN or inf,
    unless ``allow_nonfinite=True``; the trainer state may (a history records the losses it saw).
    ``config`` entries that ``load_checkpoint`` checks (``model``, ``lr``, ``seq_len``, ...) must be
    valid, so that every file written can be read back. A ``path`` ending in ``.safetensors`` is
    written in that format (see the module docstring), anything else as an ``.npz``.
    """
    if trainer_state is not None and not isinstance(trainer_state, dict):
        raise TypeError(f"save_checkpoint: trainer_state must be a dict, got {type(trainer_state).__name__}")
    arrays = {f"model/{name}": np.asarray(value) for name, value in model.state_dict().items()}
    for name, value in arrays.items():
        if value.dtype.kind not in "biuf":
            raise TypeError(f"save_checkpoint: cannot store {name} of dtype {value.dtype}")
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "config": config or {},
        "model_keys": list(model.state_dict()),
        "optimizer": None if optimizer is None else _encode(optimizer.state_dict(), arrays, "optimizer"),
        "trainer": None if trainer_state is None else _encode(trainer_state, arrays, "trainer"),
    }
    if not isinstance(meta["config"], dict):
        raise TypeError(f"save_checkpoint: config must be a dict, got {type(config).__name__}")
    problems = _config_problems(meta["config"], {name: a.shape for name, a in arrays.items()})
    if problems:
        raise ValueError(f"save_checkpoint: the config would not load back: {'; '.join(problems)}")
    if not allow_nonfinite:
        _refuse_nonfinite(path, arrays, meta["optimizer"])
    meta["arrays"] = {name: {"dtype": a.dtype.str, "shape": list(a.shape), "crc32": _crc32(a)}
                      for name, a in arrays.items()}
    try:
        blob = json.dumps(meta, allow_nan=True).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise TypeError(f"save_checkpoint: config must hold only JSON values ({exc})") from None
    if _json_depth(blob) > MAX_DEPTH:
        raise ValueError(f"save_checkpoint: the config or state is nested more than {MAX_DEPTH} levels "
                         f"deep; load_checkpoint would refuse it")
    if is_safetensors(path):
        _save_safetensors(path, arrays, blob)
        return
    arrays[_META] = np.frombuffer(blob, dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, **arrays))


def is_safetensors(path):
    """Whether ``path`` names a safetensors checkpoint (by its suffix, ``.safetensors``)."""
    return os.fspath(path).lower().endswith(SAFETENSORS)


def _save_safetensors(path, arrays, blob):
    """The checkpoint as a safetensors file: model entries under their own names (the file is a state
    dict that ``safetensors.torch.load_file`` loads into the ``to_torch`` module), optimiser and
    trainer arrays under their ``optimizer/...``/``trainer/...`` names, the metadata JSON in the
    header's ``__metadata__``."""
    tensors = {_file_name(name): array for name, array in arrays.items()}
    if len(tensors) != len(arrays):
        counts = Counter(map(_file_name, arrays))
        clash = sorted(name for name in arrays if counts[_file_name(name)] > 1)
        raise ValueError(f"save_checkpoint: the entries {clash[:5]} would share a name in a safetensors "
                         f"file; save to .npz instead")
    safetensors.save_file(tensors, path, metadata={"format": FORMAT, _META: blob.decode("utf-8")})


def _file_name(entry):
    """An entry's tensor name in a safetensors checkpoint: model entries drop their ``model/``."""
    return entry[len("model/"):] if entry.startswith("model/") else entry


def _load_safetensors(path, limit):
    """``load_checkpoint`` for a ``.safetensors`` file: ours (its metadata checked as in an .npz, every
    tensor against the metadata's dtype, shape and CRC-32) or a state dict another program wrote
    (``safetensors.torch.save_file(model.state_dict(), path)``), which becomes the model state."""
    try:
        header = safetensors.read_header(path, max_bytes=limit)
        text = (header.metadata or {}).get(_META)
        if text is None:
            return Checkpoint(safetensors.read_tensors(header), {}, None, None, path)
        if len(text) > MAX_META_BYTES:
            raise _meta_error(path, f"{len(text)} characters of JSON, more than the {MAX_META_BYTES} accepted")
        meta = _parse_meta(path, text.encode("utf-8"))
        entries = _named_entries(path, meta)
        names = {_file_name(entry): entry for entry in entries}
        if set(names) != set(header.tensors):
            odd = sorted(set(names) ^ set(header.tensors))
            raise _corrupt(path, f"its metadata and its tensors disagree about {odd[:5]}")
        shapes = {entry: header.tensors[name].shape for name, entry in names.items()}
        problems = _config_problems(meta["config"], shapes)
        if problems:
            raise CheckpointError(f"checkpoint {path!r} holds a config that is not valid: "
                                  f"{'; '.join(problems)}")
        table = meta.get("arrays") or {}
        if table and set(table) != set(entries):
            raise _meta_error(path, f"'arrays' and the tensors disagree about "
                                    f"{sorted(set(table) ^ set(entries))[:5]}")
        for name, entry in names.items():
            info, recorded = header.tensors[name], table.get(entry)
            if recorded is not None and (recorded["dtype"] != info.dtype.str
                                         or tuple(recorded["shape"]) != info.shape):
                raise _corrupt(path, f"tensor {name!r} is {info.dtype.str} {info.shape} but the metadata "
                                     f"recorded {recorded['dtype']} {tuple(recorded['shape'])}")
        tensors = safetensors.read_tensors(header)
    except safetensors.SafetensorsError as exc:
        raise CheckpointError(str(exc).replace("safetensors file", "checkpoint", 1)) from None
    arrays = {}
    for name, entry in names.items():
        recorded = table.get(entry)
        if recorded is not None and _crc32(tensors[name]) != recorded["crc32"]:
            raise _corrupt(path, f"tensor {name!r}: its data does not match the CRC-32 recorded in the "
                                 f"metadata (altered, or swapped with another tensor)")
        arrays[entry] = tensors[name]
    model_state = {key: arrays[f"model/{key}"] for key in meta["model_keys"]}
    optimizer_state = None if meta.get("optimizer") is None else _decode(meta["optimizer"], arrays)
    trainer_state = None if meta.get("trainer") is None else _decode(meta["trainer"], arrays)
    return Checkpoint(model_state, meta["config"], optimizer_state, trainer_state, path)


def _refuse_nonfinite(path, arrays, optimizer_tree):
    bad = [f"{name} ({int(a.size - np.isfinite(a).sum())} of {a.size} values)"
           for name, a in arrays.items()
           if name.startswith(("model/", "optimizer/")) and a.dtype.kind == "f" and not np.isfinite(a).all()]
    bad += [f"optimizer/{key} ({value})" for key, value in _numbers(optimizer_tree)
            if isinstance(value, float) and not math.isfinite(value)]
    if bad:
        finding = (f"NaN or inf in {', '.join(bad[:5])}"
                   f"{f' and {len(bad) - 5} more entries' if len(bad) > 5 else ''}")
        raise NonFiniteError(f"save_checkpoint: not writing {os.fspath(path)!r}: {finding}; the file (if "
                             f"any) is left as it was. Pass allow_nonfinite=True to write non-finite values "
                             f"anyway", finding)


def _numbers(tree, path=""):
    """``(path, value)`` for every number in a JSON tree."""
    if isinstance(tree, dict):
        return [item for k, v in tree.items() for item in _numbers(v, f"{path}.{k}" if path else str(k))]
    if isinstance(tree, list):
        return [item for i, v in enumerate(tree) for item in _numbers(v, f"{path}.{i}")]
    return [(path, tree)] if isinstance(tree, (int, float)) and not isinstance(tree, bool) else []


def _crc32(array):
    """CRC-32 of an array's data in C order (what the metadata records, and the reader checks)."""
    return zlib.crc32(np.ascontiguousarray(array).reshape(-1).view(np.uint8))


# --- what a config may hold ----------------------------------------------------------------------------
def _config_problems(config, shapes):
    """Problems with the config entries the command line writes and reads, each as a phrase; ``shapes``
    maps ``model/<name>`` to the saved shapes, which the model config must describe (so a config cannot
    make ``build_model`` allocate more than the file holds)."""
    problems = []

    def number(key, positive=True, integer=False, optional=False):
        if key not in config or (optional and config[key] is None):
            return
        value = config[key]
        ok = (not isinstance(value, bool) and isinstance(value, int if integer else (int, float))
              and math.isfinite(value) and (value > 0 if positive else True))
        if not ok:
            kind = ("a positive " if positive else "an " if integer else "a ") + \
                ("integer" if integer else "number")
            problems.append(f"config[{key!r}] must be {kind}{' or null' if optional else ''}, "
                            f"got {_short(value)}")

    number("lr")
    number("clip", optional=True)
    number("tbptt", integer=True, optional=True)
    number("seq_len", integer=True)
    number("batch_size", integer=True)
    number("seed", positive=False, integer=True)
    if "optimizer" in config and not isinstance(config["optimizer"], str):
        problems.append(f"config['optimizer'] must be a string, got {_short(config['optimizer'])}")
    task = config.get("task")
    if "task" in config and not (isinstance(task, dict) and isinstance(task.get("name"), str)):
        problems.append(f"config['task'] must be a dict with a 'name', got {_short(config['task'])}")
    if "model" in config:
        problems += _model_config_problems(config["model"], shapes)
    return problems


def _model_config_problems(model, shapes):
    if not isinstance(model, dict):
        return [f"config['model'] must be a dict, got {_short(model)}"]
    problems = []
    for key in ("hidden_size", "input_size", "output_size", "num_layers", "embedding", "embedding_dim"):
        value = model.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 0 < value <= _MAX_DIM):
            problems.append(f"config['model'][{key!r}] must be null or an integer in [1, {_MAX_DIM}], "
                            f"got {_short(value)}")
    vocab = model.get("vocab")
    if vocab is not None and not (isinstance(vocab, str) and vocab and len(set(vocab)) == len(vocab)):
        problems.append(f"config['model']['vocab'] must be a non-empty string of distinct characters, got "
                        f"{_short(vocab)}")
    dropout = model.get("dropout")
    if dropout is not None and not (isinstance(dropout, (int, float)) and not isinstance(dropout, bool)
                                    and 0 <= dropout < 1):
        problems.append(f"config['model']['dropout'] must be a number in [0, 1), got {_short(dropout)}")
    for key in ("kind", "cell", "head", "nonlinearity", "dtype"):
        if key in model and model[key] is not None and not isinstance(model[key], str):
            problems.append(f"config['model'][{key!r}] must be a string, got {_short(model[key])}")
    if "bidirectional" in model and not isinstance(model["bidirectional"], bool):
        problems.append(f"config['model']['bidirectional'] must be true or false, got "
                        f"{_short(model['bidirectional'])}")
    if problems or model.get("kind") not in ("SequenceModel", "CharRNN"):
        return problems
    return _model_shape_problems(model, {k[len("model/"):]: v for k, v in shapes.items()
                                         if k.startswith("model/")})


def _model_shape_problems(model, shapes):
    """The sizes in a SequenceModel/CharRNN config against the saved parameter shapes."""
    char = model["kind"] == "CharRNN"
    required = ["hidden_size", "num_layers"] + (["vocab"] if char else ["output_size"])
    if not char and model.get("embedding") is None:
        required.append("input_size")
    missing = [key for key in required if model.get(key) is None]
    if missing:
        return [f"config['model'] (a {model['kind']}) needs {missing}"]
    hidden, layers = model["hidden_size"], model["num_layers"]
    directions = 2 if model.get("bidirectional") else 1
    vocab = len(model["vocab"]) if char and model.get("vocab") else model.get("embedding")
    outputs = len(model["vocab"]) if char and model.get("vocab") else model.get("output_size")
    inputs = model.get("embedding_dim") if char else model.get("input_size")
    inputs = inputs if inputs is not None else vocab
    want = {"head.weight": (outputs, directions * hidden)}
    if char:
        learned = model.get("embedding_dim") is not None
    else:
        learned = vocab is not None and model.get("input_size") is not None
    if learned:
        want["embedding.weight"] = (vocab, None)  # a learned embedding table
    if model.get("cell") in ("rnn", "lstm", "gru"):  # a user's cell names its own parameters
        want[f"rnn.weight_hh_l{layers - 1}"] = (None, hidden)
        want["rnn.weight_ih_l0"] = (None, inputs)
    problems = []
    for name, expected in want.items():
        got = shapes.get(name)
        if got is None:
            problems.append(f"config['model'] describes a model with {name!r}, which the checkpoint "
                            f"does not hold")
        elif len(got) != 2 or any(e is not None and e != g for e, g in zip(expected, got)):
            problems.append(f"config['model'] (hidden_size {hidden}, num_layers {layers}) does not fit "
                            f"{name!r} of shape {tuple(got)}")
    return problems


def _short(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- reading -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Header:
    """A member's parsed ``.npy`` header: where the data starts, and what it declares."""
    offset: int
    shape: tuple
    fortran: bool
    dtype: np.dtype

    @property
    def nbytes(self):
        return math.prod(self.shape) * self.dtype.itemsize


def load_checkpoint(path, *, max_bytes=None):
    """Read a checkpoint written by ``save_checkpoint`` (no pickle). Raises ``CheckpointError``.

    The file is checked against the format (see the module docstring) before any array is allocated;
    ``max_bytes`` (default ``MAX_BYTES``, 16 GiB) caps the total size of its arrays. A ``path`` ending
    in ``.safetensors`` is read as one: ours, or a bare state dict another program wrote.
    """
    path = os.fspath(path)
    limit = MAX_BYTES if max_bytes is None else max_bytes
    if is_safetensors(path):
        return _load_safetensors(path, limit)
    size = _check_file(path)
    try:
        archive = zipfile.ZipFile(path)
    except _READ_ERRORS as exc:
        raise _corrupt(path, f"it is not a readable zip archive ({_detail(exc)})") from None
    with archive:
        infos = _check_members(path, archive, size)
        meta = _read_meta(path, archive, infos)
        entries = _expected_entries(path, meta, infos)
        headers = {name: _read_header(path, archive, infos[name + ".npy"]) for name in entries}
        _check_headers(path, meta, headers, limit)
        problems = _config_problems(meta["config"], {name: h.shape for name, h in headers.items()})
        if problems:
            raise CheckpointError(f"checkpoint {path!r} holds a config that is not valid: "
                                  f"{'; '.join(problems)}")
        arrays = {name: _read_array(path, archive, infos[name + ".npy"], headers[name],
                                    (meta.get("arrays") or {}).get(name)) for name in entries}
    model_state = {key: arrays[f"model/{key}"] for key in meta["model_keys"]}
    optimizer_state = None if meta.get("optimizer") is None else _decode(meta["optimizer"], arrays)
    trainer_state = None if meta.get("trainer") is None else _decode(meta["trainer"], arrays)
    return Checkpoint(model_state, meta["config"], optimizer_state, trainer_state, path)


def _corrupt(path, what, member=None):
    where = "" if member is None else f"member {member!r}: "
    return CheckpointError(f"checkpoint {path!r} is truncated or corrupt: {where}{what}")


def _meta_error(path, what):
    where = f"__metadata__ entry {_META!r}" if is_safetensors(path) else f"member '{_META}.npy'"
    return CheckpointError(f"checkpoint {path!r}: the metadata is corrupt ({where}: {what})")


def _detail(exc):
    """A library's error message, on one line; never advice about unpickling."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return type(exc).__name__ if "pickle" in text.lower() else text[:200]


def _check_file(path):
    """The file's size, after checking it is a regular, non-empty file that starts like a zip."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path!r} does not exist") from None
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path!r} cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise CheckpointError(f"checkpoint {path!r} is a directory, not a checkpoint file")
    if not stat.S_ISREG(info.st_mode):
        raise CheckpointError(f"checkpoint {path!r} is not a regular file")
    try:
        with open(path, "rb") as f:
            start = f.read(8)
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path!r} cannot be read ({exc.strerror or exc})") from None
    if not start:
        raise _corrupt(path, "the file is empty (0 bytes)")
    if start.startswith(npy.MAGIC_PREFIX):
        raise _corrupt(path, "it is a single .npy array (numpy.save), not a checkpoint archive; "
                             "checkpoints are .npz files written by save_checkpoint")
    if not start.startswith(b"PK"):
        raise _corrupt(path, "it is not a zip archive; checkpoints are .npz files written by "
                             "save_checkpoint (or .safetensors files, named so)")
    return info.st_size


def _check_members(path, archive, size):
    """``{name: ZipInfo}`` after checking each member's entry in the zip directory."""
    infos = archive.infolist()
    repeated = sorted(name for name, n in Counter(i.filename for i in infos).items() if n > 1)
    if repeated:
        raise _corrupt(path, f"it holds the members {repeated} more than once")
    for info in infos:
        name = info.filename
        if info.flag_bits & 0x1:
            raise _corrupt(path, "it is encrypted (zip flag bit 0); checkpoints are never encrypted", name)
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _corrupt(path, f"it uses zip compression method {info.compress_type}; checkpoints are "
                                 f"stored (0) or deflated (8)", name)
        if info.flag_bits & ~_ALLOWED_FLAGS:
            raise _corrupt(path, f"it has unsupported zip flags {info.flag_bits:#06x}", name)
        if info.header_offset + info.compress_size > size:
            raise _corrupt(path, f"its {info.compress_size} bytes at offset {info.header_offset} lie "
                                 f"beyond the end of the {size}-byte file", name)
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise _corrupt(path, f"it is stored uncompressed but its sizes differ ({info.compress_size} "
                                 f"and {info.file_size} bytes)", name)
    return {info.filename: info for info in infos}


def _read_meta(path, archive, infos):
    """The metadata JSON, parsed (depth-limited) and checked for the types the reader relies on."""
    member = _META + ".npy"
    if member not in infos:
        raise CheckpointError(f"checkpoint {path!r} has no {_META} entry; it was not written by "
                              f"tinygraph's save_checkpoint")
    header = _read_header(path, archive, infos[member])
    if header.dtype != np.uint8 or len(header.shape) != 1:
        raise _meta_error(path, f"expected a 1-d uint8 array of JSON text, got {header.dtype} "
                                f"{header.shape}")
    if header.nbytes > MAX_META_BYTES:
        raise _meta_error(path, f"{header.nbytes} bytes of JSON, more than the {MAX_META_BYTES} accepted")
    blob = _read_array(path, archive, infos[member], header, None).tobytes()
    return _parse_meta(path, blob)


def _parse_meta(path, blob):
    """The metadata JSON bytes, parsed (depth-limited) and checked for the types the reader relies on."""
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _meta_error(path, f"not UTF-8 text ({exc})") from None
    depth = _json_depth(blob)
    if depth > MAX_DEPTH:
        raise _meta_error(path, f"JSON nested {depth} levels deep; at most {MAX_DEPTH} are accepted")
    try:
        meta = json.loads(text)
    except ValueError as exc:  # JSONDecodeError, or an integer of too many digits
        raise _meta_error(path, f"not valid JSON ({_detail(exc)})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path!r} is not a {FORMAT} file")
    version = meta.get("version")
    if isinstance(version, bool) or version != VERSION:
        raise CheckpointError(f"checkpoint {path!r} has format version {_short(version)}, this "
                              f"tinygraph reads version {VERSION}")
    config = meta.get("config")
    meta["config"] = {} if config is None else config
    if not isinstance(meta["config"], dict):
        raise _meta_error(path, f"'config' must be a dict (a JSON object), got {type(config).__name__}")
    keys = meta.get("model_keys")
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
        raise _meta_error(path, f"'model_keys' must be a list of strings, got {_short(keys)}")
    repeated = sorted(k for k, n in Counter(keys).items() if n > 1)
    if repeated:
        raise _meta_error(path, f"'model_keys' repeats {repeated}")
    for part in ("optimizer", "trainer"):
        if meta.get(part) is not None and not isinstance(meta[part], dict):
            raise _meta_error(path, f"{part!r} must be null or a dict, got {type(meta[part]).__name__}")
    table = meta.get("arrays")
    if table is not None:
        _check_table(path, table)
    return meta


def _check_table(path, table):
    if not isinstance(table, dict):
        raise _meta_error(path, f"'arrays' must be a dict, got {type(table).__name__}")
    for name, entry in table.items():
        ok = (isinstance(entry, dict) and isinstance(entry.get("dtype"), str)
              and isinstance(entry.get("shape"), list)
              and all(type(d) is int and 0 <= d for d in entry["shape"])
              and type(entry.get("crc32")) is int and 0 <= entry["crc32"] < 2**32)
        if not ok:
            raise _meta_error(path, f"'arrays' entry {name!r} must be {{dtype: str, shape: [int >= 0], "
                                    f"crc32: int}}, got {_short(entry)}")


def _json_depth(blob):
    """The deepest nesting of ``[``/``{`` in JSON text, without parsing it (so without recursion)."""
    stripped = _JSON_STRING.sub(b'""', blob)
    codes = np.frombuffer(stripped, dtype=np.uint8)
    steps = (np.isin(codes, _OPEN).astype(np.int64) - np.isin(codes, _CLOSE).astype(np.int64))
    return int(np.cumsum(steps).max(initial=0))


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_OPEN, _CLOSE = np.frombuffer(b"[{", dtype=np.uint8), np.frombuffer(b"]}", dtype=np.uint8)


def _expected_entries(path, meta, infos):
    """The array entries the metadata names (model keys and tree references), after checking that the
    archive holds exactly those members and the metadata."""
    missing = [key for key in meta["model_keys"] if f"model/{key}.npy" not in infos]
    if missing:
        raise CheckpointError(f"checkpoint {path!r} is missing model entries {missing}")
    entries = _named_entries(path, meta)
    for name in entries:
        if name + ".npy" not in infos:
            raise CheckpointError(f"checkpoint {path!r} is missing the array entry {name!r}")
    unexpected = sorted(set(infos) - {name + ".npy" for name in entries} - {_META + ".npy"})
    if unexpected:
        raise _corrupt(path, f"it holds members {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''} "
                             f"that its metadata does not name")
    table = meta.get("arrays")
    if table is not None and set(table) != set(entries):
        odd = sorted(set(table) ^ set(entries))
        raise _meta_error(path, f"'arrays' and the archive disagree about the entries {odd[:5]}")
    return entries


def _named_entries(path, meta):
    """``model/<key>`` for each model key, then the arrays the optimiser and trainer trees refer to;
    each named once."""
    entries = [f"model/{key}" for key in meta["model_keys"]]
    for part in ("optimizer", "trainer"):
        refs = []
        _tree_refs(path, meta.get(part), part, refs)
        entries += refs
    counts = Counter(entries)
    repeated = sorted(name for name, n in counts.items() if n > 1 or name == _META)
    if repeated:
        raise _meta_error(path, f"the array entries {repeated} are referenced more than once")
    return entries


def _tree_refs(path, tree, where, refs):
    """Collect the array references of an encoded tree, checking the tags ``_decode`` relies on, and
    that each array is named by its place in the tree (as ``_encode`` names them), so none was moved."""
    if isinstance(tree, list):
        for i, value in enumerate(tree):
            _tree_refs(path, value, f"{where}/{i}", refs)
        return
    if not isinstance(tree, dict):
        if not (tree is None or isinstance(tree, (bool, int, float, str))):
            raise _meta_error(path, f"{where} holds a {type(tree).__name__}")
        return
    tags = [k for k in tree if k.startswith("__")]
    if not tags:
        for key, value in tree.items():
            _tree_refs(path, value, f"{where}/{key}", refs)
        return
    tag = tags[0]
    if len(tree) != 1 or tag not in ("__array__", "__tuple__", "__items__"):
        raise _meta_error(path, f"{where} is a dict with the unknown tags {sorted(tree)[:5]}")
    value = tree[tag]
    if tag == "__array__":
        if not isinstance(value, str):
            raise _meta_error(path, f"{where}: an array reference must be a string, got {_short(value)}")
        if value != where and not (value.startswith(where + "#") and value[len(where) + 1:].isdigit()):
            raise _meta_error(path, f"{where} refers to the array {_short(value)}, which belongs elsewhere "
                                    f"in the tree (moved or renamed)")
        refs.append(value)
    elif tag == "__tuple__":
        if not isinstance(value, list):
            raise _meta_error(path, f"{where}: __tuple__ must hold a list, got {_short(value)}")
        _tree_refs(path, value, where, refs)
    else:
        if not (isinstance(value, list) and all(isinstance(p, list) and len(p) == 2 for p in value)):
            raise _meta_error(path, f"{where}: __items__ must hold [key, value] pairs, got {_short(value)}")
        for key, item in value:
            if not _is_key(key):
                raise _meta_error(path, f"{where}: {_short(key)} cannot be a dict key")
            _tree_refs(path, item, f"{where}/{_hashable(_decode(key, {}))}", refs)


def _is_key(node):
    """Whether an encoded node decodes to a hashable key (a scalar, or a tuple/list of keys)."""
    if node is None or isinstance(node, (bool, int, float, str)):
        return True
    if isinstance(node, dict) and list(node) == ["__tuple__"] and isinstance(node["__tuple__"], list):
        return all(_is_key(v) for v in node["__tuple__"])
    return isinstance(node, list) and all(_is_key(v) for v in node)


def _read_header(path, archive, info):
    """Parse a member's ``.npy`` header (at most ``_MAX_HEADER`` bytes are read) and check it."""
    name = info.filename
    try:
        with archive.open(info) as f:
            start = f.read(len(npy.MAGIC_PREFIX) + 2)
            if len(start) < 8 or not start.startswith(npy.MAGIC_PREFIX):
                raise _corrupt(path, "it is not a .npy array (no numpy magic string)", name)
            version = (start[6], start[7])
            if version not in ((1, 0), (2, 0)):
                raise _corrupt(path, f"it uses .npy format version {version[0]}.{version[1]}; "
                                     f"checkpoints use 1.0 or 2.0", name)
            length_bytes = f.read(2 if version == (1, 0) else 4)
            if len(length_bytes) not in (2, 4):
                raise _corrupt(path, "its .npy header is cut short", name)
            length = int.from_bytes(length_bytes, "little")
            offset = len(start) + len(length_bytes) + length
            if length > _MAX_HEADER or offset > info.file_size:
                raise _corrupt(path, f"its .npy header claims {length} bytes (at most {_MAX_HEADER}, "
                                     f"within the member's {info.file_size})", name)
            text = f.read(length)
    except CheckpointError:
        raise
    except _READ_ERRORS as exc:
        raise _corrupt(path, _detail(exc), name) from None
    if len(text) != length:
        raise _corrupt(path, "its .npy header is cut short", name)
    try:
        stream = io.BytesIO(start + length_bytes + text)
        npy.read_magic(stream)
        reader = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, fortran, dtype = reader(stream)
    except Exception as exc:  # numpy's parser of at most _MAX_HEADER bytes: any failure means a bad header
        raise _corrupt(path, f"its .npy header is not valid ({_detail(exc)})", name) from None
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in "biuf":
        raise _corrupt(path, f"it holds dtype {dtype}; checkpoints hold only plain numbers (bool, int, "
                             f"uint, float)", name)
    if len(shape) > _MAX_NDIM or not all(type(d) is int and d >= 0 for d in shape):
        raise _corrupt(path, f"its .npy header declares the shape {_short(shape)}", name)
    header = _Header(offset, tuple(shape), fortran, dtype)
    if offset + header.nbytes != info.file_size:
        raise _corrupt(path, f"its header declares {dtype} {header.shape} ({header.nbytes} bytes of "
                             f"data) but the member holds {info.file_size - offset} bytes of data", name)
    return header


def _check_headers(path, meta, headers, limit):
    total = sum(h.nbytes for h in headers.values())
    if total > limit:
        raise CheckpointError(f"checkpoint {path!r} is too large to load: its arrays need {total} bytes "
                              f"({total / 2**30:.1f} GiB), more than max_bytes={limit}; pass a larger "
                              f"max_bytes to load_checkpoint if the file is trusted")
    for name, entry in (meta.get("arrays") or {}).items():
        header = headers[name]
        if entry["dtype"] != header.dtype.str or tuple(entry["shape"]) != header.shape:
            raise _corrupt(path, f"its header declares {header.dtype.str} {header.shape} but the metadata "
                                 f"recorded {entry['dtype']} {tuple(entry['shape'])}", name + ".npy")


def _read_array(path, archive, info, header, entry):
    """Read a member's data (already checked against its header) into a new array."""
    name = info.filename
    try:
        flat = np.empty(math.prod(header.shape), dtype=header.dtype)
    except MemoryError:
        raise CheckpointError(f"checkpoint {path!r}: member {name!r} needs {header.nbytes} bytes of "
                              f"memory, which are not available") from None
    view = memoryview(flat.view(np.uint8))
    try:
        with archive.open(info) as f:
            if len(f.read(header.offset)) != header.offset:
                raise _corrupt(path, "its .npy header is cut short", name)
            done = 0
            while done < header.nbytes:
                n = f.readinto(view[done:done + _CHUNK])
                if not n:
                    raise _corrupt(path, f"its data stops after {done} of {header.nbytes} bytes", name)
                done += n
            if f.read(1):
                raise _corrupt(path, "it has data beyond what its header declares", name)
    except CheckpointError:
        raise
    except _READ_ERRORS as exc:
        raise _corrupt(path, _detail(exc), name) from None
    array = flat.reshape(header.shape[::-1]).T if header.fortran else flat.reshape(header.shape)
    if entry is not None and _crc32(array) != entry["crc32"]:
        raise _corrupt(path, "its data does not match the CRC-32 recorded in the metadata (altered, or "
                             "swapped with another member)", name)
    return array


def check_config(checkpoint, expected, keys=None):
    """Raise ``CheckpointError`` naming every entry of ``checkpoint.config`` that differs from ``expected``.

    ``keys`` restricts the comparison (e.g. to the model and task, leaving the learning rate free).
    """
    keys = sorted(set(expected) | set(checkpoint.config)) if keys is None else keys
    diffs = [diff for k in keys for diff in _differences(k, checkpoint.config.get(k), expected.get(k))]
    if diffs:
        raise CheckpointError(f"checkpoint {checkpoint.path!r} was saved for a different setup: "
                              + "; ".join(diffs))


def _differences(path, saved, wanted):
    """``"model.hidden_size: checkpoint has 16, expected 8"`` for each differing leaf of two configs."""
    if isinstance(saved, dict) and isinstance(wanted, dict):
        return [diff for k in sorted(set(saved) | set(wanted), key=str)
                for diff in _differences(f"{path}.{k}", saved.get(k), wanted.get(k))]
    return [] if saved == wanted else [f"{path}: checkpoint has {saved!r}, expected {wanted!r}"]


def restore(checkpoint, model, optimizer=None):
    """Load the checkpoint's model (and optimiser) state; errors name the file and the mismatch."""
    try:
        model.load_state_dict(checkpoint.model_state)
    except StateDictError as exc:
        raise CheckpointError(f"checkpoint {checkpoint.path!r} does not fit this model: {exc}") from None
    if optimizer is not None:
        if checkpoint.optimizer_state is None:
            raise CheckpointError(f"checkpoint {checkpoint.path!r} holds no optimiser state")
        try:
            optimizer.load_state_dict(checkpoint.optimizer_state)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise CheckpointError(f"checkpoint {checkpoint.path!r}: the optimiser state does not fit "
                                  f"{type(optimizer).__name__} ({exc})") from None
    return checkpoint
