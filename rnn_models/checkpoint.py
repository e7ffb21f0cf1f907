"""Checkpoints without pickle: one numpy ``.npz`` file, written atomically.

Layout of the archive (every entry a plain numeric array, so ``np.load(allow_pickle=False)`` reads it):

- ``__meta__``: UTF-8 JSON as a uint8 array: the format tag and version, the ``config`` dict, and the
  optimiser and trainer state as JSON trees whose arrays are references ``{"__array__": "<entry>"}``.
- ``model/<parameter name>``: the model's ``state_dict()`` arrays.
- ``optimizer/...``, ``trainer/...``: arrays referenced from the JSON trees, named by their path in
  the tree (``optimizer/state.0.exp_avg``, ``trainer/history/loss``).

Writing goes to a temporary file in the target's directory, is flushed and fsynced, then renamed over
the target with ``os.replace``: a crash or a full disk leaves the previous checkpoint intact. Reading
reports a truncated/corrupt file, a missing entry or a mismatched model as ``CheckpointError`` naming the
file and what is wrong.
"""
import json
import os
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np

from tinygraph.errors import StateDictError, TinygraphError
from tinygraph.io import atomic_write

FORMAT = "tinygraph-checkpoint"
VERSION = 1
_META = "__meta__"


class CheckpointError(TinygraphError, ValueError):
    """A checkpoint file that is missing, corrupt, truncated, or does not fit the model it is loaded into."""


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
    return tuple(key) if isinstance(key, list) else key


# --- writing -----------------------------------------------------------------------------------------


def save_checkpoint(path, model, optimizer=None, config=None, trainer_state=None):
    """Write ``model.state_dict()``, ``optimizer.state_dict()``, ``config`` (a JSON-able dict) and
    ``trainer_state`` (step, RNG states, history: arrays, numbers, strings, lists, dicts) to ``path``.
    """
    arrays = {f"model/{name}": value for name, value in model.state_dict().items()}
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "config": config or {},
        "model_keys": list(model.state_dict()),
        "optimizer": None if optimizer is None else _encode(optimizer.state_dict(), arrays, "optimizer"),
        "trainer": None if trainer_state is None else _encode(trainer_state, arrays, "trainer"),
    }
    try:
        blob = json.dumps(meta, allow_nan=True).encode("utf-8")
    except TypeError as exc:
        raise TypeError(f"save_checkpoint: config must hold only JSON values ({exc})") from None
    arrays[_META] = np.frombuffer(blob, dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, **arrays))


# --- reading -----------------------------------------------------------------------------------------
def load_checkpoint(path):
    """Read a checkpoint written by ``save_checkpoint`` (no pickle). Raises ``CheckpointError``."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint {path!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as archive:
            entries = {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"checkpoint {path!r} is truncated or corrupt (not a readable .npz "
                              f"archive: {exc})") from None
    if _META not in entries:
        raise CheckpointError(f"checkpoint {path!r} has no {_META} entry; it was not written by "
                              f"tinygraph's save_checkpoint")
    try:
        meta = json.loads(entries.pop(_META).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint {path!r}: the metadata is corrupt ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path!r} is not a {FORMAT} file")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {path!r} has format version {meta.get('version')}, this "
                              f"tinygraph reads version {VERSION}")
    model_state = {name[len("model/"):]: value for name, value in entries.items()
                   if name.startswith("model/")}
    missing = [k for k in meta.get("model_keys", []) if k not in model_state]
    if missing:
        raise CheckpointError(f"checkpoint {path!r} is missing model entries {missing}")
    try:
        optimizer_state = None if meta["optimizer"] is None else _decode(meta["optimizer"], entries)
        trainer_state = None if meta["trainer"] is None else _decode(meta["trainer"], entries)
    except KeyError as exc:
        raise CheckpointError(f"checkpoint {path!r} is missing the array entry {exc}") from None
    return Checkpoint(model_state, meta.get("config") or {}, optimizer_state, trainer_state, path)


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
