"""Forward mode (tinygraph.forward): every registered op's jvp, its own or the one derived from its vjp,
property-tested over its sample family like tests/test_ops.py does for gradients; then the transforms
(jvp, vjp, jacfwd, jacrev, hessian, hvp, linearize), nesting, and the errors bad input raises.
"""
import gc
import weakref

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygraph as tg
from rnn_models import LSTMCell
from tinygraph import release
from tinygraph.forward import derived_jvp, dual_level, make_dual, unpack_dual
from tinygraph.ops import NUMPY_VJP, OPS, TENSOR_VJP, Op, apply
from tinygraph.ops.base import Cached
from tinygraph.ops.lazy import materialize
from tinygraph.testing import arrays, op_samples

DIFFERENTIABLE = sorted(name for name, cls in OPS.items() if cls.differentiable)
NON_DIFFERENTIABLE = sorted(name for name, cls in OPS.items() if not cls.differentiable)
OWN_RULES = sorted(name for name in DIFFERENTIABLE if OPS[name].jvp is not Op.jvp)
# the checks that differentiate a recorded tangent numerically draw a fifth of the profile's examples
# (each costs a gradcheck of a graph-building rule; all of them 25 s at the full count)
FIFTH = settings(max_examples=max(1, settings().max_examples // 5))


def run_op(op):
    return lambda *tensors: apply(op, *tensors)


def _draw_case(data, name, dtype=np.float64):
    """(op, inputs, tangents): one tangent per float input, some None (at least one is not), drawn
    from the inputs' own family so it has the input's shape and dtype."""
    op, inputs = data.draw(op_samples(OPS[name], dtype), label="op, inputs")
    floats = [k for k, a in enumerate(inputs) if a.dtype.kind == "f"]
    carries = data.draw(st.lists(st.booleans(), min_size=len(floats), max_size=len(floats))
                        .filter(any), label="which inputs carry a tangent")
    tangents = [None] * len(inputs)
    for k, c in zip(floats, carries):
        if c:
            tangents[k] = data.draw(arrays(inputs[k].shape, dtype), label=f"tangent {k}")
    return op, inputs, tangents


def engine_tangent(op, inputs, tangents, record=False):
    """The tangent ``apply`` gives ``op``'s output (an ndarray, zeros if none) and the output.
    ``record``: inputs require grad and grad is on, so the rule runs in TENSOR_VJP."""
    with dual_level():
        leaves = []
        for a, v in zip(inputs, tangents):
            t = tg.Tensor(a, requires_grad=record and a.dtype.kind == "f")
            leaves.append(t if v is None else make_dual(t, v))
        out = apply(op, *leaves)
        tangent = unpack_dual(out)[1]
    assert out.requires_grad == (record and op.differentiable)
    return (np.zeros(out.shape, out.dtype) if tangent is None else tangent.data), out


# --- the registry-driven properties -----------------------------------------------------------------
@pytest.mark.parametrize("name", DIFFERENTIABLE)
@given(data=st.data())
def test_jvp_matches_central_differences_and_the_transposed_vjp(name, data):
    """In float64, with some inputs carrying no tangent: J v against central differences (gradcheck's
    "fwd" mode), <u, J v> == <J^T u, v> against the op's vjp, and the rule run on recorded Tensors
    (TENSOR_VJP, what reverse over forward uses) equal to the rule on arrays."""
    op, inputs, tangents = _draw_case(data, name)
    checked = [tg.Tensor(a, requires_grad=v is not None) for a, v in zip(inputs, tangents)]
    assert tg.gradcheck(run_op(op), checked, modes=("fwd",), directions=1)

    jv, out = engine_tangent(op, inputs, tangents)
    assert jv.shape == out.shape and jv.dtype == out.dtype
    u = np.random.default_rng(1).standard_normal(out.shape)
    transposed = op.vjp(NUMPY_VJP, u, out.data, *inputs)
    rhs = sum(float(np.sum(materialize(g) * v)) for g, v in zip(transposed, tangents)
              if g is not None and v is not None)
    np.testing.assert_allclose(float(np.sum(u * jv)), rhs, rtol=1e-9, atol=1e-9)

    recorded, _ = engine_tangent(op, inputs, tangents, record=True)
    np.testing.assert_allclose(recorded, jv, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", DIFFERENTIABLE)
@FIFTH
@given(data=st.data())
def test_float32_tangents_stay_float32(name, data):
    op, inputs, tangents = _draw_case(data, name, np.float32)
    for record in (False, True):
        jv, out = engine_tangent(op, inputs, tangents, record)
        assert jv.dtype == out.dtype and jv.shape == out.shape, (record, jv.dtype, out.dtype)
        assert out.dtype == np.float32 or name == "astype"


@pytest.mark.parametrize("name", OWN_RULES)
@given(data=st.data())
def test_an_ops_own_jvp_equals_the_one_derived_from_its_vjp(name, data):
    """Where an op writes its own rule, ``Op.jvp`` (derived from vjp) computes the same, in both
    namespaces: the derived default is the reference every hand-written rule is checked against."""
    op, inputs, tangents = _draw_case(data, name)
    raw = op.forward(*inputs)
    out = np.asarray(raw.value if isinstance(raw, Cached) else raw)
    def dense(t):  # None: the rule says the tangent is zero
        return np.zeros(out.shape, out.dtype) if t is None else np.broadcast_to(np.asarray(t), out.shape)
    own = op.jvp(NUMPY_VJP, tangents, out, *inputs)
    derived = derived_jvp(op, NUMPY_VJP, tangents, out, inputs)
    np.testing.assert_allclose(dense(own), dense(derived), rtol=1e-10, atol=1e-12)
    wrap = [tg.Tensor(a) for a in inputs]
    vs = [None if v is None else tg.Tensor(v) for v in tangents]
    own_t = op.jvp(TENSOR_VJP, vs, tg.Tensor(out), *wrap)
    derived_t = derived_jvp(op, TENSOR_VJP, vs, tg.Tensor(out), wrap)
    np.testing.assert_allclose(dense(None if own_t is None else own_t.data),
                               dense(None if derived_t is None else derived_t.data),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", DIFFERENTIABLE)
@FIFTH
@given(data=st.data())
def test_reverse_over_forward_gradient_of_the_tangent(name, data):
    """The tangent computed on recorded Tensors is differentiable in the primal inputs: its gradient
    (a random projection of J(x) v, checked by gradcheck) matches central differences."""
    op, inputs, tangents = _draw_case(data, name)

    def tangent_of(*xs):
        with dual_level():
            duals = [x if v is None else make_dual(x, v) for x, v in zip(xs, tangents)]
            t = unpack_dual(apply(op, *duals))[1]
        return t if t is not None else xs[0] * 0.0
    checked = [tg.Tensor(a, requires_grad=a.dtype.kind == "f") for a in inputs]
    assert tg.gradcheck(tangent_of, checked)


@pytest.mark.parametrize("name", NON_DIFFERENTIABLE)
@given(data=st.data())
def test_non_differentiable_ops_give_no_tangent(name, data):
    op, inputs = data.draw(op_samples(OPS[name]), label="op, inputs")
    with dual_level():
        duals = [make_dual(a, np.ones_like(a)) if a.dtype.kind == "f" else tg.Tensor(a) for a in inputs]
        assert unpack_dual(apply(op, *duals))[1] is None


def test_the_fused_and_head_ops_have_their_own_rules():
    assert {"affine", "rnn_cell", "lstm_cell", "gru_cell", "cross_entropy",
            "linear_cross_entropy"} <= set(OWN_RULES)


# --- Jacobians both ways, Hessians ---------------------------------------------------------------------
class Softplus(Op, register=False):
    """A user's op with a vjp and no jvp: it gets the derived one."""
    name = "softplus"
    saves = ("x",)
    def forward(self, x): return np.logaddexp(0, x)
    def vjp(self, B, g, out, x): return (g * (0.5 + 0.5 * B.tanh(0.5 * x)),)  # g * sigmoid(x)


def softplus(x):
    return apply(Softplus(), x)


def _lstm_unrolled(fused):
    cell = LSTMCell(3, 2, rng=np.random.default_rng(0), fused=fused)

    def run(xs, h, c):
        for t in range(xs.shape[0]):
            h, c = cell(xs[t], (h, c))
        return h, c
    return run


RNG = np.random.default_rng(7)


def normal(*shape):
    return RNG.normal(size=shape)


FUNCTIONS = {
    # name: (fn, args, argnums)
    "elementwise": (lambda x: tg.tanh(x) * tg.exp(-x * x) + tg.sqrt(x * x + 1.0), [normal(2, 3)], 0),
    "matmul and softmax": (lambda x, w: tg.log_softmax(x @ w, axis=-1), [normal(2, 3), normal(3, 4)], (0, 1)),
    "reductions and indexing": (lambda x: tg.max(x[:, 1:], axis=1) + x.sum(axis=0)[np.array([0, 0, 2])],
                                [normal(3, 3)], 0),
    "cross entropy": (lambda z: tg.cross_entropy(z, np.array([0, 2])), [normal(2, 3)], 0),
    "user op": (lambda x, y: softplus(x * y) / (1.0 + y * y), [normal(3), normal(3)], (0, 1)),
    "lstm fused, 3 steps": (_lstm_unrolled(True), [normal(3, 2, 3), normal(2, 2), normal(2, 2)], (0, 1, 2)),
    "lstm from gates, 2 steps": (_lstm_unrolled(False), [normal(2, 1, 3), normal(1, 2), normal(1, 2)],
                                 (0, 1, 2)),
}


def _flat(jac):
    """Every block of a (possibly nested) Jacobian as arrays."""
    if isinstance(jac, tuple):
        return [a for part in jac for a in _flat(part)]
    return [jac.data]


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_jacfwd_equals_jacrev(name):
    fn, args, argnums = FUNCTIONS[name]
    forward, reverse = tg.jacfwd(fn, argnums)(*args), tg.jacrev(fn, argnums)(*args)
    out = fn(*[tg.Tensor(a) for a in args])
    outs = out if isinstance(out, tuple) else (out,)
    nums = argnums if isinstance(argnums, tuple) else (argnums,)
    expected_shapes = [o.shape + args[i].shape for o in outs for i in nums]
    assert [a.shape for a in _flat(forward)] == expected_shapes
    for a, b in zip(_flat(forward), _flat(reverse)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def _numerical_jacobian(fn, x, eps=1e-6):
    """d fn / d x by central differences: shape fn(x).shape + x.shape."""
    x = np.array(x, dtype=np.float64)
    columns = []
    for k in range(x.size):
        step = np.zeros(x.size)
        step[k] = eps
        columns.append((fn(x + step.reshape(x.shape)) - fn(x - step.reshape(x.shape))) / (2 * eps))
    return np.stack(columns, axis=-1).reshape(np.shape(fn(x)) + x.shape)


SCALARS = {
    "quartic": lambda x: (x * x * x * x).sum() + (x[0] * x[1]) * tg.tanh(x[2]),
    "log-sum-exp of a product": lambda x: tg.logsumexp(x * x[::-1], axis=-1),
    "user op": lambda x: softplus(x * 2.0).sum() * tg.exp(x[0]),
    # one step: the backward's math ops still use the derived jvp, 64000 applies per tangent at two
    "lstm loss": lambda x: _lstm_unrolled(True)(x.reshape((1, 1, 3)), tg.Tensor(np.full((1, 2), 0.1)),
                                                tg.Tensor(np.full((1, 2), -0.2)))[0].sum(),
}


@pytest.mark.parametrize("name", sorted(SCALARS))
def test_hessian_matches_central_differences_of_the_gradient_and_hvp_is_hessian_times_v(name):
    fn = SCALARS[name]
    x = np.random.default_rng(3).uniform(-1, 1, size=3)
    H = tg.hessian(fn)(x).data
    assert H.shape == x.shape + x.shape
    gradient = tg.grad(fn)
    numeric = _numerical_jacobian(lambda a: gradient(a).data, x)
    np.testing.assert_allclose(H, numeric, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(H, H.T, rtol=1e-10, atol=1e-12)
    v = np.random.default_rng(4).standard_normal(x.shape)
    np.testing.assert_allclose(tg.hvp(fn, (x,), (v,)).data, H @ v, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(tg.jacrev(tg.jacrev(fn))(x).data, H, rtol=1e-10, atol=1e-12)


# --- the transforms' semantics ----------------------------------------------------------------------
def test_jvp_returns_the_output_and_its_tangent_for_tuple_outputs_and_several_primals():
    x, y = np.array([0.5, -1.0]), np.array([2.0, 3.0])
    vx, vy = np.array([1.0, 0.0]), np.array([0.5, -1.0])
    (s, p), (ts, tp) = tg.jvp(lambda a, b: (a + b, a * b), (x, y), (vx, vy))
    np.testing.assert_allclose(s.data, x + y)
    np.testing.assert_allclose(ts.data, vx + vy)
    np.testing.assert_allclose(tp.data, vx * y + x * vy)
    out, t = tg.jvp(lambda a: a * 0.0 + 1.0, (x,), (vx,))  # a constant output: a zero tangent
    np.testing.assert_array_equal(t.data, 0.0)
    _, t = tg.jvp(lambda a: tg.tensor(3.0), (x,), (vx,))  # independent of the primal: zeros
    assert t.shape == () and t.item() == 0.0


def test_primals_may_be_numbers_arrays_or_tensors_and_a_tensor_keeps_its_graph():
    out, t = tg.jvp(lambda a: a * a, (3.0,), (1.0,))
    assert out.item() == 9.0 and t.item() == 6.0
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    out, t = tg.jvp(lambda a: (a * a).sum(), (x,), (np.array([1.0, 1.0]),))
    out.backward(retain_graph=True)  # the tangent's graph shares the dual's node with out's
    np.testing.assert_allclose(x.grad, [2.0, 4.0])
    assert t.requires_grad  # J v = 2 x . v, differentiable in x (reverse over forward)
    (g,) = tg.grad_of(t, x)
    np.testing.assert_allclose(g.data, [2.0, 2.0])


def test_vjp_returns_one_gradient_per_primal_and_can_be_called_again():
    out, pullback = tg.vjp(lambda a, b: a * b + b, np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    for _ in range(2):
        ga, gb = pullback(np.array([1.0, -1.0]))
        np.testing.assert_allclose(ga.data, [3.0, -4.0])
        np.testing.assert_allclose(gb.data, [2.0, -3.0])
    (g,), = [tg.vjp(lambda a: tg.tensor(1.0), np.ones(2))[1](np.array(1.0))]  # unused: zeros
    np.testing.assert_array_equal(g.data, [0.0, 0.0])


def test_vjp_of_vjp_and_grad_of_keep_a_tensor_cotangent_in_the_graph():
    x = tg.tensor([0.5, -2.0], requires_grad=True)
    v = tg.tensor([3.0, 1.0], requires_grad=True)
    (g,) = tg.grad_of(x * x, x, grad_outputs=v, create_graph=True)   # 2 x v
    np.testing.assert_allclose(g.data, [3.0, -4.0])
    gx, gv = tg.grad_of(g.sum(), [x, v])
    np.testing.assert_allclose(gx.data, 2 * v.data)
    np.testing.assert_allclose(gv.data, 2 * x.data)                   # was zeros: v's graph dropped

    _, pullback = tg.vjp(tg.sin, np.array([0.3, 0.7]))

    def transpose_of_pullback(u):
        return pullback(u)[0]
    _, pullback_of_pullback = tg.vjp(transpose_of_pullback, np.array([1.0, 1.0]))
    (w,) = pullback_of_pullback(np.array([1.0, 2.0]))                # (J^T)^T w = J w
    np.testing.assert_allclose(w.data, np.cos([0.3, 0.7]) * [1.0, 2.0])


def test_linearize_gives_the_same_tangents_as_jvp():
    fn = lambda a: tg.tanh(a) * a  # noqa: E731
    x = np.array([0.2, -0.4])
    out, f_jvp = tg.linearize(fn, x)
    np.testing.assert_allclose(out.data, np.tanh(x) * x)
    for v in (np.array([1.0, 0.0]), np.array([0.3, 2.0])):
        np.testing.assert_allclose(f_jvp(v).data, tg.jvp(fn, (x,), (v,))[1].data)


def test_nested_jvp_gives_the_second_derivative_and_does_not_confuse_perturbations():
    x = np.array([0.3, -0.8])
    ones = np.ones_like(x)

    def derivative(f):
        return lambda a: tg.jvp(f, (a,), (ones,))[1]
    f = lambda a: tg.exp(a) * a * a  # noqa: E731
    np.testing.assert_allclose(derivative(derivative(f))(x).data, np.exp(x) * (x * x + 4 * x + 2))
    with tg.no_grad():  # three levels, the inner two on unrecorded Tensors
        np.testing.assert_allclose(derivative(derivative(derivative(f)))(x).data,
                                   np.exp(x) * (x * x + 6 * x + 6))
    g = lambda a: (tg.tanh(a) * a[::-1]).sum()  # noqa: E731
    np.testing.assert_allclose(tg.jacfwd(tg.jacfwd(g))(x).data, tg.hessian(g)(x).data, rtol=1e-12)
    # d/dx [x * d/dy (x * y)] = d/dx [x * x] = 2 x: a confused perturbation gives x or 3 x
    y = np.array([5.0, 7.0])
    _, t = tg.jvp(lambda a: a * tg.jvp(lambda b: a * b, (y,), (ones,))[1], (x,), (ones,))
    np.testing.assert_allclose(t.data, 2 * x)


def test_reverse_over_forward_and_forward_over_reverse_agree():
    fn = lambda a: (tg.tanh(a) * a[::-1]).sum()  # noqa: E731
    x, v = np.array([0.1, 0.5, -0.3]), np.array([1.0, -2.0, 0.5])
    reverse_of_forward = tg.grad(lambda a: tg.jvp(fn, (a,), (v,))[1])(x)
    np.testing.assert_allclose(reverse_of_forward.data, tg.hvp(fn, (x,), (v,)).data, rtol=1e-12)
    # the tangent is linear in v: its gradient in v is J^T w, what vjp gives
    g = lambda a: tg.tanh(a) * a[::-1]  # noqa: E731
    w = np.array([0.5, 1.0, -1.0])
    transposed = tg.grad(lambda t: (tg.jvp(g, (x,), (t,))[1] * w).sum())(v)
    np.testing.assert_allclose(transposed.data, tg.vjp(g, x)[1](w)[0].data, rtol=1e-12)


def test_gradient_transforms_inside_a_dual_level_give_tangents():
    """grad (value_and_grad) and grad_of build their backward from ops while a level is visible."""
    x, v = np.array([0.4, -0.2]), np.array([1.0, 3.0])
    fn = lambda a: (a * a * a).sum()  # noqa: E731
    _, t = tg.jvp(tg.grad(fn), (x,), (v,))
    np.testing.assert_allclose(t.data, 6 * x * v)
    with dual_level():
        d = make_dual(tg.tensor(x, requires_grad=True), v)
        (g,) = tg.grad_of(fn(d), d)
        np.testing.assert_allclose(unpack_dual(g)[1].data, 6 * x * v)


def test_a_closed_levels_tangents_are_ignored_and_tensors_without_one_carry_none():
    with dual_level():
        d = make_dual(np.array([1.0, 2.0]), np.array([1.0, 1.0]))
        assert unpack_dual(d * 2.0)[1] is not None
        assert unpack_dual(tg.tensor([1.0]) * 2.0)[1] is None
    with dual_level():
        assert unpack_dual(d * 2.0)[1] is None
    assert tg.ops.base.tangent_hook is None  # apply pays one global read again


def test_non_differentiable_results_and_integer_outputs_carry_no_tangent():
    with dual_level():
        d = make_dual(np.array([1.0, -2.0]), np.array([1.0, 1.0]))
        assert unpack_dual(d > 0)[1] is None
        assert unpack_dual(d.astype(np.int64))[1] is None
        t = unpack_dual(tg.where(d > 0, d, 0.0))[1]
        np.testing.assert_array_equal(t.data, [1.0, 0.0])


def test_forward_mode_under_no_grad_keeps_no_graph_and_memory_constant_in_length():
    """RTRL's use: dh_t/dw carried forward over a loop; no step keeps the previous one alive."""
    w = np.array([[0.5, -0.3], [0.2, 0.4]])
    v = np.array([[1.0, 0.0], [0.0, 0.0]])
    with tg.no_grad(), dual_level():
        W = make_dual(w, v)
        h = tg.tensor([0.1, -0.2])
        first = weakref.ref(h)
        pending = len(release.PENDING)
        for _ in range(300):
            h = tg.tanh(W @ h + 0.1)
            assert h.op is None and h.inputs == ()
        tangent = unpack_dual(h)[1].data
        gc.collect()
        assert first() is None and len(release.PENDING) == pending
    eps = 1e-6
    ends = []
    for sign in (1, -1):
        a = np.array([0.1, -0.2])
        for _ in range(300):
            a = np.tanh((w + sign * eps * v) @ a + 0.1)
        ends.append(a)
    np.testing.assert_allclose(tangent, (ends[0] - ends[1]) / (2 * eps), rtol=1e-6, atol=1e-9)


class ScaledCopy(Op, register=False):
    """saves=(): the engine may release its input; the jvp reads that input (x), not declared."""
    name = "scaled_copy"
    saves = ()
    def forward(self, x): return 3.0 * x
    def vjp(self, B, g, out, x): return (3.0 * g,)
    def jvp(self, B, tangents, out, x): return tangents[0] * (x * 0.0 + 3.0)


def test_a_jvp_rule_may_read_a_value_the_engine_releases(monkeypatch):
    """Tangents are computed inside apply before it sweeps (tinygraph.release): with every value
    releasable and a sweep at every op, a rule reading an input its vjp does not declare still sees
    it, and the values the reverse pass reads are still there."""
    monkeypatch.setattr(release, "MIN_BYTES", 0)
    monkeypatch.setattr(release, "FLOOR", 1)
    monkeypatch.setattr(release, "threshold", 1)
    x = tg.tensor([-0.7, -0.1, 0.4, 0.9], requires_grad=True)
    with dual_level():
        d = make_dual(x, np.ones(4))
        y = d
        for _ in range(5):
            release.threshold = 1  # a sweep inside every apply below
            y = apply(ScaledCopy(), tg.tanh(y) * 1.0)
        out = (y * y).sum()
        tangent = unpack_dual(out)[1].data

    def reference(a):
        for _ in range(5):
            a = 3.0 * np.tanh(a)
        return (a * a).sum()
    eps = 1e-6
    a = x.data
    np.testing.assert_allclose(tangent, (reference(a + eps) - reference(a - eps)) / (2 * eps), rtol=1e-6)
    out.backward()  # the graph is intact for reverse mode too
    assert x.grad is not None


def test_gradcheck_fwd_mode_catches_a_wrong_jvp_rule():
    class Wrong(Op, register=False):
        name = "wrong"
        saves = ("x",)
        def forward(self, x): return np.sin(x)
        def vjp(self, B, g, out, x): return (g * np.cos(x),)
        def jvp(self, B, tangents, out, x): return tangents[0] * np.cos(x) * 1.01
    x = np.array([0.3, 1.0])
    assert tg.gradcheck(lambda a: apply(Wrong(), a), [x], modes=("rev",))
    with pytest.raises(tg.GradcheckError, match="forward-mode J v"):
        tg.gradcheck(lambda a: apply(Wrong(), a), [x], modes=("rev", "fwd"))


# --- bad input: tinygraph errors naming the function, the argument and what is allowed -----------------
def test_a_tangent_of_the_wrong_shape_names_both_shapes():
    with pytest.raises(tg.ShapeError, match=r"jvp: tangents\[0\] has shape \(3,\) but its primal has "
                                            r"shape \(2,\); a tangent has its primal's shape"):
        tg.jvp(lambda a: a, (np.zeros(2),), (np.zeros(3),))
    with pytest.raises(tg.ShapeError, match=r"hvp: tangents\[0\] has shape"):
        tg.hvp(lambda a: a.sum(), (np.zeros(2),), (np.zeros((2, 1)),))
    with pytest.raises(tg.ShapeError, match=r"vjp_fn: cotangent 0 has shape \(2, 2\) but its output has "
                                            r"shape \(2,\)"):
        tg.vjp(lambda a: a * 2.0, np.zeros(2))[1](np.zeros((2, 2)))
    with pytest.raises(tg.ShapeError, match="2 primals but 1 tangents"):
        tg.jvp(lambda a, b: a, (np.zeros(2), np.zeros(2)), (np.zeros(2),))


def test_a_tangent_of_the_wrong_dtype_names_both_dtypes():
    with pytest.raises(tg.DTypeError, match=r"jvp: tangents\[0\] has dtype float64 but its primal has "
                                            r"dtype float32"):
        tg.jvp(lambda a: a, (np.zeros(2, np.float32),), (np.zeros(2),))
    with pytest.raises(tg.DTypeError, match=r"tangents\[0\] has dtype int64"):
        tg.jvp(lambda a: a, (np.zeros(2),), (np.zeros(2, np.int64),))
    with pytest.raises(tg.DTypeError, match=r"jvp: tangents\[0\] is a str"):
        tg.jvp(lambda a: a, (np.zeros(2),), ("x",))
    _, t = tg.jvp(lambda a: a * 2.0, (np.zeros(2, np.float32),), ([1.0, 2.0],))  # a list takes the dtype
    assert t.dtype == np.float32


def test_a_non_float_primal_is_refused_with_the_allowed_dtypes():
    for call in (lambda: tg.jvp(lambda a: a, (np.arange(3),), (np.zeros(3),)),
                 lambda: tg.jvp(lambda a: a, (2,), (1.0,)),
                 lambda: tg.vjp(lambda a: a, np.arange(3)),
                 lambda: tg.jacfwd(lambda a: a)(np.arange(3)),
                 lambda: tg.jacrev(lambda a: a)(np.arange(3)),
                 lambda: tg.hvp(lambda a: a.sum(), (np.arange(3),), (np.zeros(3),))):
        with pytest.raises(tg.DTypeError, match=r"(jvp|vjp|jacfwd|jacrev|hvp): (primals\[0\]|argument 0) "
                                                r"has dtype int64.*float16, float32 or float64"):
            call()


def test_fn_returning_a_non_tensor_is_refused():
    for call, name in ((lambda: tg.jvp(lambda a: a.data, (np.zeros(2),), (np.zeros(2),)), "jvp"),
                       (lambda: tg.vjp(lambda a: 3.0, np.zeros(2)), "vjp"),
                       (lambda: tg.jacfwd(lambda a: [a, "x"])(np.zeros(2)), "jacfwd"),
                       (lambda: tg.linearize(lambda a: None, np.zeros(2)), "linearize")):
        with pytest.raises(tg.GraphError, match=f"{name}: fn .* must return a Tensor or a non-empty tuple "
                                                f"of Tensors, got"):
            call()
    with pytest.raises(tg.GraphError, match="hvp: fn must return a single-element Tensor"):
        tg.hvp(lambda a: a * 2.0, (np.zeros(2),), (np.zeros(2),))


def test_make_dual_needs_an_open_level_and_argnums_must_fit():
    with pytest.raises(tg.GraphError, match="make_dual: no forward-mode level is open"):
        make_dual(np.zeros(2), np.zeros(2))
    with pytest.raises(tg.GraphError, match="unpack_dual: no forward-mode level is open"):
        unpack_dual(tg.tensor(1.0))
    with pytest.raises(tg.ShapeError, match=r"jacrev: argnums 2 does not fit the 1 arguments"):
        tg.jacrev(lambda a: a, argnums=2)(np.zeros(2))


def test_a_jvp_rule_returning_a_wrong_shape_is_named():
    class Bad(Op, register=False):
        name = "bad_rule"
        saves = ()
        def forward(self, x): return x * 2
        def vjp(self, B, g, out, x): return (2 * g,)
        def jvp(self, B, tangents, out, x): return tangents[0][:1] * np.ones(5)
    with pytest.raises(tg.ShapeError, match=r"jvp of op 'bad_rule'.*shape \(5,\).*output's shape \(3,\)"):
        tg.jvp(lambda a: apply(Bad(), a), (np.zeros(3),), (np.ones(3),))


def test_gradcheck_modes_are_checked():
    with pytest.raises(ValueError, match=r"gradcheck: modes must be a non-empty tuple of \('rev', 'fwd'\)"):
        tg.gradcheck(lambda a: a * 2.0, [np.ones(2)], modes=("forward",))


@pytest.mark.parametrize("record", [False, True], ids=["no_grad", "recorded"])
@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_tangents_flow_through_the_recurrent_layers_slab(kind, record):
    """A layer runs a sequence in one slab, each step consuming its projection in place: every
    tangent is computed right after its op's forward, before the buffer is overwritten."""
    from rnn_models import layers
    layer = getattr(layers, kind)(3, 4, num_layers=2, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).normal(size=(5, 2, 3))
    v = np.random.default_rng(2).normal(size=x.shape)
    with tg.enable_grad() if record else tg.no_grad():
        _, t = tg.jvp(lambda a: layer(a)[0], (x,), (v,))
    eps = 1e-6
    with tg.no_grad():
        numeric = (layer(tg.tensor(x + eps * v))[0].data - layer(tg.tensor(x - eps * v))[0].data) / (2 * eps)
    np.testing.assert_allclose(t.data, numeric, rtol=1e-6, atol=1e-8)
