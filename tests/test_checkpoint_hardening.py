"""The checkpoint reader against bad files: every one is refused with a one-line ``CheckpointError`` that
names the file (and the member), before any large allocation, and never suggests unpickling.

``BAD`` is a table of crafted files, one family per block: the file itself, the zip container, the
``.npy`` headers, the metadata JSON, the config, and the size cap. Each entry is run through
``load_checkpoint`` and through ``tinygraph sample --load`` (exit code 2, one line, no traceback).
"""
import io
import json
import os
import pickle
import re
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest

import tinygraph as tg
from rnn_models import checkpoint as ckpt
from rnn_models.checkpoint import CheckpointError, NonFiniteError, load_checkpoint, restore, save_checkpoint
from rnn_models.models import CharRNN, SequenceModel
from rnn_models.training import make_optimizer
from tinygraph_app.cli import main


# --- a small valid checkpoint, and tools to take it apart ----------------------------------------------
def trained_model(hidden=3):
    tg.manual_seed(0)
    model = SequenceModel("lstm", 2, hidden, 1)
    optimizer = make_optimizer("adam", model.parameters(), 0.1)
    x = np.random.default_rng(0).standard_normal((3, 2, 2))
    optimizer.zero_grad()
    model(x)[0].sum().backward()
    optimizer.step()
    return model, optimizer


TRAINER_STATE = {"step": 1, "pair": (1, 2.5), "by_id": {0: "a", (1, 2): [3]}, "loss": np.array([1.5, 1.25])}


def write_good(path):
    model, optimizer = trained_model()
    save_checkpoint(path, model, optimizer, {"model": model.config(), "lr": 0.1, "note": "ünï"},
                    TRAINER_STATE)
    return path


def read_members(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def npy_bytes(array):
    stream = io.BytesIO()
    np.lib.format.write_array(stream, np.asarray(array), allow_pickle=False)
    return stream.getvalue()


def npy_raw(header, data=b"", version=(1, 0)):
    """A .npy member with a header of our choosing (a dict, or raw text)."""
    text = (header if isinstance(header, str) else repr(header)).encode("latin1")
    text += b" " * ((64 - (len(text) + 11) % 64) % 64) + b"\n"
    length = len(text).to_bytes(2 if version == (1, 0) else 4, "little")
    return b"\x93NUMPY" + bytes(version) + length + text + data


def header(descr="<f8", shape=(1,), fortran=False):
    return {"descr": descr, "fortran_order": fortran, "shape": shape}


def write_zip(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def meta_of(members):
    return json.loads(np.lib.format.read_array(io.BytesIO(members["__meta__.npy"])).tobytes())


def meta_member(meta):
    blob = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
    return npy_bytes(np.frombuffer(blob, dtype=np.uint8))


def patch_central(path, member, offset, fmt, value):
    """Overwrite a field of ``member``'s entry in the zip's central directory (offset from its start)."""
    data = bytearray(open(path, "rb").read())
    pos = data.find(b"PK\x01\x02")
    while pos >= 0:
        name_length = struct.unpack_from("<H", data, pos + 28)[0]
        if data[pos + 46:pos + 46 + name_length] == member.encode():
            struct.pack_into(fmt, data, pos + offset, value)
            open(path, "wb").write(bytes(data))
            return path
        pos = data.find(b"PK\x01\x02", pos + 4)
    raise AssertionError(f"no member {member}")


FLAGS, METHOD, CSIZE, USIZE = (8, "<H"), (10, "<H"), (20, "<I"), (24, "<I")
META = "__meta__.npy"
BIAS = "model/head.bias.npy"            # shape (1,) float64
W_IH = "model/rnn.weight_ih_l0.npy"    # shape (12, 2) float64


class Good:
    """The members and metadata of a valid checkpoint, and builders of variants of it."""

    def __init__(self, path):
        self.path = path
        self.members = read_members(path)
        self.meta = meta_of(self.members)

    def variant(self, path, *, meta=None, drop=(), members=None, compression=zipfile.ZIP_STORED):
        """The good members with some replaced or added (``members``), some dropped, and the metadata
        edited by ``meta(m)`` (returning the new metadata, or bytes)."""
        out = {k: v for k, v in self.members.items() if k not in drop}
        out.update(members or {})
        if meta is not None:
            out["__meta__.npy"] = meta_member(meta(json.loads(json.dumps(self.meta))))
        return write_zip(path, out, compression)


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return Good(write_good(tmp_path_factory.mktemp("good") / "good.npz"))


def edit(**changes):
    """A metadata edit setting top-level keys (``None`` values delete the key)."""
    def apply(meta):
        for key, value in changes.items():
            if value is None:
                meta.pop(key, None)
            else:
                meta[key] = value
        return meta
    return apply


def edit_config(**changes):
    def apply(meta):
        meta["config"].update(changes)
        return meta
    return apply


def edit_model(**changes):
    def apply(meta):
        meta["config"]["model"].update(changes)
        return meta
    return apply


def deep(depth):
    return lambda meta: json.dumps(meta)[:-1].encode() + b', "deep": ' + b"[" * depth + b"]" * depth + b"}"


def swap(a, b):
    def build(good, path):
        members = dict(good.members)
        members[a], members[b] = members[b], members[a]
        return write_zip(path, members)
    return build


def patched(member, field, value):
    def build(good, path):
        write_zip(path, good.members)
        return patch_central(path, member, *field, value)
    return build


def bytes_file(data):
    def build(good, path):
        path.write_bytes(data)
        return path
    return build


def flip_data_byte(good, path):
    write_good(path)
    data = bytearray(path.read_bytes())
    pos = data.find(b"\x93NUMPY", data.find(BIAS.encode())) + 128 + 3   # inside the bias's data
    data[pos] ^= 0x10
    path.write_bytes(bytes(data))
    return path


def rename_local(good, path):
    write_zip(path, good.members)
    data = bytearray(path.read_bytes())
    pos = data.find(BIAS.encode())     # the first occurrence is the local header's copy of the name
    data[pos + len("model/")] = ord("X")
    path.write_bytes(bytes(data))
    return path


def table_edit(name, **entry):
    def apply(meta):
        meta["arrays"][name].update(entry)
        return meta
    return apply


def tree_edit(path_in_tree, value):
    def apply(meta):
        node = meta["trainer"]
        for key in path_in_tree[:-1]:
            node = node[key]
        node[path_in_tree[-1]] = value
        return meta
    return apply


def variant(**kwargs):
    return lambda good, path: good.variant(path, **kwargs)


def member(name, data):
    """The good file with member ``name`` replaced (or added)."""
    return variant(members={name: data})


M = "'__meta__.npy'"
# name -> (builder(good, path) -> path, regex the message must match)
BAD = {
    # the file itself
    "missing": (lambda good, path: path, "does not exist"),
    "directory": (lambda good, path: (path.mkdir(), path)[1], "is a directory"),
    "fifo": (lambda good, path: (os.mkfifo(path), path)[1], "is not a regular file"),
    "empty": (bytes_file(b""), r"truncated or corrupt: the file is empty \(0 bytes\)"),
    "plain_npy": (bytes_file(npy_bytes(np.ones(3))), "a single .npy array"),
    "pickled_object_npy": (lambda good, path: _pickled_npy(path), "a single .npy array"),
    "pickle": (bytes_file(pickle.dumps({"model": [1, 2]})), "not a zip archive"),
    "random_bytes": (bytes_file(np.random.default_rng(0).bytes(5000)), "not a zip archive"),
    "text": (bytes_file(b"hello, I am a checkpoint\n"), "not a zip archive"),
    "zip_magic_then_garbage": (bytes_file(b"PK\x03\x04" + bytes(200)), "not a readable zip archive"),
    "empty_zip": (lambda good, path: write_zip(path, {}), "no __meta__ entry"),
    "foreign_npz": (lambda good, path: (np.savez(path, weights=np.ones(3)), path)[1], "no __meta__ entry"),
    # the zip container
    "encrypted_member": (patched(W_IH, FLAGS, 0x1), f"member '{W_IH}': it is encrypted"),
    "bzip2_members": (variant(compression=zipfile.ZIP_BZIP2), "compression method 12"),
    "lzma_members": (variant(compression=zipfile.ZIP_LZMA), "compression method 14"),
    "unknown_method": (patched(BIAS, METHOD, 99), f"member '{BIAS}': it uses zip compression method 99"),
    "patched_data_flag": (patched(BIAS, FLAGS, 0x20), "unsupported zip flags 0x0020"),
    "strong_encryption_flag": (patched(BIAS, FLAGS, 0x40), "unsupported zip flags 0x0040"),
    "size_beyond_the_file": (patched(BIAS, CSIZE, 2**31), "beyond the end of the"),
    "stored_sizes_differ": (patched(BIAS, USIZE, 2**20), "stored uncompressed but its sizes differ"),
    "duplicate_members": (lambda good, path: write_zip(path, {**good.members}) and _append(path, BIAS),
                          r"holds the members \['model/head.bias.npy'\] more than once"),
    "bad_crc": (flip_data_byte, f"member '{BIAS}': Bad CRC-32"),
    "local_name_differs": (rename_local, f"member '{BIAS}': File name in directory"),
    "deflated_is_fine_but_altered": (lambda good, path: _deflate_and_flip(good, path), "member"),
    # the .npy headers
    "meta_not_an_array": (member(META, b'{"format": "tinygraph-checkpoint"}'),
                          f"member {M}: it is not a .npy array"),
    "member_not_an_array": (member(BIAS, b"\x00" * 136), f"member '{BIAS}': it is not a .npy"),
    "object_dtype": (member(BIAS, npy_raw(header("|O"), bytes(8))), "dtype object"),
    "structured_dtype": (member(BIAS, npy_raw(header([("a", "<f4"), ("b", "<f4")]), bytes(8))),
                         "holds dtype"),
    "subarray_dtype": (member(BIAS, npy_raw(header(("<f4", (2,))), bytes(8))), "holds dtype"),
    "complex_dtype": (member(BIAS, npy_raw(header("<c8"), bytes(8))), "holds dtype complex64"),
    "unicode_dtype": (member(BIAS, npy_raw(header("<U2"), bytes(8))), "holds dtype <U2"),
    "bytes_dtype": (member(BIAS, npy_raw(header("|S8"), bytes(8))), "holds dtype"),
    "datetime_dtype": (member(BIAS, npy_raw(header("<M8[s]"), bytes(8))), "holds dtype"),
    "void_dtype": (member(BIAS, npy_raw(header("|V8"), bytes(8))), "holds dtype"),
    "unknown_dtype": (member(BIAS, npy_raw(header("<zz"), bytes(8))), "header is not valid"),
    "shape_2**40": (member(BIAS, npy_raw(header(shape=(2**40,)), bytes(8))),
                    r"declares float64 \(1099511627776,\) \(8796093022208 bytes"),
    "shape_overflowing_int64": (member(BIAS, npy_raw(header(shape=(2**40, 2**40)), bytes(8))),
                                "declares float64"),
    "negative_dimension": (member(BIAS, npy_raw(header(shape=(-1,)), bytes(8))),
                           r"declares the shape \(-1,\)"),
    "shape_not_a_tuple": (member(BIAS, npy_raw(header(shape=[1]), bytes(8))), "header is not valid"),
    "shape_of_floats": (member(BIAS, npy_raw(header(shape=(1.0,)), bytes(8))), "header is not valid"),
    "shape_of_bools": (member(BIAS, npy_raw(header(shape=(True,)), bytes(8))), "declares the shape"),
    "65_dimensions": (member(BIAS, npy_raw(header(shape=(1,) * 65), bytes(8))), "declares the shape"),
    "fortran_order_not_bool": (member(BIAS, npy_raw({**header(), "fortran_order": 1}, bytes(8))),
                               "header is not valid"),
    "header_not_a_dict": (member(BIAS, npy_raw("[1, 2, 3]", bytes(8))), "header is not valid"),
    "header_wrong_keys": (member(BIAS, npy_raw({"descr": "<f8"}, bytes(8))), "header is not valid"),
    "header_not_python": (member(BIAS, npy_raw("{'descr': <f8", bytes(8))), "header is not valid"),
    "header_nested_parentheses": (member(BIAS, npy_raw("(" * 4000 + ")" * 4000, bytes(8))),
                                  "header is not valid"),
    "header_4GiB_long": (member(BIAS, b"\x93NUMPY\x02\x00" + b"\xff\xff\xff\xff" + bytes(64)),
                         r"header claims 4294967295 bytes"),
    "header_longer_than_member": (member(BIAS, b"\x93NUMPY\x01\x00" + b"\x00\x10" + bytes(64)),
                                  "header claims 4096 bytes"),
    "npy_version_3": (member(BIAS, npy_raw(header(), bytes(8), version=(3, 0))),
                      "format version 3.0"),
    "npy_version_9": (member(BIAS, npy_raw(header(), bytes(8), version=(9, 9))),
                      "format version 9.9"),
    "header_cut_short": (member(BIAS, b"\x93NUMPY\x01\x00\x40"), "cut short"),
    "magic_only": (member(BIAS, b"\x93NUM"), "not a .npy array"),
    "less_data_than_declared": (member(BIAS, npy_raw(header(shape=(2,)), bytes(8))),
                                r"declares float64 \(2,\) \(16 bytes of data\) but the member holds 8"),
    "more_data_than_declared": (member(BIAS, npy_raw(header(), bytes(16))), "holds 16 bytes"),
    "dtype_edited_against_table": (member(BIAS, npy_raw(header(">f8"), bytes(8))),
                                   r"declares >f8 \(1,\) but the metadata recorded <f8 \(1,\)"),
    "shape_edited_against_table": (member(W_IH, npy_bytes(np.zeros((2, 12)))),
                                   r"declares <f8 \(2, 12\) but the metadata recorded <f8 \(12, 2\)"),
    "fortran_flag_flipped": (lambda good, path: _fortran_flip(good, path), "does not match the CRC-32"),
    "members_swapped": (swap("model/rnn.bias_ih_l0.npy", "model/rnn.bias_hh_l0.npy"),
                        "does not match the CRC-32 recorded in the metadata"),
    "data_replaced": (member(BIAS, npy_bytes(np.array([42.0]))), "does not match the CRC-32"),
    # the metadata
    "meta_float64": (member(META, npy_bytes(np.zeros(4))), f"member {M}: expected a 1-d uint8 array"),
    "meta_2d": (member(META, npy_bytes(np.zeros((2, 2), np.uint8))), "expected a 1-d uint8 array"),
    "meta_not_utf8": (variant(meta=lambda m: b"\xff\xfe{}"), f"member {M}: not UTF-8"),
    "meta_not_json": (variant(meta=lambda m: b"{not json"), "not valid JSON"),
    "meta_nested_10**5": (variant(meta=deep(10**5)), "JSON nested 100001 levels deep; at most 64"),
    "meta_nested_65": (variant(meta=deep(64)), "JSON nested 65 levels deep"),
    "meta_unbalanced": (variant(meta=lambda m: b"[" * 10 + b"]"), "JSON nested|not valid JSON"),
    "meta_huge_integer": (variant(meta=lambda m: json.dumps(m)[:-1].encode() + b', "n": ' + b"9" * 5000 + b"}"),
                          "not valid JSON"),
    "meta_top_level_list": (variant(meta=lambda m: [m]), "is not a tinygraph-checkpoint file"),
    "meta_wrong_format": (variant(meta=edit(format="other")), "is not a tinygraph-checkpoint file"),
    "meta_no_format": (variant(meta=edit(format=None)), "is not a tinygraph-checkpoint file"),
    "meta_version_2": (variant(meta=edit(version=2)), "has format version 2, this tinygraph reads version 1"),
    "meta_version_true": (variant(meta=edit(version=True)), "has format version True"),
    "meta_version_string": (variant(meta=edit(version="1")), "has format version '1'"),
    "config_a_list": (variant(meta=edit(config=[1, 2])), "'config' must be a dict .* got list"),
    "config_a_string": (variant(meta=edit(config="lr=1")), "'config' must be a dict .* got str"),
    "model_keys_missing": (variant(meta=edit(model_keys=None)), "'model_keys' must be a list of strings"),
    "model_keys_a_dict": (variant(meta=edit(model_keys={"a": 1})), "'model_keys' must be a list of strings"),
    "model_keys_ints": (variant(meta=edit(model_keys=[1, 2])), "'model_keys' must be a list of strings"),
    "model_keys_repeated": (variant(meta=lambda m: edit(model_keys=m["model_keys"] + m["model_keys"][:1])(m)),
                            r"'model_keys' repeats \['rnn.weight_ih_l0'\]"),
    "model_member_missing": (variant(drop=(W_IH,)), r"missing model entries \['rnn.weight_ih_l0'\]"),
    "optimizer_member_missing": (variant(drop=("optimizer/state.0.exp_avg.npy",)),
                                 "missing the array entry 'optimizer/state.0.exp_avg'"),
    "unexpected_member": (member("extra.npy", npy_bytes(np.ones(2))), r"holds members \['extra.npy'\] that its"),
    "unexpected_non_npy_member": (member("readme.txt", b"hi"), r"\['readme.txt'\]"),
    "reference_not_a_string": (variant(meta=tree_edit(["loss"], {"__array__": 3})),
                               "trainer/loss: an array reference must be a string"),
    "reference_twice": (variant(meta=lambda m: tree_edit(["x/y"], {"__array__": "trainer/x/y"})(
                            tree_edit(["x"], {"y": {"__array__": "trainer/x/y"}})(m))),
                        r"the array entries \['trainer/x/y'\] are referenced more than once"),
    "reference_moved": (variant(meta=tree_edit(["loss"], [{"__array__": "trainer/loss"}])),
                        "trainer/loss/0 refers to the array 'trainer/loss', which belongs elsewhere"),
    "reference_renamed": (variant(meta=tree_edit(["loss"], {"__array__": "trainer/loss#x"})), "belongs elsewhere"),
    "reference_to_meta": (variant(meta=tree_edit(["m"], {"__array__": "__meta__"})), "belongs elsewhere"),
    "reference_to_a_model_entry": (variant(meta=tree_edit(["m"], {"__array__": "model/head.bias"})),
                                   "belongs elsewhere"),
    "unknown_tag": (variant(meta=tree_edit(["x"], {"__code__": "print(1)"})), "unknown tags"),
    "tag_with_company": (variant(meta=tree_edit(["x"], {"__tuple__": [], "y": 1})), "unknown tags"),
    "tuple_of_a_dict": (variant(meta=tree_edit(["x"], {"__tuple__": {"a": 1}})), "__tuple__ must hold a list"),
    "items_not_pairs": (variant(meta=tree_edit(["x"], {"__items__": [[1, 2, 3]]})), r"\[key, value\] pairs"),
    "items_unhashable_key": (variant(meta=tree_edit(["x"], {"__items__": [[{"a": 1}, 2]]})), "cannot be a dict key"),
    "items_array_key": (variant(meta=tree_edit(["x"], {"__items__": [[{"__array__": "trainer/x/k"}, 2]]})),
                        "cannot be a dict key"),
    "trainer_a_list": (variant(meta=lambda m: edit(trainer=[m["trainer"]])(m)), "'trainer' must be null or a dict"),
    "optimizer_a_string": (variant(meta=edit(optimizer="adam")), "'optimizer' must be null or a dict, got str"),
    "trainer_bad_reference": (variant(meta=tree_edit(["loss"], {"__array__": ["a"]})), "must be a string"),
    "table_not_a_dict": (variant(meta=edit(arrays=[1])), "'arrays' must be a dict"),
    "table_entry_bad": (variant(meta=table_edit("model/head.bias", shape=[-1])), "'arrays' entry 'model/head.bias'"),
    "table_crc_too_big": (variant(meta=table_edit("model/head.bias", crc32=2**40)), "'arrays' entry"),
    "table_missing_an_entry": (variant(meta=lambda m: (m["arrays"].pop("model/head.bias"), m)[1]),
                               r"'arrays' and the archive disagree about the entries \['model/head.bias'\]"),
    "table_crc_wrong": (variant(meta=table_edit("model/head.bias", crc32=1)), "does not match the CRC-32"),
    # the config
    "hidden_size_2**40": (variant(meta=edit_model(hidden_size=2**40)),
                          r"config\['model'\]\['hidden_size'\] must be null or an integer in \[1, 2147483647\]"),
    "hidden_size_string": (variant(meta=edit_model(hidden_size="8")), "'hidden_size'.* got '8'"),
    "hidden_size_bool": (variant(meta=edit_model(hidden_size=True)), "'hidden_size'.* got True"),
    "hidden_size_negative": (variant(meta=edit_model(hidden_size=-3)), "'hidden_size'.* got -3"),
    "hidden_size_not_the_arrays": (variant(meta=edit_model(hidden_size=1000)),
                                   r"hidden_size 1000.* does not fit 'head.weight' of shape \(1, 3\)"),
    "num_layers_not_the_arrays": (variant(meta=edit_model(num_layers=50)), "'rnn.weight_hh_l49', which the"),
    "input_size_not_the_arrays": (variant(meta=edit_model(input_size=7)), "does not fit 'rnn.weight_ih_l0'"),
    "output_size_not_the_arrays": (variant(meta=edit_model(output_size=10**6)), "does not fit 'head.weight'"),
    "bidirectional_string": (variant(meta=edit_model(bidirectional="yes")), r"'bidirectional'\] must be true or false"),
    "dropout_1.5": (variant(meta=edit_model(dropout=1.5)), r"'dropout'\] must be a number in \[0, 1\)"),
    "cell_a_list": (variant(meta=edit_model(cell=["lstm"])), "'cell'.* must be a string"),
    "vocab_repeats": (variant(meta=edit_model(vocab="aab")), "distinct characters"),
    "model_a_list": (variant(meta=edit_config(model=[1])), r"config\['model'\] must be a dict"),
    "lr_negative": (variant(meta=edit_config(lr=-1)), r"config\['lr'\] must be a positive number, got -1"),
    "lr_string": (variant(meta=edit_config(lr="fast")), r"config\['lr'\] must be a positive number"),
    "lr_infinite": (variant(meta=lambda m: json.dumps(m).replace('"lr": 0.1', '"lr": Infinity').encode()),
                    r"config\['lr'\] must be a positive number, got inf"),
    "seq_len_zero": (variant(meta=edit_config(seq_len=0)), r"config\['seq_len'\] must be a positive integer"),
    "batch_size_fraction": (variant(meta=edit_config(batch_size=2.5)), r"config\['batch_size'\]"),
    "tbptt_string": (variant(meta=edit_config(tbptt="4")), r"config\['tbptt'\] must be a positive integer or null"),
    "seed_float": (variant(meta=edit_config(seed=0.5)), r"config\['seed'\] must be an integer"),
    "optimizer_a_number": (variant(meta=edit_config(optimizer=3)), r"config\['optimizer'\] must be a string"),
    "task_a_list": (variant(meta=edit_config(task=["chars"])), r"config\['task'\] must be a dict"),
}


def _pickled_npy(path):
    with open(path, "wb") as f:
        np.save(f, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return path


def _append(path, member):
    """Add a second member called ``member`` (zipfile warns about the duplicate; that is the point)."""
    with pytest.warns(UserWarning, match="Duplicate name"):
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr(member, npy_bytes(np.ones(1)))
    return path


def _deflate_and_flip(good, path):
    """Deflated members (allowed), with one compressed byte flipped: zlib or the CRC notices."""
    good.variant(path, compression=zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    start = data.find(W_IH.encode()) + len(W_IH) + 40   # inside the member's compressed bytes
    data[start] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def _fortran_flip(good, path):
    """The (12, 2) weight's header says Fortran order: same bytes, a transposed reading."""
    members = dict(good.members)
    raw = members[W_IH]
    members[W_IH] = raw.replace(b"'fortran_order': False", b"'fortran_order': True ")
    assert members[W_IH] != raw
    return write_zip(path, members)


def load_error(path, **kwargs):
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, **kwargs)
    return str(info.value)


@pytest.mark.parametrize("name", list(BAD))
def test_bad_file_is_refused_clearly(name, good, tmp_path):
    build, pattern = BAD[name]
    path = build(good, tmp_path / f"{name}.npz")
    messages = []
    peak = peak_bytes(lambda: messages.append(load_error(path)))
    message = messages[0]
    assert f"{str(path)!r}" in message                  # names the file
    assert "\n" not in message and "pickl" not in message.replace(str(path), "").lower()
    assert peak < 8 * 2**20, f"allocated {peak} bytes before refusing"
    assert re.search(pattern, message), message


@pytest.mark.parametrize("name", list(BAD))
def test_bad_file_through_the_command_line(name, good, tmp_path, capsys):
    build, _ = BAD[name]
    path = build(good, tmp_path / f"{name}.npz")
    code = main(["sample", "--load", str(path)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith("tinygraph sample: error: checkpoint ") and err.count("\n") == 1, err
    assert "Traceback" not in err and "pickl" not in err.replace(str(path), "").lower()


def test_the_good_file_and_its_variants_load(good, tmp_path):
    """The table's builders change only what they say: the untouched file, re-zipped, and deflated, load."""
    model, optimizer = trained_model()
    for path in (good.path, good.variant(tmp_path / "rezipped.npz"),
                 good.variant(tmp_path / "deflated.npz", compression=zipfile.ZIP_DEFLATED)):
        loaded = load_checkpoint(path)
        assert loaded.config["note"] == "ünï"
        for name, value in model.state_dict().items():
            np.testing.assert_array_equal(loaded.model_state[name], value)
        np.testing.assert_array_equal(loaded.optimizer_state["state.0.exp_avg"],
                                      optimizer.state_dict()["state.0.exp_avg"])
        assert loaded.trainer_state["pair"] == (1, 2.5) and loaded.trainer_state["by_id"][(1, 2)] == [3]


def test_a_file_without_the_arrays_table_still_loads(good, tmp_path):
    """Files written before the CRC table existed have no 'arrays' entry; they load, fully checked
    otherwise (a size mismatch is still refused)."""
    path = good.variant(tmp_path / "old.npz", meta=edit(arrays=None))
    assert load_checkpoint(path).model_state.keys() == trained_model()[0].state_dict().keys()
    bad = good.variant(tmp_path / "old_bad.npz", meta=edit(arrays=None),
                       members={BIAS: npy_raw(header(shape=(2**40,)), bytes(8))})
    assert "8796093022208 bytes" in load_error(bad)


def test_arrays_whose_tree_paths_collide_round_trip(tmp_path):
    """``{"a/b": x, "a": {"b": y}}`` puts two arrays at the path trainer/a/b; the second is named
    trainer/a/b#<n>, and the reader accepts both where they are."""
    state = {"a/b": np.ones(2), "a": {"b": np.zeros(3)}, 7: {"c": np.arange(2)}, "7": {"c": np.arange(3)},
             (1, "x"): np.ones(1)}
    save_checkpoint(tmp_path / "c.npz", trained_model()[0], trainer_state=state)
    loaded = load_checkpoint(tmp_path / "c.npz").trainer_state
    assert loaded.keys() == state.keys()
    np.testing.assert_array_equal(loaded["a"]["b"], np.zeros(3))
    np.testing.assert_array_equal(loaded[7]["c"], np.arange(2))
    np.testing.assert_array_equal(loaded["7"]["c"], np.arange(3))


def test_fortran_and_big_endian_arrays_round_trip(tmp_path):
    class Fake:
        def state_dict(self):
            return {"f": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
                    "b": np.arange(3, dtype=">f4"), "flag": np.array([True, False]), "n": np.int64(3),
                    "empty": np.zeros((0, 4))}
    path = tmp_path / "odd.npz"
    save_checkpoint(path, Fake())
    loaded = load_checkpoint(path).model_state
    for name, value in Fake().state_dict().items():
        np.testing.assert_array_equal(loaded[name], value)
        assert loaded[name].dtype == np.asarray(value).dtype


def test_the_size_cap(good, tmp_path):
    size = sum(a.nbytes for a in load_checkpoint(good.path).model_state.values())
    message = load_error(good.path, max_bytes=size // 2)
    assert "is too large to load" in message and f"max_bytes={size // 2}" in message
    load_checkpoint(good.path, max_bytes=10 * size)


def test_the_metadata_size_cap(good, monkeypatch):
    monkeypatch.setattr(ckpt, "MAX_META_BYTES", 100)
    assert "bytes of JSON, more than the 100 accepted" in load_error(good.path)


def deflate_bomb(good, path, meta=None):
    """The good file, deflated, with the (1,) bias replaced by a 0.13 MB member inflating to 128 MB (the
    reported file: 0.5 MB, 513 MB)."""
    good.variant(path, compression=zipfile.ZIP_DEFLATED, drop=(BIAS,), meta=meta)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        with archive.open(BIAS, "w", force_zip64=True) as member:
            member.write(npy_raw(header(shape=(2**24,))))
            zeros = bytes(2**22)
            for _ in range(8 * 2**24 // len(zeros)):
                member.write(zeros)
    assert os.path.getsize(path) < 2**18
    return path


def peak_bytes(function):
    tracemalloc.start()
    try:
        function()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_a_deflate_bomb_is_refused_before_it_is_inflated(good, tmp_path):
    path = deflate_bomb(good, tmp_path / "bomb.npz")
    messages = []
    assert peak_bytes(lambda: messages.append(load_error(path))) < 4 * 2**20
    assert f"member '{BIAS}': its header declares <f8 (16777216,) but the metadata recorded <f8 (1,)" in messages[0]
    # a file from before the CRC table cannot be told from a big model; max_bytes bounds what it costs
    old = deflate_bomb(good, tmp_path / "old_bomb.npz", meta=edit(arrays=None))
    assert peak_bytes(lambda: messages.append(load_error(old, max_bytes=2**26))) < 4 * 2**20
    assert "is too large to load: its arrays need 134" in messages[1]


def test_sample_refuses_a_config_that_would_build_a_huge_model(tmp_path, capsys):
    tg.manual_seed(0)
    model = CharRNN("ab\n", 4)
    path = tmp_path / "chars.npz"
    save_checkpoint(path, model, config={"model": model.config()})
    good = Good(path)
    crafted = good.variant(tmp_path / "huge.npz", meta=edit_model(hidden_size=2**30))
    code = main(["sample", "--load", str(crafted)])
    err = capsys.readouterr().err
    assert code == 2 and "hidden_size 1073741824" in err and "does not fit 'head.weight'" in err


def test_resume_from_a_bad_file_is_refused_and_leaves_it(good, tmp_path, capsys):
    for name in ("meta_nested_10**5", "shape_2**40", "config_a_list", "members_swapped", "encrypted_member"):
        path = BAD[name][0](good, tmp_path / f"{name}.npz")
        before = path.read_bytes()
        code = main(["train", "--task", "sine", "--hidden", "3", "--steps", "1", "--quiet", "--save", str(path),
                     "--resume"])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
        assert path.read_bytes() == before


# --- writing -------------------------------------------------------------------------------------------
def test_nonfinite_values_are_not_written_unless_asked(tmp_path):
    model, optimizer = trained_model()
    path = tmp_path / "c.npz"
    save_checkpoint(path, model, optimizer)
    before = path.read_bytes()
    model.rnn.weight_hh_l0.data[0, 0] = np.nan
    model.head.bias.data[:] = np.inf
    with pytest.raises(NonFiniteError, match=r"not writing .*c\.npz.*model/rnn\.weight_hh_l0 \(1 of 36 values\)"
                                             r".*model/head\.bias .*allow_nonfinite=True"):
        save_checkpoint(path, model, optimizer)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["c.npz"]
    save_checkpoint(path, model, optimizer, allow_nonfinite=True)
    assert np.isnan(load_checkpoint(path).model_state["rnn.weight_hh_l0"][0, 0])


def test_nonfinite_optimizer_state_is_not_written(tmp_path):
    model, optimizer = trained_model()
    optimizer.state[0]["exp_avg_sq"][0] = np.inf
    with pytest.raises(NonFiniteError, match=r"optimizer/state\.0\.exp_avg_sq"):
        save_checkpoint(tmp_path / "c.npz", model, optimizer)
    model, optimizer = trained_model()
    optimizer.lr = float("nan")
    with pytest.raises(NonFiniteError, match=r"optimizer/lr \(nan\)"):
        save_checkpoint(tmp_path / "c.npz", model, optimizer)
    assert not (tmp_path / "c.npz").exists()


def test_a_nonfinite_history_is_written(tmp_path):
    """The trainer's history records what happened, NaN losses of skipped steps included."""
    model, _ = trained_model()
    save_checkpoint(tmp_path / "c.npz", model, trainer_state={"loss": np.array([1.0, np.nan])})
    assert np.isnan(load_checkpoint(tmp_path / "c.npz").trainer_state["loss"][1])


NESTED_70 = []
for _ in range(69):
    NESTED_70 = [NESTED_70]


@pytest.mark.parametrize("config,message", [
    ({"model": {**trained_model()[0].config(), "hidden_size": 99}}, "hidden_size 99.* does not fit 'head.weight'"),
    ({"model": {"kind": "SequenceModel", "cell": "lstm", "hidden_size": 3}}, r"needs \['num_layers', 'output_size'"),
    ({"lr": 0}, r"config\['lr'\] must be a positive number"),
    ({"deep": NESTED_70}, "nested more than 64 levels"),
])
def test_a_config_that_would_not_load_is_not_written(tmp_path, config, message):
    model, _ = trained_model()
    with pytest.raises(ValueError, match=message):
        save_checkpoint(tmp_path / "c.npz", model, config=config)
    assert not (tmp_path / "c.npz").exists()


def test_restore_after_loading_still_checks_the_model(good):
    loaded = load_checkpoint(good.path)
    with pytest.raises(CheckpointError, match="does not fit this model"):
        restore(loaded, trained_model(hidden=5)[0])
