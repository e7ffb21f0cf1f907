"""ONNX export (``tinygraph.export``), checked with ``onnx.checker`` and run in onnxruntime against
tinygraph's own outputs: 1e-5 in float32, 1e-10 in float64 (where onnxruntime has float64 kernels).

Models are exported at one batch and sequence length and run at others. Every registered op either
exports and matches onnxruntime on drawn samples (``tinygraph.testing.op_samples``, several samples
per model) or is in ``tinygraph.export.UNSUPPORTED`` with a reason.
"""
import os
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

onnx = pytest.importorskip("onnx", reason="the ONNX export tests need the [onnx] extra: "
                                          "pip install 'tinygraph[onnx]'")
ort = pytest.importorskip("onnxruntime", reason="the ONNX export tests need the [onnx] extra: "
                                                "pip install 'tinygraph[onnx]'")

import tinygraph as tg  # noqa: E402
from examples.cells import IndRNN, MinimalGatedUnit, PeepholeLSTM  # noqa: E402
from rnn_models import GRU, LSTM, RNN, CharRNN, RecurrentLayer, SequenceModel  # noqa: E402
from rnn_models.checkpoint import save_checkpoint  # noqa: E402
from tinygraph.export import CONVERTERS, UNSUPPORTED, ExportError, onnx_model, to_onnx  # noqa: E402
from tinygraph.export.builder import flatten  # noqa: E402
from tinygraph.nn import Linear, Module  # noqa: E402
from tinygraph.ops import OPS, apply  # noqa: E402
from tinygraph.testing import op_samples  # noqa: E402
from tinygraph_app.cli import main  # noqa: E402
from tinygraph_app.export import load_model  # noqa: E402

TOLERANCE = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-10}
# ops whose ONNX form onnxruntime 1.32 runs in float32 only (no double kernel): the module docstring of
# tinygraph.export lists them, and test_every_op_matches_onnxruntime checks that onnxruntime refuses them
FLOAT32_ONLY = {"tan", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "arcsinh", "arccosh",
                "arctanh"}


def session(source):
    """An onnxruntime session of a file (a path) or of an ``OnnxModel``."""
    data = source.data if hasattr(source, "data") else os.fspath(source)
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"])


def checked(source):
    """The ONNX model of a file or an ``OnnxModel``, after onnx.checker (with shape inference)
    accepted it."""
    model = onnx.load_from_string(source.data) if hasattr(source, "data") else onnx.load(os.fspath(source))
    onnx.checker.check_model(model, full_check=True)
    return model


def assert_close(actual, expected, what=""):
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype}, expected {expected.dtype}"
    if expected.dtype.kind == "f":
        tol = TOLERANCE[expected.dtype]
        np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol, equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(actual, expected, err_msg=what)


# --- the op registry ---------------------------------------------------------------------------------
def export_samples(samples):
    """One graph holding every ``(op, arrays)`` sample side by side: (OnnxModel, feeds, expected)."""
    leaves, outputs = [], []
    for op, arrays in samples:
        inputs = [tg.Tensor(a) for a in arrays]
        leaves += inputs
        outputs.append(apply(op, *inputs))
    graph = tg.Graph.of(*outputs)
    exported = onnx_model(graph, leaves, dynamic_axes={})
    feeds = {name: t.data for (name, _, _), t in zip(exported.inputs, leaves)}
    return exported, feeds, [t.data for t in outputs]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", sorted(set(OPS) - set(UNSUPPORTED)))
def test_every_op_matches_onnxruntime(name, dtype):
    @settings(max_examples=max(2, settings().max_examples // 12))  # ci: 2 models of up to 4 samples
    @given(st.lists(op_samples(OPS[name], dtype), min_size=1, max_size=4))
    def check(samples):
        exported, feeds, expected = export_samples(samples)
        checked(exported)
        if name in FLOAT32_ONLY and np.dtype(dtype) == np.float64:
            with pytest.raises(Exception, match="NOT_IMPLEMENTED|Could not find an implementation"):
                session(exported)
            return
        actual = session(exported).run(None, feeds)
        for k, (a, e) in enumerate(zip(actual, expected)):
            assert_close(a, e, f"{name} sample {k}: {samples[k][0]!r} on {[x.shape for x in samples[k][1]]}")
    check()


@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_unsupported_ops_are_refused_with_their_reason(name, tmp_path):
    op, arrays = _one_sample(name)
    inputs = [tg.Tensor(a) for a in arrays]
    with tg.scope("loss"):
        out = apply(op, *inputs)
    with pytest.raises(ExportError, match=f"op '{name}' \\(scope 'loss'\\).*{re.escape(UNSUPPORTED[name])}"):
        to_onnx(tg.Graph.of(out), tmp_path / "x.onnx", inputs, dynamic_axes={})
    assert not (tmp_path / "x.onnx").exists()


def _one_sample(name):
    found = []

    @settings(max_examples=1)
    @given(op_samples(OPS[name]))
    def draw(sample):
        found.append(sample)
    draw()
    return found[0]


def test_every_op_is_exported_or_refused_with_a_reason():
    missing = sorted(set(OPS) - set(CONVERTERS) - set(UNSUPPORTED))
    assert not missing, f"ops with neither an ONNX rule nor a reason in UNSUPPORTED: {missing}"
    assert all(isinstance(r, str) and len(r) > 20 for r in UNSUPPORTED.values())
    assert not set(CONVERTERS) & set(UNSUPPORTED)


# --- models: exported at one size, run at another -------------------------------------------------------
RNG = np.random.default_rng(0)


def data(shape, dtype=np.float64, rng=RNG):
    return rng.uniform(-1, 1, shape).astype(dtype)


def run_both(model, example, inputs, **options):
    """Export ``model`` at ``example`` (positional arguments), check the file, run it in onnxruntime on
    ``inputs`` and compare every output with ``model(*inputs)``. Returns the ONNX ModelProto."""
    exported = onnx_model(model, example, **options)
    proto = checked(exported)
    arrays = flatten([a for a in inputs], np.ndarray)
    feeds = {name: a for (name, _, _), a in zip(exported.inputs, arrays)}
    actual = session(exported).run(None, feeds)
    tensors = [tuple(map(tg.Tensor, a)) if isinstance(a, tuple) else tg.Tensor(a) for a in inputs]
    with tg.no_grad():
        expected = [t.data for t in flatten(model(*tensors), tg.Tensor)]
    assert len(actual) == len(expected) == len(exported.outputs)
    for (name, _, _), a, e in zip(exported.outputs, actual, expected):
        assert np.abs(e).max() > 1e-3, f"{name} is all but zero: a weak comparison"
        assert_close(a, e, name)
    return proto


def op_types(graph):
    return [n.op_type for n in graph.node]


def dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def test_lstm_two_layers_bidirectional_batch_first_float32():
    """The bar: exported at (B=3, T=5), run at (B=2, T=7); native ONNX LSTM ops, one per layer."""
    tg.manual_seed(1)
    lstm = LSTM(4, 6, num_layers=2, bidirectional=True, batch_first=True, dtype=np.float32)
    proto = run_both(lstm, (data((3, 5, 4), np.float32),), (data((2, 7, 4), np.float32),))
    assert op_types(proto.graph).count("LSTM") == 2 and "Scan" not in op_types(proto.graph)
    assert [i.name for i in proto.graph.input] == ["input"]
    assert dims(proto.graph.input[0]) == ["batch", "time", 4]
    assert [o.name for o in proto.graph.output] == ["output", "h_n", "c_n"]
    assert dims(proto.graph.output[0]) == ["batch", "time", 12]
    assert dims(proto.graph.output[1]) == [4, "batch", 6]


def test_lstm_initial_states_are_inputs_when_given():
    tg.manual_seed(2)
    lstm = LSTM(3, 5, num_layers=2, bidirectional=True, dtype=np.float32)
    state = (data((4, 3, 5), np.float32), data((4, 3, 5), np.float32))
    run_state = (data((4, 2, 5), np.float32), data((4, 2, 5), np.float32))
    proto = run_both(lstm, (data((5, 3, 3), np.float32), state), (data((7, 2, 3), np.float32), run_state))
    assert [i.name for i in proto.graph.input] == ["input", "h0", "c0"]
    assert dims(proto.graph.input[1]) == [4, "batch", 5]


@pytest.mark.parametrize("layer", [
    lambda dtype: GRU(4, 6, num_layers=2, bidirectional=True, dtype=dtype),
    lambda dtype: GRU(4, 6, batch_first=True, bias=False, dtype=dtype),
    lambda dtype: RNN(4, 6, num_layers=2, dtype=dtype),
    lambda dtype: RNN(4, 6, nonlinearity="relu", bidirectional=True, dtype=dtype),
    lambda dtype: LSTM(4, 6, bias=False, dtype=dtype),
], ids=["gru-2-bi", "gru-batch_first-nobias", "rnn-2", "rnn-relu-bi", "lstm-nobias"])
def test_gru_rnn_lstm_native_float32(layer):
    tg.manual_seed(3)
    model = layer(np.float32)
    shape = (lambda t, b: (b, t, 4)) if model.batch_first else (lambda t, b: (t, b, 4))
    proto = run_both(model, (data(shape(5, 3), np.float32),), (data(shape(7, 2), np.float32),))
    kind = type(model).__name__
    assert op_types(proto.graph).count(kind) == model.num_layers
    if kind == "GRU":
        gru = next(n for n in proto.graph.node if n.op_type == "GRU")
        reset = next(a for a in gru.attribute if a.name == "linear_before_reset")
        assert onnx.helper.get_attribute_value(reset) == 1


@pytest.mark.parametrize("cls", [LSTM, GRU, RNN])
def test_layers_as_scan_in_float64(cls):
    """recurrent="scan": the folded step of our own cells (fused ops) as a Scan body, float64 1e-10,
    with and without initial states."""
    tg.manual_seed(4)
    model = cls(3, 5, num_layers=2, bidirectional=True)
    proto = run_both(model, (data((5, 3, 3)),), (data((7, 2, 3)),), recurrent="scan")
    assert op_types(proto.graph).count("Scan") == 4 and cls.__name__ not in op_types(proto.graph)
    states = tuple(data((4, 2, 5)) for _ in model.state_names)
    example = tuple(data((4, 3, 5)) for _ in model.state_names)
    pack = (lambda s: s) if cls is LSTM else (lambda s: s[0])
    run_both(model, (data((5, 3, 3)), pack(example)), (data((7, 2, 3)), pack(states)), recurrent="scan")


def test_native_float64_layers_are_valid_but_onnxruntime_has_no_kernel():
    """The docstring's claim: onnxruntime runs ONNX's RNN/LSTM/GRU in float32 only."""
    for cls in (LSTM, GRU, RNN):
        exported = onnx_model(cls(3, 4), (data((5, 2, 3)),))
        checked(exported)
        with pytest.raises(Exception, match="double|NOT_IMPLEMENTED"):
            session(exported).run(None, {"input": data((5, 2, 3))})


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_minimal_gated_unit_exports_as_scan_of_its_folded_step(dtype):
    """The bar: a user's cell (examples.cells:MinimalGatedUnit), 2 layers, bidirectional: one Scan per
    layer and direction whose body is the folded step graph."""
    tg.manual_seed(5)
    layer = RecurrentLayer(MinimalGatedUnit, 3, 6, num_layers=2, bidirectional=True)
    layer.to(dtype)
    proto = run_both(layer, (data((5, 3, 3), dtype),), (data((7, 2, 3), dtype),))
    scans = [n for n in proto.graph.node if n.op_type == "Scan"]
    assert len(scans) == 4
    body = onnx.helper.get_attribute_value(next(a for a in scans[1].attribute if a.name == "body"))
    # the folded step: three Linear layers (Gemm; the two without bias have no C input), sigmoid, tanh
    assert {"Gemm", "Sigmoid", "Tanh"} <= set(op_types(body))
    gemms = [n for n in body.node if n.op_type == "Gemm"]
    assert sorted(len(n.input) for n in gemms) == [2, 2, 3]
    assert [dims(i) for i in body.input] == [["batch", 6], ["batch", 3]]      # h[t-1], x[t]
    directions = [onnx.helper.get_attribute_value(a) for a in scans[1].attribute
                  if a.name in ("scan_input_directions", "scan_output_directions")]
    assert directions == [[1], [1]]   # the reverse direction


def test_user_cells_with_a_pair_state_and_initial_states():
    tg.manual_seed(6)
    layer = RecurrentLayer(PeepholeLSTM, 3, 4, batch_first=True)
    with tg.no_grad():
        for p in layer.parameters():
            p.data = data(p.shape)   # the peepholes start at zero: give them values
    state = (data((1, 3, 4)), data((1, 3, 4)))
    run_both(layer, (data((3, 5, 3)), state), (data((2, 7, 3)), (data((1, 2, 4)), data((1, 2, 4)))))
    run_both(layer, (data((3, 5, 3)),), (data((2, 7, 3)),))


@pytest.mark.parametrize("build, ids, recurrent", [
    (lambda: CharRNN("abcdefgh", 6, cell="gru", embedding_dim=5, dtype=np.float32), True, "native"),
    (lambda: CharRNN("abcdefgh", 6, cell="lstm", num_layers=2), True, "scan"),
    (lambda: SequenceModel("lstm", 3, 6, 2, dtype=np.float32), False, "native"),
    (lambda: SequenceModel("examples.cells:IndRNN", 3, 6, 2, head="many_to_one", num_layers=2,
                           bidirectional=True), False, "native"),
    (lambda: SequenceModel("rnn", 3, 6, 4, head="many_to_one", embedding=9, dtype=np.float32), True,
     "native"),
], ids=["charrnn-embedding-gru", "charrnn-onehot-lstm-scan", "many_to_many", "many_to_one-indrnn",
        "many_to_one-embedding"])
def test_sequence_models(build, ids, recurrent):
    """Embedding -> Gather, the layer -> its native op or Scans, the head -> Gemm or MatMul + Add."""
    tg.manual_seed(7)
    model = build()
    dtype = model.rnn.dtype

    def inputs(t, b):
        if ids:
            return np.random.default_rng(t).integers(0, model.vocab_size, (t, b))
        return data((t, b, model.input_size), dtype)
    proto = run_both(model, (inputs(5, 3),), (inputs(7, 2),), recurrent=recurrent)
    types = op_types(proto.graph)
    assert ("Gather" in types) == ids
    assert ("Gemm" in types) == (model.head_kind == "many_to_one")
    assert dims(proto.graph.output[0])[-2 if model.head_kind == "many_to_one" else 1] == "batch"


class Tagger(Module):
    """A user's Module around an LSTM: the LSTM exports as one node, the rest op by op."""

    def __init__(self):
        super().__init__()
        self.lstm = LSTM(3, 4, bidirectional=True, dtype=np.float32)
        self.head = Linear(8, 2, dtype=np.float32)

    def forward(self, x):
        out, (h, c) = self.lstm(x)
        T, B = out.shape[:2]
        flat = tg.reshape(tg.relu(out), (-1, 8))          # (T*B, 8): a dimension of two dynamic axes
        scores = tg.reshape(self.head(flat), (-1, B, 2))  # B baked in: fine only while B stays fixed
        return tg.softmax(scores, axis=-1), h.sum(axis=0)


def test_a_users_module_around_a_layer():
    tg.manual_seed(8)
    model = Tagger()
    proto = run_both(model, (data((5, 3, 3), np.float32),), (data((7, 3, 3), np.float32),),
                     dynamic_axes={"input": {0: "time"}})
    assert op_types(proto.graph).count("LSTM") == 1
    with pytest.raises(ExportError, match="op 'reshape'.*two of its dimensions follow dynamic axes"):
        onnx_model(model, (data((5, 3, 3), np.float32),), dynamic_axes={"input": {0: "time", 1: "batch"}})


class Scale(Module):
    """A module with an exporter of its own (registered below): y = x * factor, as one ONNX Mul."""

    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


def _export_scale(b, module, x):
    return b.node("Mul", [x, b.scalar(module.factor, x.dtype)])


class Tokens(Module):
    """Embedding -> GRU -> Scale -> Linear, each called as a module inside a traced forward."""

    def __init__(self):
        super().__init__()
        self.embed = tg.nn.Embedding(10, 3, dtype=np.float32)
        self.gru = GRU(3, 4, dtype=np.float32)
        self.scale = Scale(0.5)
        self.head = Linear(4, 2, dtype=np.float32)

    def forward(self, ids):
        out, h = self.gru(self.embed(ids))
        return self.head(self.scale(out)), h


def test_registered_modules_inside_a_traced_module(monkeypatch):
    from tinygraph.export import register_onnx
    from tinygraph.export.builder import EXPORTERS
    monkeypatch.setitem(EXPORTERS, Scale, _export_scale)
    tg.manual_seed(13)
    model = Tokens()
    ids = np.random.default_rng(1).integers(0, 10, (5, 3))
    dynamic = {"input": {0: "time", 1: "batch"}}
    proto = run_both(model, (ids,), (np.random.default_rng(2).integers(0, 10, (7, 2)),), dynamic_axes=dynamic)
    assert [t for t in op_types(proto.graph) if t in ("Gather", "GRU", "Mul")] == ["Gather", "GRU", "Mul"]
    monkeypatch.setitem(EXPORTERS, Scale, lambda b, module, x: [x.name, x.name])
    with pytest.raises(ExportError, match="exporter of Scale returned 2 ONNX values for the 1 tensors"):
        onnx_model(lambda x: Scale(2.0)(x) + 1, (data((3, 2)),))
    with pytest.raises(TypeError, match="register_onnx: expected a class and a function"):
        register_onnx(Scale(1.0), _export_scale)


def test_dynamic_axes_through_shape_ops():
    """Rules that write shapes keep the dynamic axes: reshape (0 and -1), broadcast_to (Expand with 1),
    slices, var and sort along a dynamic axis, flip, cumsum."""
    def f(x):
        y = tg.reshape(x, (-1, 3, 2))[:, ::-1, 1:] * 2       # (B*2, 3, 1)
        z = tg.broadcast_to(x[:, None, :], (x.shape[0], 4, 6))
        rows = tg.sort(x, axis=0) + tg.var(x, axis=0, ddof=1) + tg.cumsum(x, axis=0)
        ends = x[np.array([-1, 0])]                           # Gather on the dynamic axis, from its end
        return tg.flip(y, axis=0), z.sum(axis=1), rows, x.reshape((x.shape[0], 2, 3)), ends
    x = data((4, 6))
    exported = onnx_model(f, (x,))
    checked(exported)
    x2 = data((9, 6))
    for a, e in zip(session(exported).run(None, {"input": x2}), f(tg.Tensor(x2))):
        assert_close(a, e.data)
    assert [o[2] for o in exported.outputs] == [("batch", 3, 1), ("batch", 6), ("batch", 6), ("batch", 2, 3),
                                                (2, 6)]


def test_same_model_same_bytes_and_protobufs_own_serialization():
    tg.manual_seed(9)
    model = CharRNN("xyz", 4, cell="lstm", num_layers=2)
    ids = np.zeros((4, 2), dtype=np.int64)
    first, second = onnx_model(model, (ids,)), onnx_model(model, (ids,), recurrent="native")
    assert first.data == second.data
    assert onnx.load_from_string(first.data).SerializeToString() == first.data
    scan = onnx_model(model, (ids,), recurrent="scan")
    assert onnx.load_from_string(scan.data).SerializeToString() == scan.data


def test_to_onnx_writes_the_file_atomically(tmp_path):
    path = tmp_path / "m.onnx"
    exported = to_onnx(GRU(2, 3, dtype=np.float32), path, (data((4, 2, 2), np.float32),))
    assert path.read_bytes() == exported.data
    assert "GRU" in exported.summary() and "time, batch" in exported.summary()
    with pytest.raises(tg.ShapeError, match="input_size=2"):
        to_onnx(GRU(2, 3), path, (data((4, 2, 5)),))   # the wrong input size: refused by the layer
    assert path.read_bytes() == exported.data        # the previous file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


@pytest.mark.parametrize("opset", [18, 21])
def test_later_opsets(opset):
    """Reduce* take their axes as an input from opset 18 on."""
    tg.manual_seed(10)
    run_both(LSTM(3, 4, dtype=np.float32), (data((5, 3, 3), np.float32),), (data((7, 2, 3), np.float32),),
             opset=opset)

    def reductions(x):
        return (tg.max(x, axis=1), tg.min(x, axis=(0, 1), keepdims=True), tg.prod(x, axis=0),
                tg.mean(x, axis=1))
    run_both(reductions, (data((3, 4)),), (data((5, 4)),), opset=opset)


# --- bad input: one clear error, nothing written -------------------------------------------------------
@pytest.mark.parametrize("kwargs, message", [
    (dict(opset=16), "opset must be one of"),
    (dict(recurrent="loop"), "recurrent must be one of"),
    (dict(dynamic_axes={"x": {0: "batch"}}), "not inputs"),
    (dict(dynamic_axes={"input": {3: "batch"}}), "names axis 3, but 'input' has shape"),
    (dict(dynamic_axes={"input": {0: ""}}), "non-empty name"),
    (dict(input_names=["a", "b"]), "input_names must be 1 non-empty strings"),
    (dict(output_names=["y"]), "output_names must be 2"),
    (dict(output_names=["y", "y"]), "given to two inputs or outputs"),
    (dict(input_names=["output"]), "given to two inputs or outputs"),
])
def test_bad_arguments(kwargs, message, tmp_path):
    with pytest.raises(ExportError, match=message):
        to_onnx(GRU(2, 3), tmp_path / "m.onnx", (data((4, 2, 2)),), **kwargs)
    assert not list(tmp_path.iterdir())


def test_bad_example_inputs_and_paths(tmp_path):
    gru = GRU(2, 3)
    with pytest.raises(ExportError, match=r"example_inputs\[0\] is str"):
        onnx_model(gru, ("abc",))
    with pytest.raises(ExportError, match="hold no array"):
        onnx_model(gru, (None,))
    with pytest.raises(ExportError, match="is a directory"):
        to_onnx(gru, tmp_path, (data((4, 2, 2)),))
    with pytest.raises(ExportError, match="does not exist"):
        to_onnx(gru, tmp_path / "missing" / "m.onnx", (data((4, 2, 2)),))
    with pytest.raises(ExportError, match="size 0 on its dynamic axis 1"):
        onnx_model(gru, (data((4, 0, 2)),))
    with pytest.raises(ExportError, match="lengths"):
        onnx_model(lambda x: gru(x, lengths=np.array([4, 3]))[0], (data((4, 2, 2)),),
                   dynamic_axes={"input": {0: "time"}})
    with pytest.raises(ExportError, match="not a leaf of the graph"):
        x = tg.Tensor(data((2, 2)))
        onnx_model(tg.Graph.of(tg.exp(x)), [tg.Tensor(data((2, 2)))])


def test_sizes_read_at_trace_time():
    """A size computed in Python from x.shape is fine where a rule can write it from the two traced
    sizes (a reshape); elsewhere (an index bound, a count) it is refused, not written as a constant."""
    def flat(x):
        return tg.reshape(x, (x.shape[0] * x.shape[1],))
    run_both(flat, (data((3, 4)),), (data((5, 4)),))
    with pytest.raises(ExportError, match="op 'getitem' \\(scope 'half'\\) does not follow the dynamic "
                                          "axes \\('batch'\\).*its index changes with the sizes"):
        def half(x):
            with tg.scope("half"):
                return x[:x.shape[0] // 2]
        onnx_model(half, (data((3, 4)),))
    with pytest.raises(ExportError, match="op 'mul' .* reads a constant float64 \\(\\) that "
                                          "changes.*tg.mean"):
        onnx_model(lambda x: tg.mean(x, axis=0), (data((3, 4)),))
    run_both(lambda x: tg.mean(x, axis=1), (data((3, 4)),), (data((5, 4)),))   # a fixed axis: fine
    with pytest.raises(ExportError, match="broadcast_to .* stretches to axis 0 \\('batch'\\)"):
        onnx_model(lambda x: tg.broadcast_to(tg.sum(x, axis=0, keepdims=True), x.shape) + x, (data((3, 4)),))
    with pytest.raises(ExportError, match="counts from the end of a dynamic axis with a negative step"):
        onnx_model(lambda x: x[-2::-1], (data((3, 4)),))
    with pytest.raises(ExportError, match="getitem with index arrays needs fixed sizes.*axis 0 "
                                          "\\('batch'\\)"):
        onnx_model(lambda x: x[np.array([0, 1]), np.array([1, 2])], (data((3, 4)),))
    run_both(lambda x: x[np.array([0, 1]), np.array([1, 2])], (data((3, 4)),), (data((3, 4)),),
             dynamic_axes={})   # fixed sizes: a Gather of the positions


def test_an_unrolled_recurrence_follows_no_dynamic_length():
    layer = RecurrentLayer(IndRNN, 2, 3)
    node = layer.recurrent(0)
    with pytest.raises(ExportError, match="'time'.*has 36 nodes instead of 31: a Python loop over a size"):
        onnx_model(lambda x: node.sequence(x)[0], (data((5, 3, 2)),),
                   dynamic_axes={"input": {0: "time", 1: "batch"}})
    with pytest.raises(ExportError, match="reads a constant float64 \\(3, 3\\) that changes"):
        onnx_model(lambda x: node.sequence(x)[0], (data((5, 3, 2)),), dynamic_axes={"input": {1: "batch"}})
    # a fixed length and the zero state given: the 5 steps as they are, for any batch
    run_both(lambda x, h: node.sequence(x, h)[0], (data((5, 3, 2)), data((3, 3))),
             (data((5, 2, 2)), data((2, 3))), dynamic_axes={"input": {1: "batch"}, "input_1": {0: "batch"}})


def test_values_the_trace_reads_into_numpy():
    table = tg.Tensor(data((5, 3)))
    with pytest.raises(ExportError, match="op 'getitem'.*its index changes with the sizes"):
        onnx_model(lambda ids: tg.embedding(table, ids), (np.array([[1, 2]]),))
    with pytest.raises(ExportError, match="'input' does not reach the outputs"):
        onnx_model(lambda ids: tg.embedding(table, ids), (np.array([[1, 2]]),), dynamic_axes={})


def test_ops_without_a_mapping_name_the_op_and_scope():
    x = tg.Tensor(data((2, 3)))
    with tg.scope("drop"):
        y = tg.nn.Dropout(0.5)(x)
    with pytest.raises(ExportError, match="op 'dropout_mask' \\(scope 'drop'\\) cannot be exported"):
        onnx_model(tg.Graph.of(y), [x])
    model = SequenceModel("gru", 2, 3, 2, dropout=0.5, num_layers=2)   # dropout: eval mode, left out
    exported = onnx_model(model, (data((5, 3, 2)),), recurrent="scan")
    assert model.training   # put back in training mode
    model.eval()
    run_both(model, (data((5, 3, 2)),), (data((7, 2, 2)),), recurrent="scan")
    assert "Dropout" not in exported.op_counts


def test_the_export_imports_numpy_only():
    import ast
    import pathlib
    import sys
    package = pathlib.Path(tg.__file__).parent / "export"
    roots = {alias.name.split(".")[0] if isinstance(node, ast.Import) else node.module.split(".")[0]
             for path in package.glob("*.py") for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, (ast.Import, ast.ImportFrom)) and getattr(node, "level", 0) == 0
             for alias in (node.names if isinstance(node, ast.Import) else [None])}
    assert roots - set(sys.stdlib_module_names) == {"numpy"}


# --- the command line ---------------------------------------------------------------------------------------
def checkpoint(tmp_path, model, **config):
    path = tmp_path / "run.npz"
    save_checkpoint(path, model, config={"model": model.config(), **config})
    return path


def test_cli_export_runs_at_other_sizes(tmp_path, capsys):
    tg.manual_seed(11)
    model = CharRNN("abcdef", 5, cell="lstm")
    path = checkpoint(tmp_path, model, seq_len=6, batch_size=4)
    out = tmp_path / "model.onnx"
    assert main(["export", "--load", str(path), "-o", str(out), "--dtype", "float32"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}: inputs input (time, batch) int64" in printed and "LSTM" in printed
    ids = np.random.default_rng(0).integers(0, 6, (9, 2))
    actual = session(out).run(None, {"input": ids})
    model.to(np.float32)
    with tg.no_grad():
        logits, (h, c) = model(ids)
    for a, e in zip(actual, (logits, h, c)):
        assert_close(a, e.data)
    assert main(["export", "--load", str(path), "-o", str(out), "--recurrent", "scan"]) == 0   # float64
    assert "Scan" in capsys.readouterr().out
    model, _ = load_model(path)
    with tg.no_grad():
        assert_close(session(out).run(None, {"input": ids})[0], model(ids)[0].data)


def test_cli_export_notes_float64_native_layers(tmp_path, capsys):
    path = checkpoint(tmp_path, SequenceModel("gru", 2, 3, 2))
    assert main(["export", "--load", str(path), "-o", str(tmp_path / "m.onnx")]) == 0
    assert "no float64 kernel for GRU" in capsys.readouterr().err


@pytest.mark.parametrize("make, args, message", [
    (None, ["--load", "{d}/none.npz", "-o", "{d}/m.onnx"], "does not exist"),
    ("text", ["--load", "{d}/bad.npz", "-o", "{d}/m.onnx"], "not a zip archive"),
    ("user", ["--load", "{d}/run.npz", "-o", "{d}/m.onnx"], "Pass --trust-cell"),
    ("user", ["--load", "{d}/run.npz", "-o", "{d}/m.txt"], "must end in .onnx"),
    ("user", ["--load", "{d}/run.npz", "-o", "{d}/no/m.onnx"], "does not exist"),
    ("user", ["--load", "{d}/run.npz", "-o", "{d}/m.onnx", "--opset", "9"], "must be an integer in [17, 21]"),
])
def test_cli_bad_input_is_one_line_exit_2(make, args, message, tmp_path, capsys):
    if make == "text":
        (tmp_path / "bad.npz").write_text("not a checkpoint")
    elif make == "user":
        checkpoint(tmp_path, SequenceModel("examples.cells:MinimalGatedUnit", 2, 3, 2))
    try:
        code = main(["export", *[a.format(d=tmp_path) for a in args]])
    except SystemExit as exc:   # argparse refuses a flag's value itself
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.onnx").exists()


def test_cli_exports_a_users_cell_when_trusted(tmp_path, capsys):
    tg.manual_seed(12)
    model = SequenceModel("examples.cells:MinimalGatedUnit", 2, 3, 2)
    path = checkpoint(tmp_path, model)
    out = tmp_path / "m.onnx"
    assert main(["export", "--load", str(path), "-o", str(out), "--trust-cell", "--seq-len", "3"]) == 0
    assert "Scan" in capsys.readouterr().out
    x = data((6, 2, 2))
    with tg.no_grad():
        assert_close(session(out).run(None, {"input": x})[0], model(x)[0].data)


SOFTSIGN_CELL = '''
import numpy as np
import tinygraph as tg
from tinygraph.nn import Linear, Module
from tinygraph.ops import Op, apply


class Softsign(Op, register=False):
    name = "softsign"
    saves = ("x",)
    def forward(self, x): return x / (1 + np.abs(x))
    def vjp(self, B, g, out, x): return (g / (1 + B.abs(x)) ** 2,)


class SoftsignCell(Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.lin = Linear(input_size + hidden_size, hidden_size)

    def forward(self, x, h):
        return apply(Softsign(), self.lin(tg.concat([x, h], axis=-1)))
'''


def test_cli_a_cell_with_an_op_without_mapping_is_one_line(tmp_path, capsys, monkeypatch):
    (tmp_path / "softsign_cell.py").write_text(SOFTSIGN_CELL)
    monkeypatch.syspath_prepend(str(tmp_path))
    path = checkpoint(tmp_path, SequenceModel("softsign_cell:SoftsignCell", 2, 3, 2))
    assert main(["export", "--load", str(path), "-o", str(tmp_path / "m.onnx"), "--trust-cell"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "op 'softsign' (scope 'softsigncell/l0/cell') cannot be exported to ONNX" in err
    assert not (tmp_path / "m.onnx").exists()
