"""Fuzzing the checkpoint reader: a mutated checkpoint either loads equal to the original or raises
``CheckpointError`` -- never MemoryError, RecursionError, a zipfile or numpy error, or a wrong result.

The originals are small checkpoints written by ``tinygraph train`` (a real Trainer's state) and by
``save_checkpoint`` with tuples and non-string keys. The mutations:

- bytes: bit flips, overwritten runs, truncation, insertions and deletions anywhere in the file;
- members (re-zipped, so the zip's own CRCs are right): swapped, dropped, duplicated, deflated;
- ``.npy`` headers (re-zipped): another dtype, shape or order, or bytes of the header text flipped;
- metadata, structural (re-zipped): the format, version, model keys, array references, tags and the
  CRC table, edited to other values of any JSON type.

For arbitrary edits of the metadata JSON (any value anywhere, bytes of the text flipped) a different
but well-formed checkpoint is a legitimate outcome (a changed learning rate is still a learning rate),
so there the property is weaker: ``CheckpointError``, or a checkpoint that resuming either accepts or
refuses with ``CheckpointError``.
"""
import atexit
import contextlib
import io
import json
import os
import shutil
import tempfile
import warnings
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinygraph as tg
from rnn_models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from rnn_models.models import SequenceModel
from rnn_models.training import make_optimizer
from tinygraph_app.cli import build_parser, main
from tinygraph_app.train import resume, setup

EXAMPLES = settings.default.max_examples * 8   # 200 under the ci profile, 3200 under thorough
fuzz = settings(max_examples=EXAMPLES, suppress_health_check=list(HealthCheck), deadline=None)
DIR = tempfile.mkdtemp(prefix="tinygraph-fuzz-")
atexit.register(shutil.rmtree, DIR, ignore_errors=True)
TRAIN = ["--task", "sine", "--hidden", "3", "--seq-len", "6", "--batch-size", "2", "--tbptt", "3",
         "--steps", "2", "--quiet"]


def _originals():
    """Two checkpoints (bytes, and the members of each), written once per test session."""
    trained = os.path.join(DIR, "trained.npz")
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", *TRAIN, "--save", trained]) == 0
    tg.manual_seed(0)
    model = SequenceModel("gru", 2, 2, 1)
    optimizer = make_optimizer("adagrad", model.parameters(), 0.1)
    optimizer.zero_grad()
    model(np.ones((2, 1, 2)))[0].sum().backward()
    optimizer.step()
    tagged = os.path.join(DIR, "tagged.npz")
    save_checkpoint(tagged, model, optimizer, {"model": model.config(), "note": "x"},
                    {"step": 3, "pair": (1, (2.5, "b")), "by_key": {0: "a", (1, 2): [3]},
                     "history": {"loss": np.array([1.0, 0.5])}, "flags": np.array([True, False])})
    out = {}
    for path in (trained, tagged):
        data = open(path, "rb").read()
        with zipfile.ZipFile(path) as archive:
            members = {name: archive.read(name) for name in archive.namelist()}
        out[os.path.basename(path)] = (data, members, load_checkpoint(path))
    return out


ORIGINALS = _originals()
NAMES = sorted(ORIGINALS)


def same(a, b):
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    return type(a) is type(b) and a == b


def same_checkpoint(a, b):
    return all(same(getattr(a, k), getattr(b, k))
               for k in ("model_state", "config", "optimizer_state", "trainer_state"))


def write(data, name="mutated.npz"):
    path = os.path.join(DIR, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def rezip(members, compression=zipfile.ZIP_STORED):
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w", compression) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return stream.getvalue()


def equal_or_refused(original, data):
    """The property: the mutated file loads equal to the original, or is refused with CheckpointError."""
    path = write(data)
    try:
        loaded = load_checkpoint(path)
    except CheckpointError as exc:
        message = str(exc)
        assert "\n" not in message and "pickl" not in message.replace(path, "").lower()
        return "refused"
    assert same_checkpoint(loaded, original), "a mutated checkpoint loaded with different contents"
    return "equal"


# --- bytes ---------------------------------------------------------------------------------------------
@st.composite
def byte_mutation(draw, size):
    kind = draw(st.sampled_from(["flip", "overwrite", "truncate", "insert", "delete"]))
    pos = draw(st.integers(0, size - 1))
    if kind == "flip":
        return kind, [(draw(st.integers(0, size - 1)), draw(st.integers(0, 7)))
                      for _ in range(draw(st.integers(1, 8)))]
    if kind == "overwrite":
        return kind, (pos, draw(st.binary(min_size=1, max_size=64)))
    if kind == "truncate":
        return kind, pos
    if kind == "insert":
        return kind, (pos, draw(st.binary(min_size=1, max_size=64)))
    return kind, (pos, draw(st.integers(1, 64)))


def apply_bytes(data, mutation):
    kind, arg = mutation
    data = bytearray(data)
    if kind == "flip":
        for pos, bit in arg:
            data[pos] ^= 1 << bit
    elif kind == "overwrite":
        pos, new = arg
        data[pos:pos + len(new)] = new
    elif kind == "truncate":
        del data[arg:]
    elif kind == "insert":
        pos, new = arg
        data[pos:pos] = new
    else:
        pos, n = arg
        del data[pos:pos + n]
    return bytes(data)


@fuzz
@given(name=st.sampled_from(NAMES), data=st.data())
def test_byte_mutations(name, data):
    original, _, loaded = ORIGINALS[name]
    mutation = data.draw(byte_mutation(len(original)))
    mutated = apply_bytes(original, mutation)
    if mutated != original:
        equal_or_refused(loaded, mutated)


class OneArray:
    def state_dict(self):
        return {"w": np.arange(6.0).reshape(2, 3)}


def test_every_bit_of_the_zip_structure_flipped():
    """Exhaustive where bits are structure, on a one-array checkpoint: each bit of the central
    directory and the end record flipped, and one bit of each byte of the local headers (zip header,
    name, extra field, .npy header)."""
    path = os.path.join(DIR, "one.npz")
    save_checkpoint(path, OneArray(), config={"a": 1}, trainer_state={"step": 1})
    original, loaded = open(path, "rb").read(), load_checkpoint(path)
    flips = [(pos, bit) for pos in range(original.find(b"PK\x01\x02"), len(original)) for bit in range(8)]
    for name in ("model/w.npy", "__meta__.npy"):
        at = original.find(name.encode())          # the local header's copy comes first
        flips += [(pos, pos % 8) for pos in range(at - 30, at + len(name) + 20 + 128)]
    outcomes = {"equal": 0, "refused": 0}
    for pos, bit in flips:
        mutated = bytearray(original)
        mutated[pos] ^= 1 << bit
        outcomes[equal_or_refused(loaded, bytes(mutated))] += 1
    assert outcomes["refused"] > outcomes["equal"] > 0   # dates, attributes, unused fields: equal
    assert sum(outcomes.values()) == len(flips) > 1400


# --- members -------------------------------------------------------------------------------------------
@fuzz
@given(name=st.sampled_from(NAMES), data=st.data())
def test_member_mutations(name, data):
    _, members, loaded = ORIGINALS[name]
    items = list(members.items())
    kind = data.draw(st.sampled_from(["swap", "drop", "duplicate", "rename", "deflate", "reorder"]))
    i = data.draw(st.integers(0, len(items) - 1))
    j = data.draw(st.integers(0, len(items) - 1))
    compression = zipfile.ZIP_STORED
    if kind == "swap":
        items[i], items[j] = (items[i][0], items[j][1]), (items[j][0], items[i][1])
    elif kind == "drop":
        del items[i]
    elif kind == "duplicate":
        items.append((items[i][0], items[j][1]))
    elif kind == "rename":
        items[i] = (data.draw(st.sampled_from([items[j][0], items[i][0] + "x", "other.npy", "__meta__"])),
                    items[i][1])
    elif kind == "deflate":
        compression = zipfile.ZIP_DEFLATED
    else:
        items = data.draw(st.permutations(items))
    with warnings.catch_warnings():   # zipfile warns about duplicate names; they are the point
        warnings.simplefilter("ignore")
        mutated = rezip(items, compression)
    equal_or_refused(loaded, mutated)


# --- .npy headers --------------------------------------------------------------------------------------
DESCRS = ["<f8", "<f4", ">f8", "=f8", "<i8", "|u1", "|b1", "<c16", "|O", "<U2", "|V8", "<M8[s]", "<f2",
          [("a", "<f4"), ("b", "<f4")], ("<f4", (2,)), "float64", "<f16", 3, None]


def npy_header_text(header):
    text = repr(header).encode("latin1")
    return text + b" " * ((64 - (len(text) + 11) % 64) % 64) + b"\n"


def split_npy(blob):
    length = int.from_bytes(blob[8:10], "little")
    return blob[10:10 + length], blob[10 + length:]


@fuzz
@given(name=st.sampled_from(NAMES), data=st.data())
def test_header_mutations(name, data):
    _, members, loaded = ORIGINALS[name]
    items = list(members.items())
    i = data.draw(st.integers(0, len(items) - 1))
    member, blob = items[i]
    text, payload = split_npy(blob)
    if data.draw(st.booleans()):   # a structured edit of the header dict
        header = eval(text.decode("latin1"))  # noqa: S307 -- our own test data
        field = data.draw(st.sampled_from(["descr", "shape", "fortran_order", "extra key", "drop key"]))
        if field == "descr":
            header["descr"] = data.draw(st.sampled_from(DESCRS))
        elif field == "shape":
            header["shape"] = data.draw(st.one_of(
                st.just(header["shape"][::-1]), st.just(()),
                st.lists(st.integers(-2, 2**62), max_size=4).map(tuple),
                st.lists(st.integers(0, 30), min_size=1, max_size=3).map(tuple)))
        elif field == "fortran_order":
            header["fortran_order"] = data.draw(st.sampled_from([True, False, 0, 1, "yes"]))
        elif field == "extra key":
            header["extra"] = 1
        else:
            del header[data.draw(st.sampled_from(sorted(header)))]
        text = npy_header_text(header)
    else:                          # bytes of the header text flipped
        text = bytearray(text)
        for _ in range(data.draw(st.integers(1, 4))):
            text[data.draw(st.integers(0, len(text) - 1))] ^= 1 << data.draw(st.integers(0, 7))
        text = bytes(text)
    items[i] = (member, b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + payload)
    equal_or_refused(loaded, rezip(items))


# --- metadata ------------------------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8)


def meta_of(members):
    return json.loads(np.lib.format.read_array(io.BytesIO(members["__meta__.npy"])).tobytes())


def meta_member(blob):
    stream = io.BytesIO()
    np.lib.format.write_array(stream, np.frombuffer(blob, dtype=np.uint8))
    return stream.getvalue()


def with_meta(members, meta):
    blob = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
    return rezip([(k, meta_member(blob) if k == "__meta__.npy" else v) for k, v in members.items()])


def structural_paths(meta):
    """Paths to the metadata values the reader relies on (changing any must be noticed)."""
    paths = [("format",), ("version",), ("model_keys",), ("arrays",), ("optimizer",), ("trainer",)]
    paths += [("model_keys", i) for i in range(len(meta["model_keys"]))]
    for name, entry in meta["arrays"].items():
        paths += [("arrays", name), ("arrays", name, "dtype"), ("arrays", name, "shape"),
                  ("arrays", name, "crc32")]

    def walk(node, path):
        if isinstance(node, dict):
            if "__array__" in node:   # (a tuple or a dict may become another value: not structure)
                paths.extend([path, path + ("__array__",)])
            for key, value in node.items():
                walk(value, path + (key,))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, path + (i,))
    walk(meta["optimizer"], ("optimizer",))
    walk(meta["trainer"], ("trainer",))
    model = meta["config"].get("model", {})
    paths += [("config", "model", key) for key in ("hidden_size", "output_size", "num_layers", "input_size")
              if model.get(key) is not None]
    return paths


def set_path(tree, path, value):
    node = tree
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value


_DELETE = object()


@fuzz
@given(name=st.sampled_from(NAMES), data=st.data())
def test_structural_metadata_edits(name, data):
    _, members, loaded = ORIGINALS[name]
    meta = meta_of(members)
    path = data.draw(st.sampled_from(structural_paths(meta)))
    node = meta
    for key in path:
        node = node[key]
    new = data.draw(json_values | st.just(_DELETE) | st.sampled_from(
        [node, str(node), [node], {"__array__": "model/head.bias"}, 0, -1, 2**31, 2**40]))
    if new is not _DELETE and (same(new, node) or (isinstance(node, list) and new == node)):
        return
    set_path(meta, path, new)
    equal_or_refused(loaded, with_meta(members, meta))


_RESUMER = []


def resumer():
    """A trainer and config as `tinygraph train` builds them for the fuzzed files (made once)."""
    if not _RESUMER:
        _RESUMER.extend(setup(build_parser().parse_args(["train", *TRAIN])))
    return _RESUMER


@fuzz
@given(name=st.sampled_from(NAMES), data=st.data())
def test_any_metadata_edit_is_refused_or_resumable(name, data):
    _, members, _ = ORIGINALS[name]
    meta = meta_of(members)
    if data.draw(st.booleans()):
        paths = [()]

        def walk(node, path):
            if isinstance(node, dict):
                items = node.items()
            elif isinstance(node, list):
                items = enumerate(node)
            else:
                return
            for key, value in items:
                paths.append(path + (key,))
                walk(value, path + (key,))
        walk(meta, ())
        path = data.draw(st.sampled_from(paths[1:]))
        set_path(meta, path, data.draw(json_values | st.just(_DELETE)))
        blob = json.dumps(meta).encode()
    else:
        blob = bytearray(json.dumps(meta).encode())
        for _ in range(data.draw(st.integers(1, 4))):
            blob[data.draw(st.integers(0, len(blob) - 1))] ^= 1 << data.draw(st.integers(0, 7))
        blob = bytes(blob)
    path = write(with_meta(members, blob), "edited.npz")
    trainer, config = resumer()
    try:   # what `tinygraph train --resume` does: load, compare the config, restore, load the trainer
        load_checkpoint(path)
        resume(trainer, config, path)
    except CheckpointError as exc:
        assert "\n" not in str(exc)
