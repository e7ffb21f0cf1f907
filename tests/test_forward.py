"""Forward mode (tinygraph.forward): every registered op's jvp, its own or the one derived from its vjp,
property-tested over its sample family like tests/test_ops.py does for gradients; then the transforms
(jvp, vjp, jacfwd, jacrev, hessian, hvp, linearize), nesting, and the errors bad input raises.
"""
import gc
import weakref

import numpy as np
import pytest
from hypothesis import given
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
    own = op.jvp(NUMPY_VJP, tangents, out, *inputs)
    derived = derived_jvp(op, NUMPY_VJP, tangents, out, inputs)
    np.testing.assert_allclose(np.broadcast_to(own, out.shape), derived, rtol=1e-10, atol=1e-12)
    wrap = [tg.Tensor(a) for a in inputs]
    vs = [None if v is None else tg.Tensor(v) for v in tangents]
    own_t = op.jvp(TENSOR_VJP, vs, tg.Tensor(out), *wrap)
    derived_t = derived_jvp(op, TENSOR_VJP, vs, tg.Tensor(out), wrap)
    np.testing.assert_allclose(np.broadcast_to(own_t.data, out.shape), derived_t.data,
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", DIFFERENTIABLE)
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
