"""Every registered primitive, property-tested over its sample family (tinygraph.testing.op_samples).

A new op is picked up from ``tinygraph.ops.OPS`` automatically: its gradients are checked against
central differences (first and second order), its inputs checked not to be modified, float32 checked to
stay float32. Composite functions (softmax, cross_entropy, ...) are checked with ``check_grads``.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygraph as tg
from tinygraph.autograd import TENSOR_VJP, vjp_of
from tinygraph.ops import NUMPY_VJP, OPS, apply
from tinygraph.ops.base import Cached
from tinygraph.ops.lazy import materialize
from tinygraph.ops.shape import AsType
from tinygraph.release import Released
from tinygraph.testing import (SAMPLERS, arrays, assert_not_mutated, broadcastable_pairs, check_grads,
                               op_samples, shapes)

ALL_OPS = sorted(OPS)
DIFFERENTIABLE = [name for name in ALL_OPS if OPS[name].differentiable]
NON_DIFFERENTIABLE = [name for name in ALL_OPS if not OPS[name].differentiable]
FAST_RULES = [name for name in ALL_OPS if OPS[name].vjp_arrays is not None]


def run_op(op):
    """``fn(*tensors)`` applying ``op``: the shape gradcheck and friends take."""
    return lambda *tensors: apply(op, *tensors)


def leaves(arrays_, requires_grad=True):
    return [tg.tensor(a, requires_grad=requires_grad and a.dtype.kind == "f") for a in arrays_]


def test_every_op_has_a_sampler():
    missing = {name: cls.sample for name, cls in OPS.items() if cls.sample not in SAMPLERS}
    assert not missing, f"ops whose `sample` family has no sampler in tinygraph.testing: {missing}"


def test_an_op_without_a_sampler_is_reported_by_name():
    class Orphan(tg.ops.Op, register=False):
        name = "orphan"
    with pytest.raises(LookupError, match="orphan"):
        op_samples(Orphan)


# --- the registry-driven properties -------------------------------------------------------------------
@pytest.mark.parametrize("name", DIFFERENTIABLE)
@given(data=st.data())
def test_gradient_matches_central_differences(name, data):
    op, inputs = data.draw(op_samples(OPS[name]), label="op, inputs")
    assert tg.gradcheck(run_op(op), inputs)


@pytest.mark.parametrize("name", DIFFERENTIABLE)
@given(data=st.data())
def test_second_derivative_matches_central_differences(name, data):
    op, inputs = data.draw(op_samples(OPS[name]), label="op, inputs")
    assert tg.gradgradcheck(run_op(op), inputs)


@pytest.mark.parametrize("name", ALL_OPS)
@given(data=st.data())
def test_forward_and_backward_leave_inputs_and_the_op_unmodified(name, data):
    """An op is a description: what its backward reads lives on the node it made, so its attributes
    are still its constructor's, the very same objects."""
    op, inputs = data.draw(op_samples(OPS[name]), label="op, inputs")
    attributes = dict(vars(op))

    def op_unchanged():
        return vars(op).keys() == attributes.keys() and all(vars(op)[k] is v for k, v in attributes.items())

    def forward(*tensors):
        out = apply(op, *tensors)
        assert op_unchanged(), f"forward changed the op: {vars(op)} (was {attributes})"
        return out
    assert_not_mutated(forward, inputs)
    assert op_unchanged(), f"backward changed the op: {vars(op)} (was {attributes})"


@pytest.mark.parametrize("name", DIFFERENTIABLE + ["sign"])
@given(data=st.data())
def test_float32_in_float32_out_and_float32_grads(name, data):
    op, inputs = data.draw(op_samples(OPS[name], np.float32), label="op, inputs")
    tensors = leaves(inputs)
    assert all(t.dtype == np.float32 for t in tensors if t.dtype.kind == "f")
    out = apply(op, *tensors)
    assert out.dtype == (op.dtype if isinstance(op, AsType) else np.float32)
    if out.requires_grad:
        out.backward(np.ones(out.shape, out.dtype))
        for t in tensors:
            assert t.grad is None or t.grad.dtype == t.dtype, (t.grad.dtype, t.dtype)


@pytest.mark.parametrize("name", ALL_OPS)
@given(data=st.data())
def test_detect_anomaly_lets_finite_values_and_gradients_through(name, data):
    """Anomaly mode checks every forward value and every gradient an op's rule returns, whatever its
    form; on finite inputs it must change nothing."""
    op, inputs = data.draw(op_samples(OPS[name]), label="op, inputs")
    plain, checked = leaves(inputs), leaves(inputs)
    expected = apply(op, *plain)
    with tg.detect_anomaly():
        out = apply(op, *checked)
        if out.requires_grad:
            out.backward(np.ones(out.shape, out.dtype))
    np.testing.assert_array_equal(out.data, expected.data)
    if out.requires_grad:
        expected.backward(np.ones(out.shape, out.dtype))
        for mine, ref in zip(checked, plain):
            assert (mine.grad is None) == (ref.grad is None)
            if mine.grad is not None:
                np.testing.assert_array_equal(mine.grad, ref.grad)


@pytest.mark.parametrize("name", FAST_RULES)
@given(data=st.data())
def test_fast_array_rule_equals_the_generic_rule(name, data):
    """An op's optional ``vjp_arrays`` (what first-order backward runs) returns, for every input, what
    its generic ``vjp`` returns in the numpy namespace: called on arrays (recomputing anything its
    forward may cache), and run by the engine on the node the op made (``vjp_of``, reading the node's
    cache). Lazy results are multiplied out first; g covers every output element (the gate columns of
    a cell too, as in a double backward)."""
    op, inputs = data.draw(op_samples(OPS[name]), label="op, inputs")
    node = apply(op, *leaves(inputs))
    g = data.draw(arrays(node.shape, node.dtype), label="g")
    generic = op.vjp(NUMPY_VJP, g.copy(), node.data, *inputs)
    assert len(generic) == len(inputs)
    for path, fast in [("vjp_arrays", op.vjp_arrays(g.copy(), node.data, *inputs)),
                       ("vjp_of", vjp_of(node, g.copy()))]:
        assert len(fast) == len(inputs), path
        for argnum, (mine, ref) in enumerate(zip(fast, generic)):
            assert (mine is None) == (ref is None), (path, argnum)
            if ref is not None:
                mine, ref = materialize(mine), materialize(ref)
                assert mine.shape == ref.shape and mine.dtype == ref.dtype, (path, argnum)
                np.testing.assert_allclose(mine, ref, rtol=1e-12, atol=1e-12, err_msg=f"{path} {argnum}")
    assert node._cache is None  # a cache the forward left is handed to the first rule run, once


@pytest.mark.parametrize("name", NON_DIFFERENTIABLE)
@given(data=st.data())
def test_non_differentiable_outputs_never_require_grad(name, data):
    op, inputs = data.draw(op_samples(OPS[name]), label="op, inputs")
    assert not apply(op, *leaves(inputs)).requires_grad


# --- saved values: what an op declares its rule reads is all its rule reads -----------------------------
def _forward(op, inputs):
    """``(value, cache)`` of a fresh forward (``cache`` None unless it returned ``Cached``)."""
    out = op.forward(*inputs)
    if isinstance(out, Cached):
        return np.asarray(out.value), out.cache
    return (out if isinstance(out, np.ndarray) else np.asarray(out)), None


def _vjp_results(op, inputs, g, declared_only, create_graph):
    """Gradients from each of ``op``'s rules after a fresh forward: the generic rule, and for first
    order also the fast array rule without and with the forward's cache (``Cached``), with every value
    the op does not declare in ``saves`` replaced by a ``Released`` placeholder when ``declared_only``."""
    def values_of(out):
        values = [out, *inputs]
        if declared_only:
            kept = {0} if op._saves_out else set()
            kept |= set(range(1, len(values))) if op._saved_inputs is None else {1 + k for k in op._saved_inputs}
            values = [v if k in kept else Released(v.shape, v.dtype, op.name) for k, v in enumerate(values)]
        return values

    out, _ = _forward(op, inputs)
    values = values_of(out)
    if create_graph:
        with tg.enable_grad():
            grads = op.vjp(TENSOR_VJP, tg.Tensor._wrap(g), *[tg.Tensor._wrap(v) for v in values])
        return [[None if r is None else r.data for r in grads]]
    results = [[None if r is None else materialize(r) for r in op.vjp(NUMPY_VJP, g, *values)]]
    if op.vjp_arrays is not None:
        results.append([None if r is None else materialize(r) for r in op.vjp_arrays(g, *values)])
        out, cache = _forward(op, inputs)
        if cache is not None:
            grads = op.vjp_arrays(g, *values_of(out), cache=cache)
            results.append([None if r is None else materialize(r) for r in grads])
    return results


@pytest.mark.parametrize("create_graph", [False, True], ids=["arrays", "create_graph"])
@pytest.mark.parametrize("name", DIFFERENTIABLE)
@given(data=st.data())
def test_vjp_needs_only_the_values_it_declares(name, create_graph, data):
    """Each op's ``saves`` is sufficient: its rule, given placeholders for every value it does not
    declare, returns exactly the gradients it returns given all of them (so the engine may release
    the rest). ``Released`` raises on any use other than shape and dtype, so a rule that reads an
    undeclared value fails here by name."""
    op, inputs = data.draw(op_samples(OPS[name]), label="op, inputs")
    out, _ = _forward(op, inputs)
    g = np.random.default_rng(0).standard_normal(out.shape).astype(out.dtype)
    everything = _vjp_results(op, inputs, g, declared_only=False, create_graph=create_graph)
    declared = _vjp_results(op, inputs, g, declared_only=True, create_graph=create_graph)
    for call_all, call_declared in zip(everything, declared):
        for k, (a, b) in enumerate(zip(call_all, call_declared)):
            assert (a is None) == (b is None), k
            if a is not None:
                np.testing.assert_array_equal(a, b, err_msg=f"gradient {k}")


def test_every_registered_op_declares_what_its_rule_reads():
    assert sorted(name for name, cls in OPS.items() if cls.saves is None) == []


# Rules that only use shapes and dtypes (or, for non-differentiable ops, do not exist) read no value;
# a declaration of "everything" would be correct for them but keep every intermediate alive.
READS_NO_VALUE = ["add", "sub", "neg", "sum", "reshape", "transpose", "broadcast_to", "getitem",
                  "index_add", "concat", "stack", "astype", *NON_DIFFERENTIABLE]
READS_ONLY_ITS_OUTPUT = ["exp", "tanh", "sigmoid", "sqrt", "relu"]


def test_declarations_are_not_everything_where_a_rule_needs_little():
    assert {n: OPS[n].saves for n in READS_NO_VALUE if OPS[n].saves != ()} == {}
    assert {n: OPS[n].saves for n in READS_ONLY_ITS_OUTPUT if OPS[n].saves != ("out",)} == {}
    assert OPS["mul"].saves == ("x", "y") and OPS["affine"].saves == ("x", "w")


def test_a_declaration_naming_no_vjp_parameter_is_refused_at_class_creation():
    with pytest.raises(ValueError, match=r"op 'scaled'.*'z'.*vjp\(self, B, g, out, x\)"):
        class Scaled(tg.ops.Op, register=False):
            name = "scaled"
            saves = ("out", "z")
            def vjp(self, B, g, out, x): return (2 * g,)
    with pytest.raises(TypeError, match=r"op 'scaled'.*tuple of vjp parameter names.*'out'"):
        class Scaled2(tg.ops.Op, register=False):
            name = "scaled"
            saves = ("out")
            def vjp(self, B, g, out, x): return (g * out,)


def test_an_op_that_declares_nothing_saves_everything():
    class Opaque(tg.ops.Op, register=False):
        name = "opaque"
        def forward(self, x, y): return x * y
        def vjp(self, B, g, out, x, y): return g * y, g * x

    class Variadic(tg.ops.Op, register=False):
        name = "variadic"
        saves = ("xs",)
        def vjp(self, B, g, out, *xs): return tuple(g for _ in xs)
    assert (Opaque._saves_out, Opaque._saved_inputs) == (True, None)
    assert (Variadic._saves_out, Variadic._saved_inputs) == (False, None)  # *xs: every input


def _index_add_reference(op, g):
    out = np.zeros(op.shape, g.dtype)
    np.add.at(out, op.index, g)
    return out


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def _logsumexp(a):
    return np.log(np.exp(a).sum(axis=-1))


def _cross_entropy_reference(op, logits):
    losses = _logsumexp(logits) - logits[np.arange(len(logits)), op.targets]
    return {"none": losses, "sum": losses.sum(), "mean": losses.mean()}[op.reduction]


def _linear_cross_entropy_reference(op, x, w, b):
    logits = (x @ w.T + b).reshape(-1, len(w))
    losses = _logsumexp(logits) - logits[np.arange(len(logits)), op.targets]
    return {"none": losses.reshape(x.shape[:-1]), "sum": losses.sum(), "mean": losses.mean()}[op.reduction]


def _lstm_reference(op, p, h, c, w_hh, *b_hh):
    """PyTorch's LSTM equations (b_hh optional); the op returns [h' | c' | i f g o]."""
    i, f, g, o = np.split(p + h @ w_hh.T + sum(b_hh), 4, axis=-1)
    i, f, g, o = _sigmoid(i), _sigmoid(f), np.tanh(g), _sigmoid(o)
    c_new = f * c + i * g
    return np.concatenate([o * np.tanh(c_new), c_new, i, f, g, o], axis=-1)


def _gru_reference(op, p, h, w_hh, b_hh):
    """PyTorch's GRU equations; the op returns [h' | r z n | h W_hn.T + b_hn]."""
    p_r, p_z, p_n = np.split(p, 3, axis=-1)
    h_r, h_z, h_n = np.split(h @ w_hh.T + b_hh, 3, axis=-1)
    r, z = _sigmoid(p_r + h_r), _sigmoid(p_z + h_z)
    n = np.tanh(p_n + r * h_n)
    return np.concatenate([(1 - z) * n + z * h, r, z, n, h_n], axis=-1)


ACTIVATIONS = {"tanh": np.tanh, "relu": lambda a: np.maximum(a, 0), "sigmoid": _sigmoid}


# What each op computes, written independently of its forward (where the forward is a one-liner the
# reference is the documented numpy meaning, which still checks dispatch, shape and dtype).
NUMPY_REFERENCE = {
    "neg": lambda op, x: -x,
    "exp": lambda op, x: np.exp(x),
    "log": lambda op, x: np.log(x),
    "tanh": lambda op, x: np.tanh(x),
    "sigmoid": lambda op, x: 1 / (1 + np.exp(-x)),
    "relu": lambda op, x: np.where(x > 0, x, 0),
    "sqrt": lambda op, x: x ** 0.5,
    "abs": lambda op, x: np.where(x < 0, -x, x),
    "sign": lambda op, x: np.sign(x),
    "pow_const": lambda op, x: np.power(x, op.exponent),
    "add": lambda op, x, y: np.add(x, y),
    "sub": lambda op, x, y: np.subtract(x, y),
    "mul": lambda op, x, y: np.multiply(x, y),
    "div": lambda op, x, y: np.divide(x, y),
    "pow": lambda op, x, y: np.exp(y * np.log(x)),
    "maximum": lambda op, x, y: np.where(x > y, x, y),
    "lt": lambda op, x, y: np.less(x, y),
    "le": lambda op, x, y: np.less_equal(x, y),
    "gt": lambda op, x, y: np.greater(x, y),
    "ge": lambda op, x, y: np.greater_equal(x, y),
    "eq": lambda op, x, y: np.equal(x, y),
    "ne": lambda op, x, y: np.not_equal(x, y),
    "where": lambda op, c, x, y: np.where(c, x, y),
    "matmul": lambda op, x, y: np.matmul(x, y),
    "sum": lambda op, x: np.sum(x, axis=op.axis, keepdims=op.keepdims),
    "max": lambda op, x: np.amax(x, axis=op.axis, keepdims=op.keepdims),
    "reshape": lambda op, x: np.reshape(x, op.shape),
    "transpose": lambda op, x: np.transpose(x, op.axes),
    "broadcast_to": lambda op, x: np.broadcast_to(x, op.shape),
    "getitem": lambda op, x: x[op.index],
    "index_add": _index_add_reference,
    "concat": lambda op, *xs: np.concatenate(xs, axis=op.axis),
    "astype": lambda op, x: x.astype(op.dtype),
    "stack": lambda op, *xs: np.stack(xs, axis=op.axis),
    "affine": lambda op, x, w, *b: x @ w.T + sum(b),
    "rnn_cell": lambda op, p, h, w_hh, *b_hh: ACTIVATIONS[op.nonlinearity](p + h @ w_hh.T + sum(b_hh)),
    "lstm_cell": _lstm_reference,
    "gru_cell": _gru_reference,
    "cross_entropy": _cross_entropy_reference,
    "linear_cross_entropy": _linear_cross_entropy_reference,
}


def test_reference_table_names_registered_ops():
    assert set(NUMPY_REFERENCE) <= set(OPS)


@pytest.mark.parametrize("name", sorted(set(NUMPY_REFERENCE) & set(OPS)))
@given(data=st.data())
def test_forward_matches_numpy_reference(name, data):
    op, inputs = data.draw(op_samples(OPS[name]), label="op, inputs")
    expected = NUMPY_REFERENCE[name](op, *inputs)
    out = apply(op, *leaves(inputs))
    assert out.shape == expected.shape and out.dtype == expected.dtype
    np.testing.assert_allclose(out.data, expected, rtol=1e-10, atol=1e-12)


# --- composite functions: built from primitives, checked end to end --------------------------------------
batch = st.shared(st.integers(1, 4), key="batch")
classes = st.shared(st.integers(1, 5), key="classes")
logits = st.tuples(batch, classes).flatmap(lambda bc: arrays(bc))
targets = st.tuples(batch, classes).flatmap(lambda bc: arrays((bc[0],), np.int64, 0, bc[1] - 1))
same_shape = st.shared(shapes(), key="same_shape")
pair = st.shared(broadcastable_pairs(2), key="pair")
at_least_1d = arrays(shapes(min_dims=1))


def _split_and_weight(x):
    """Each half of axis -1 scaled differently, so a gradient routed to the wrong part shows."""
    first, second = tg.split(x, 2, axis=-1)
    return tg.concat([first * 2.0, second * -3.0], axis=-1)


COMPOSITES = {
    "softmax": (lambda x: tg.softmax(x, axis=-1), [at_least_1d]),
    "softmax axis 0": (lambda x: tg.softmax(x, axis=0), [at_least_1d]),
    "log_softmax": (lambda x: tg.log_softmax(x, axis=-1), [at_least_1d]),
    "logsumexp": (lambda x: tg.logsumexp(x, axis=-1), [at_least_1d]),
    "logsumexp keepdims": (lambda x: tg.logsumexp(x, axis=0, keepdims=True), [at_least_1d]),
    "logsumexp huge": (lambda x: tg.logsumexp(x, axis=-1), [arrays(shapes(min_dims=1), low=-1000, high=1000)]),
    "cross_entropy mean": (lambda z, t: tg.cross_entropy(z, t), [logits, targets]),
    "cross_entropy sum": (lambda z, t: tg.cross_entropy(z, t, reduction="sum"), [logits, targets]),
    "cross_entropy none": (lambda z, t: tg.cross_entropy(z, t, reduction="none"), [logits, targets]),
    "mse_loss": (lambda p, t: tg.mse_loss(p, t), [arrays(same_shape), arrays(same_shape)]),
    "mse_loss sum": (lambda p, t: tg.mse_loss(p, t, reduction="sum"), [arrays(same_shape), arrays(same_shape)]),
    "embedding repeated rows": (lambda w: tg.embedding(w, np.array([[0, 2, 2], [1, 0, 2]])), [arrays((3, 4))]),
    "stack": (lambda a, b: tg.stack([a, b], axis=-1), [arrays(same_shape), arrays(same_shape)]),
    "split": (_split_and_weight, [arrays(shapes(min_dims=1).map(lambda s: s[:-1] + (2 * s[-1],)))]),
    "clip": (lambda x: tg.clip(x, -1.0, 2.0), [arrays(shapes(), away_from=(-1.0, 2.0))]),
    "mean": (lambda x: tg.mean(x), [arrays(shapes())]),
    "mean axis keepdims": (lambda x: tg.mean(x, axis=-1, keepdims=True), [at_least_1d]),
    "swapaxes": (lambda x: tg.swapaxes(x, 0, -1), [arrays(shapes(min_dims=2))]),
    "maximum with a number": (lambda x: tg.maximum(x, 0.5), [arrays(shapes(), away_from=(0.5,))]),
    "broadcast arithmetic": (lambda x, y: (x * y - y / (1 + x * x)) ** 2,
                             [arrays(pair.map(lambda p: p[0])), arrays(pair.map(lambda p: p[1]))]),
}


@pytest.mark.parametrize("name", sorted(COMPOSITES))
def test_composite_gradients(name):
    fn, inputs = COMPOSITES[name]
    check_grads(fn, *inputs, second_order=True)


def test_logsumexp_of_huge_values_does_not_overflow():
    x = tg.tensor([[1000.0, 1000.0], [-1000.0, -1000.0]], requires_grad=True)
    with np.errstate(all="raise"):
        out = tg.logsumexp(x, axis=-1)
        out.sum().backward()
    np.testing.assert_allclose(out.data, [1000 + np.log(2), -1000 + np.log(2)])
    np.testing.assert_allclose(x.grad, np.full((2, 2), 0.5))
    np.testing.assert_allclose(tg.softmax(tg.tensor([1000.0, 0.0])).data, [1.0, 0.0])


def test_astype_to_float32_casts_the_gradient_back():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x.astype(np.float32)
    (y * y).sum().backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float64
    np.testing.assert_allclose(x.grad, [2.0, 4.0])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(z=logits, t=targets)
def test_cross_entropy_matches_torch(reduction, z, t):
    torch = pytest.importorskip("torch", reason="cross-check against PyTorch needs torch")
    zt = torch.tensor(z, requires_grad=True)
    expected = torch.nn.functional.cross_entropy(zt, torch.tensor(t), reduction=reduction)
    expected.sum().backward()
    x = tg.tensor(z, requires_grad=True)
    out = tg.cross_entropy(x, t, reduction=reduction)
    out.sum().backward()
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x.grad, zt.grad.numpy(), rtol=1e-10, atol=1e-12)
