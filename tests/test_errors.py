"""Bad input fails when the op is built, with a tinygraph error (a ValueError/TypeError subclass) whose
message names the op and the shapes or values involved — never a bare numpy exception."""
import numpy as np
import pytest

import tinygraph as tg


def t(*shape, dtype=np.float64):
    return tg.tensor(np.ones(shape, dtype=dtype), requires_grad=np.dtype(dtype).kind == "f")


def head(x, targets, bias=None):
    """linear_cross_entropy with a (V=5, H=4) weight and a (5,) bias."""
    return tg.linear_cross_entropy(x, t(5, 4), t(5) if bias is None else bias, targets)


# (call, error class, fragments the message must contain)
CASES = {
    "matmul inner dims": (lambda: t(3, 4) @ t(5, 2), tg.ShapeError, ["matmul", "(3, 4)", "(5, 2)", "4 and 5"]),
    "matmul vector": (lambda: t(3) @ t(4, 2), tg.ShapeError, ["matmul", "(3,)", "(4, 2)", "3 and 4"]),
    "matmul 0-d": (lambda: tg.matmul(t(), t(2)), tg.ShapeError, ["matmul", "()", "at least 1-D"]),
    "matmul batch": (lambda: t(2, 3, 4) @ t(3, 4, 5), tg.ShapeError, ["matmul", "batch", "(2, 3, 4)", "(3, 4, 5)"]),
    "add broadcast": (lambda: t(2, 3) + t(4), tg.ShapeError, ["add", "(2, 3)", "(4,)", "broadcast"]),
    "mul with an array": (lambda: t(2, 3) * np.ones(4), tg.ShapeError, ["mul", "(2, 3)", "(4,)"]),
    "maximum broadcast": (lambda: tg.maximum(t(2), t(3)), tg.ShapeError, ["maximum", "(2,)", "(3,)"]),
    "comparison broadcast": (lambda: t(2) < t(3), tg.ShapeError, ["lt", "(2,)", "(3,)"]),
    "reshape count": (lambda: t(2, 3).reshape(4, 2), tg.ShapeError, ["reshape", "(2, 3)", "(4, 2)", "6 elements"]),
    "transpose axes": (lambda: t(2, 3).transpose(0, 0), tg.ShapeError, ["transpose", "(0, 0)", "(2, 3)"]),
    "broadcast_to": (lambda: t(2, 3).broadcast_to((4, 3)), tg.ShapeError, ["broadcast_to", "(2, 3)", "(4, 3)"]),
    "sum axis range": (lambda: t(2, 3).sum(axis=2), tg.ShapeError, ["sum", "axis 2", "2 dimensions"]),
    "max axis range": (lambda: t(2, 3).max(axis=-3), tg.ShapeError, ["max", "axis -3"]),
    "mean axis range": (lambda: t(3).mean(axis=1), tg.ShapeError, ["mean", "axis 1"]),
    "sum float axis": (lambda: t(2, 3).sum(axis=0.5), tg.DTypeError, ["sum", "axis", "0.5"]),
    "sum repeated axis": (lambda: t(2, 3).sum(axis=(0, -2)), tg.ShapeError, ["sum", "repeats"]),
    "swapaxes range": (lambda: tg.swapaxes(t(2, 3), 0, 5), tg.ShapeError, ["swapaxes", "axis 5"]),
    "softmax axis": (lambda: tg.softmax(t(2, 3), axis=4), tg.ShapeError, ["softmax", "axis 4"]),
    "log_softmax axis": (lambda: tg.log_softmax(t(2, 3), axis=2), tg.ShapeError, ["log_softmax", "axis 2"]),
    "logsumexp axis": (lambda: tg.logsumexp(t(2, 3), axis=-3), tg.ShapeError, ["logsumexp", "axis -3"]),
    "getitem out of bounds": (lambda: t(2, 3)[5], tg.ShapeError, ["getitem", "5", "(2, 3)"]),
    "getitem array out of bounds": (lambda: t(2, 3)[np.array([0, 7])], tg.ShapeError, ["getitem", "7", "(2, 3)"]),
    "getitem float": (lambda: t(2, 3)[1.5], tg.ShapeError, ["getitem", "1.5", "(2, 3)"]),
    "getitem float array": (lambda: t(2, 3)[np.array([0.5])], tg.DTypeError, ["getitem", "float64"]),
    "getitem too many": (lambda: t(2, 3)[0, 0, 0], tg.ShapeError, ["getitem", "(0, 0, 0)", "(2, 3)"]),
    "concat mismatch": (lambda: tg.concat([t(2, 3), t(2, 4)]), tg.ShapeError, ["concat", "(2, 3)", "(2, 4)", "axis 0"]),
    "concat ndim": (lambda: tg.concat([t(2, 3), t(3)]), tg.ShapeError, ["concat", "(2, 3)", "(3,)"]),
    "concat nothing": (lambda: tg.concat([]), tg.ShapeError, ["concat"]),
    "stack mismatch": (lambda: tg.stack([t(2, 3), t(2, 4)]), tg.ShapeError, ["stack", "(2, 3)", "(2, 4)"]),
    "split unequal": (lambda: tg.split(t(5), 2), tg.ShapeError, ["split", "5", "2"]),
    "where float condition": (lambda: tg.where(t(2), 1.0, 2.0), tg.DTypeError, ["where", "bool", "float64"]),
    "where broadcast": (lambda: tg.where(tg.tensor([True, False]), t(3), 2.0), tg.ShapeError,
                        ["where", "(2,)", "(3,)"]),
    "cross_entropy float targets": (lambda: tg.cross_entropy(t(2, 3), np.array([0.0, 1.0])), tg.DTypeError,
                                    ["cross_entropy", "integers", "float64"]),
    "cross_entropy target too big": (lambda: tg.cross_entropy(t(2, 3), np.array([0, 3])), tg.ShapeError,
                                     ["cross_entropy", "[0, 3)", "3"]),
    "cross_entropy negative target": (lambda: tg.cross_entropy(t(2, 3), np.array([0, -1])), tg.ShapeError,
                                      ["cross_entropy", "[0, 3)", "-1"]),
    "cross_entropy target shape": (lambda: tg.cross_entropy(t(2, 3), np.array([0, 1, 2])), tg.ShapeError,
                                   ["cross_entropy", "(3,)", "(2,)"]),
    "cross_entropy 3-d logits": (lambda: tg.cross_entropy(t(2, 3, 4), np.array([0, 1])), tg.ShapeError,
                                 ["cross_entropy", "(2, 3, 4)", "(N, C)"]),
    "linear_cross_entropy float targets": (lambda: head(t(2, 3, 4), np.zeros((2, 3))), tg.DTypeError,
                                           ["linear_cross_entropy", "integers", "float64"]),
    "linear_cross_entropy target shape": (lambda: head(t(2, 3, 4), np.zeros(6, int)), tg.ShapeError,
                                          ["linear_cross_entropy", "(6,)", "(2, 3)"]),
    "linear_cross_entropy target too big": (lambda: head(t(2, 4), np.array([0, 5])), tg.ShapeError,
                                            ["linear_cross_entropy", "[0, 5)", "5"]),
    "linear_cross_entropy negative target": (lambda: head(t(2, 4), np.array([-1, 0])), tg.ShapeError,
                                             ["linear_cross_entropy", "[0, 5)", "-1"]),
    "linear_cross_entropy H mismatch": (lambda: head(t(2, 3, 3), np.zeros((2, 3), int)), tg.ShapeError,
                                        ["linear_cross_entropy", "(2, 3, 3)", "(5, 4)", "same H"]),
    "linear_cross_entropy bias shape": (lambda: head(t(2, 4), np.array([0, 1]), bias=t(4)), tg.ShapeError,
                                        ["linear_cross_entropy", "bias", "(4,)", "(5,)"]),
    "mse_loss shapes": (lambda: tg.mse_loss(t(2, 3), t(3)), tg.ShapeError, ["mse_loss", "(2, 3)", "(3,)"]),
    "embedding out of range": (lambda: tg.embedding(t(4, 3), np.array([0, 4])), tg.ShapeError,
                               ["embedding", "[0, 4)", "4"]),
    "embedding float indices": (lambda: tg.embedding(t(4, 3), np.array([0.0])), tg.DTypeError,
                                ["embedding", "integers", "float64"]),
    "object data": (lambda: tg.tensor([object()]), tg.DTypeError, ["object", "not supported"]),
    "string data": (lambda: tg.tensor(["a"]), tg.DTypeError, ["<U1", "not supported"]),
    "add a string": (lambda: t(3) + "a", tg.DTypeError, ["not supported", "str"]),
    "add None": (lambda: t(3) + None, tg.DTypeError, ["not supported", "NoneType"]),
    "int tensor requires grad": (lambda: tg.tensor([1, 2], requires_grad=True), tg.DTypeError,
                                 ["requires_grad", "int64", "(2,)"]),
    "astype to str": (lambda: t(3).astype(str), tg.DTypeError, ["astype", "<U"]),
    "astype to object": (lambda: t(3).astype(object), tg.DTypeError, ["astype", "object"]),
    "item of many": (lambda: t(3).item(), tg.ShapeError, ["item", "(3,)"]),
    "bool of many": (lambda: bool(t(3) > 0), tg.ShapeError, ["bool", "(3,)", "ambiguous"]),
    "backward grad shape": (lambda: (t(3) * 2.0).backward(np.ones(2)), tg.ShapeError, ["backward", "(2,)", "(3,)"]),
    "backward non-scalar": (lambda: (t(3) * 2.0).backward(), tg.GraphError, ["backward", "(3,)", "grad="]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_raises_a_named_tinygraph_error(name):
    call, error, fragments = CASES[name]
    with pytest.raises(error) as info:
        call()
    assert isinstance(info.value, tg.TinygraphError)
    assert type(info.value).__module__ == "tinygraph.errors"
    message = str(info.value)
    missing = [f for f in fragments if f not in message]
    assert not missing, f"message lacks {missing}: {message}"


def test_shape_and_dtype_errors_are_value_and_type_errors():
    assert issubclass(tg.ShapeError, ValueError) and issubclass(tg.DTypeError, TypeError)
    with pytest.raises(ValueError):
        t(3, 4) @ t(5, 2)
    with pytest.raises(TypeError):
        tg.tensor(["a"])


def test_errors_are_raised_when_the_op_is_built_not_at_backward():
    x = t(2, 3)
    with pytest.raises(tg.ShapeError):
        x @ t(2, 3)
    assert x.grad is None


def test_reduction_name_is_checked():
    with pytest.raises(ValueError, match=r"cross_entropy: reduction must be .*'avg'"):
        tg.cross_entropy(t(2, 3), np.array([0, 1]), reduction="avg")
    with pytest.raises(ValueError, match=r"linear_cross_entropy: reduction must be .*'avg'"):
        tg.linear_cross_entropy(t(2, 4), t(5, 4), t(5), np.array([0, 1]), reduction="avg")


def test_integer_casts_do_not_carry_a_gradient():
    x = tg.tensor([1.4, 2.6], requires_grad=True)
    rounded = x.astype(np.int64)
    assert rounded.dtype == np.int64 and not rounded.requires_grad
    with pytest.raises(tg.GraphError, match="does not require grad"):
        (rounded * 2).sum().backward()
