"""Shape ops: forward-mode rules, numpy reference values, gradients of the composites, bad input.

The registry tests (tests/test_ops.py) cover every op's vjp; here each op's ``jvp`` is checked
directly, on arrays and recorded on Tensors: against float64 central differences, and against its
own ``vjp`` through the adjoint identity <u, J v> == <J^T u, v>.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygraph as tg
from tinygraph.ops import NUMPY_VJP, OPS, TENSOR_VJP
from tinygraph.ops.lazy import materialize
from tinygraph.testing import arrays, op_samples

# --- forward mode: every op of the shape area has its own jvp rule ------------------------------------
JVP_OPS = ["reshape", "transpose", "broadcast_to", "getitem", "index_add", "concat", "stack", "astype",
           "clone", "flip", "roll", "pad"]


def _forward(op, inputs):
    return np.asarray(op.forward(*inputs))


def _draw_tangents(data, inputs):
    """One tangent per floating input (None for the others, and for some floating ones: a None
    tangent means zero)."""
    tangents = []
    for k, x in enumerate(inputs):
        if x.dtype.kind != "f" or data.draw(st.integers(0, 3), label=f"no tangent {k}") == 0:
            tangents.append(None)
        else:
            tangents.append(data.draw(arrays(x.shape, x.dtype), label=f"tangent {k}"))
    return tangents


def test_every_op_of_the_area_defines_its_own_jvp():
    assert [name for name in JVP_OPS if "jvp" not in vars(OPS[name])] == []


@pytest.mark.parametrize("name", JVP_OPS)
@given(data=st.data())
def test_jvp_matches_central_differences_and_the_vjp(name, data):
    op, inputs = data.draw(op_samples(OPS[name]), label="op, inputs")
    tangents = _draw_tangents(data, inputs)
    out = _forward(op, inputs)
    jv = op.jvp(NUMPY_VJP, tangents, out, *inputs)
    if all(t is None for t in tangents):
        assert jv is None
        return
    assert jv.dtype == out.dtype
    jv = np.broadcast_to(jv, out.shape)
    eps = 1e-6
    shifted = [[x if t is None else x + sign * eps * t for x, t in zip(inputs, tangents)]
               for sign in (1, -1)]
    numerical = (_forward(op, shifted[0]) - _forward(op, shifted[1])) / (2 * eps)
    np.testing.assert_allclose(jv, numerical, rtol=1e-5, atol=1e-6)
    # the adjoint identity: the jvp and the vjp are the same linear map, transposed
    u = data.draw(arrays(out.shape, out.dtype), label="u")
    grads = op.vjp(NUMPY_VJP, u, out, *inputs)
    lhs = float(np.sum(u * jv))
    rhs = sum(float(np.sum(materialize(g) * t)) for g, t in zip(grads, tangents) if t is not None)
    assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-10)
    # the same rule recorded on Tensors gives the same tangent
    wrap = tg.Tensor._wrap
    with tg.enable_grad():
        recorded = op.jvp(TENSOR_VJP, [None if t is None else wrap(t) for t in tangents], wrap(out),
                          *[wrap(x) for x in inputs])
    np.testing.assert_array_equal(np.broadcast_to(recorded._data, out.shape), jv)


@pytest.mark.parametrize("name", JVP_OPS)
@given(data=st.data())
def test_jvp_keeps_float32(name, data):
    op, inputs = data.draw(op_samples(OPS[name], np.float32), label="op, inputs")
    tangents = [None if x.dtype.kind != "f" else np.ones_like(x) for x in inputs]
    out = _forward(op, inputs)
    jv = op.jvp(NUMPY_VJP, tangents, out, *inputs)
    assert jv.dtype == out.dtype


def test_jvp_of_a_cast_to_integers_is_none():
    op = OPS["astype"](np.int64)
    x = np.array([1.5, 2.5])
    assert op.jvp(NUMPY_VJP, [np.ones(2)], op.forward(x), x) is None
