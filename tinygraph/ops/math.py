"""Elementwise and linear-algebra primitives: forward, gradient rule (``vjp``) and forward-mode rule
(``jvp``) side by side."""
import numpy as np

from .base import Op


def tangent(out, *terms):
    """A jvp's result: the sum of the non-None ``terms`` (arrays or Tensors broadcastable to ``out``)
    in ``out``'s dtype, or None when every term is None (a zero tangent)."""
    total = None
    for term in terms:
        if term is not None:
            total = term if total is None else total + term
    if total is not None and total.dtype != out.dtype:
        total = total.astype(out.dtype)
    return total


def scaled(t, factor):
    """``t * factor``, or None for a None (zero) tangent."""
    return None if t is None else t * factor


class Unary(Op):
    """An op of one tensor: the property tests draw one array for it (``sample = "unary"``)."""
    sample = "unary"


class Neg(Unary):
    """-x; vjp -g, nothing saved."""
    name = "neg"
    saves = ()
    def forward(self, x): return -x
    def vjp(self, B, g, out, x): return (-g,)
    def jvp(self, B, tangents, out, x): return None if tangents[0] is None else -tangents[0]


class Exp(Unary):
    """exp(x); derivative exp(x), the output itself (saved instead of x)."""
    name = "exp"
    saves = ("out",)
    def forward(self, x): return np.exp(x)
    def vjp(self, B, g, out, x): return (g * out,)
    def jvp(self, B, tangents, out, x): return scaled(tangents[0], out)


class Log(Unary):
    """log(x) for x > 0; derivative 1 / x."""
    name = "log"
    saves = ("x",)
    domain = (0.1, 5.0)
    def forward(self, x): return np.log(x)
    def vjp(self, B, g, out, x): return (g / x,)
    def jvp(self, B, tangents, out, x): return None if tangents[0] is None else tangents[0] / x


class Tanh(Unary):
    """tanh(x); derivative 1 - out**2, from the output."""
    name = "tanh"
    saves = ("out",)
    def forward(self, x): return np.tanh(x)
    def vjp(self, B, g, out, x): return (g * (1 - out * out),)
    def jvp(self, B, tangents, out, x): return scaled(tangents[0], 1 - out * out)


class Sigmoid(Unary):
    """1 / (1 + exp(-x)), without overflow; derivative out * (1 - out), from the output."""
    name = "sigmoid"
    saves = ("out",)
    def forward(self, x):
        # e = exp(-|x|) cannot overflow, and for x < 0 the result e / (1 + e) keeps its relative
        # precision down to subnormals (0.5 + 0.5 * tanh(x / 2) is 0 from x = -38 on)
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1, e) / (1 + e)
    def vjp(self, B, g, out, x): return (g * out * (1 - out),)
    def jvp(self, B, tangents, out, x): return scaled(tangents[0], out * (1 - out))


class Relu(Unary):
    """max(x, 0); derivative 1 where the output is positive, else 0 (0 at x = 0)."""
    name = "relu"
    saves = ("out",)  # out > 0 exactly where x > 0: the input need not be kept
    kinks = (0.0,)
    def forward(self, x): return np.maximum(x, 0)
    def vjp(self, B, g, out, x): return (g * (out > 0),)
    def jvp(self, B, tangents, out, x): return scaled(tangents[0], out > 0)


class Sqrt(Unary):
    """sqrt(x) for x >= 0; derivative 0.5 / out, from the output."""
    name = "sqrt"
    saves = ("out",)
    domain = (0.1, 5.0)
    def forward(self, x): return np.sqrt(x)
    def vjp(self, B, g, out, x): return (g * 0.5 / out,)
    def jvp(self, B, tangents, out, x): return None if tangents[0] is None else tangents[0] * 0.5 / out


class Abs(Unary):
    """|x|; derivative sign(x) (0 at x = 0)."""
    name = "abs"
    saves = ("x",)
    kinks = (0.0,)
    def forward(self, x): return np.abs(x)
    def vjp(self, B, g, out, x): return (g * B.sign(x),)
    def jvp(self, B, tangents, out, x): return scaled(tangents[0], B.sign(x))


class Piecewise(Unary):
    """A piecewise-constant elementwise op (or one with a bool output): no gradient, nothing saved."""
    saves = ()
    differentiable = False


class Sign(Piecewise):
    """sign(x): -1, 0 or 1 in x's dtype; piecewise constant, no gradient."""
    name = "sign"
    def forward(self, x): return np.sign(x)


class PowConst(Unary):
    """``x ** exponent`` for a Python number exponent (the common case; no log(x) needed)."""
    name = "pow_const"
    saves = ("x",)
    sample = "pow_const"
    def __init__(self, exponent): self.exponent = exponent
    def forward(self, x): return x ** self.exponent
    def vjp(self, B, g, out, x):
        if self.exponent == 0:  # d/dx x**0 = 0 everywhere, also at x = 0 where x**-1 is inf
            return (g * 0,)
        return (g * self.exponent * x ** (self.exponent - 1),)

    def jvp(self, B, tangents, out, x):
        if self.exponent == 0 or tangents[0] is None:  # x ** 0 is constant
            return None
        return tangents[0] * self.exponent * x ** (self.exponent - 1)


class Binary(Op):
    """An op of two tensors that broadcast together (numpy's rule); ``explain`` names both shapes when they
    do not."""
    sample = "binary"

    def explain(self, x, y):
        return (f"{self.name}: shapes {x.shape} and {y.shape} cannot be broadcast together "
                f"(aligned from the right, each dimension pair must be equal or contain a 1); "
                f"reshape or index one operand")


class Differentiable(Binary):
    """A binary op whose two rules come from its partial derivatives: ``partials(B, out, x, y)``
    returns (d out/dx, d out/dy), elementwise, broadcastable to the output; the vjp sums each back to
    its input's shape, the jvp adds the tangents they scale."""
    def partials(self, B, out, x, y):
        """``(d out/dx, d out/dy)``, elementwise and broadcastable to ``out`` (computed with ``B``)."""
        raise NotImplementedError

    def vjp(self, B, g, out, x, y):
        """``g`` times each partial, summed back to its input's shape (``unbroadcast``)."""
        dx, dy = self.partials(B, out, x, y)
        return B.unbroadcast(g * dx, x.shape), B.unbroadcast(g * dy, y.shape)

    def jvp(self, B, tangents, out, x, y):
        tx, ty = tangents
        dx, dy = self.partials(B, out, x, y)
        return tangent(out, scaled(tx, dx), scaled(ty, dy))


class Add(Binary):
    """x + y, broadcasting; each gradient is g summed back to its input's shape."""
    name = "add"
    saves = ()
    def forward(self, x, y): return x + y
    def vjp(self, B, g, out, x, y): return B.unbroadcast(g, x.shape), B.unbroadcast(g, y.shape)
    def jvp(self, B, tangents, out, x, y): return tangent(out, *tangents)


class Sub(Binary):
    """x - y, broadcasting; gradients g and -g, each summed back to its input's shape."""
    name = "sub"
    saves = ()
    def forward(self, x, y): return x - y
    def vjp(self, B, g, out, x, y): return B.unbroadcast(g, x.shape), B.unbroadcast(-g, y.shape)
    def jvp(self, B, tangents, out, x, y):
        tx, ty = tangents
        return tangent(out, tx, None if ty is None else -ty)


class Mul(Binary):
    """x * y, broadcasting; gradients g * y and g * x."""
    name = "mul"
    saves = ("x", "y")
    def forward(self, x, y): return x * y
    def vjp(self, B, g, out, x, y): return B.unbroadcast(g * y, x.shape), B.unbroadcast(g * x, y.shape)
    def jvp(self, B, tangents, out, x, y):
        tx, ty = tangents
        return tangent(out, scaled(tx, y), scaled(ty, x))


class Div(Binary):
    """x / y, broadcasting; gradients g / y and -g * out / y."""
    name = "div"
    saves = ("out", "y")
    domain = (0.5, 3.0)
    def forward(self, x, y): return x / y
    def vjp(self, B, g, out, x, y):
        return B.unbroadcast(g / y, x.shape), B.unbroadcast(-g * out / y, y.shape)

    def jvp(self, B, tangents, out, x, y):
        tx, ty = tangents
        return tangent(out, None if tx is None else tx / y, None if ty is None else -ty * out / y)


class Pow(Differentiable):
    """``x ** y`` with both operands tensors; the gradient in y needs x > 0."""
    name = "pow"
    saves = ("out", "x", "y")
    domain = (0.5, 2.0)
    def forward(self, x, y): return x ** y
    def partials(self, B, out, x, y):
        """(d out/dx, d out/dy) with PyTorch's conventions where the formulas give 0 * inf: d/dx is 0
        where y == 0 (x ** 0 is constant, also at x = 0), d/dy is 0 where x == 0 and y >= 0 (the
        limit of x**y log x)."""
        dx = y * x ** B.where(y == 0, 1, y - 1)
        zero_base = x == 0  # log x taken as 0 there (the product is 0), -inf if y < 0 (it is -inf)
        log_x = B.log(B.where(zero_base, 1, x)) + B.where(B.where(zero_base, y < 0, False), -np.inf, 0)
        return dx, out * log_x


class Maximum(Binary):
    """Elementwise max; at ties the gradient is split equally (as in PyTorch)."""
    name = "maximum"
    saves = ("x", "y")
    distinct = True
    def forward(self, x, y): return np.maximum(x, y)
    def vjp(self, B, g, out, x, y):
        share = (x > y) + 0.5 * (x == y)
        return B.unbroadcast(g * share, x.shape), B.unbroadcast(g * (1 - share), y.shape)

    def jvp(self, B, tangents, out, x, y):
        tx, ty = tangents
        ties = x == y
        return tangent(out, None if tx is None else B.where(ties, tx * 0.5, tx) * (x >= y),
                       None if ty is None else B.where(ties, ty * 0.5, ty) * (x <= y))


class Compare(Binary):
    """A comparison of two broadcast tensors: a bool output, not differentiable, nothing saved."""
    differentiable = False
    saves = ()


class Less(Compare):
    """x < y, elementwise (bool)."""
    name = "lt"
    def forward(self, x, y): return x < y


class LessEqual(Compare):
    """x <= y, elementwise (bool)."""
    name = "le"
    def forward(self, x, y): return x <= y


class Greater(Compare):
    """x > y, elementwise (bool)."""
    name = "gt"
    def forward(self, x, y): return x > y


class GreaterEqual(Compare):
    """x >= y, elementwise (bool)."""
    name = "ge"
    def forward(self, x, y): return x >= y


class Equal(Compare):
    """x == y, elementwise (bool)."""
    name = "eq"
    def forward(self, x, y): return x == y


class NotEqual(Compare):
    """x != y, elementwise (bool)."""
    name = "ne"
    def forward(self, x, y): return x != y


class Where(Op):
    """``where(cond, x, y)``: cond is not differentiable; x and y broadcast against it."""
    name = "where"
    saves = ("cond",)
    sample = "where"
    def forward(self, cond, x, y): return np.where(cond, x, y)
    def vjp(self, B, g, out, cond, x, y):
        return (None, B.unbroadcast(B.where(cond, g, 0), x.shape),
                B.unbroadcast(B.where(cond, 0, g), y.shape))

    def jvp(self, B, tangents, out, cond, x, y):
        _, tx, ty = tangents
        return tangent(out, None if tx is None else B.where(cond, tx, 0),
                       None if ty is None else B.where(cond, 0, ty))

    def explain(self, cond, x, y):
        return (f"where: condition {cond.shape}, x {x.shape} and y {y.shape} cannot be broadcast "
                f"together; reshape one of them")


class MatMul(Op):
    """numpy ``matmul`` semantics: (..., m, k) @ (..., k, n) -> (..., m, n); 1-D operands promoted."""
    name = "matmul"
    saves = ("x", "y")
    sample = "matmul"
    def forward(self, x, y): return x @ y

    def vjp(self, B, g, out, x, y):
        x_shape, y_shape = x.shape, y.shape
        if len(y_shape) == 1:
            y, g = y.reshape((-1, 1)), g.reshape(g.shape + (1,))
        if len(x_shape) == 1:
            x, g = x.reshape((1, -1)), g.reshape(g.shape[:-1] + (1,) + g.shape[-1:])
        dx = B.unbroadcast(g @ y.swapaxes(-1, -2), x.shape).reshape(x_shape)
        dy = B.unbroadcast(x.swapaxes(-1, -2) @ g, y.shape).reshape(y_shape)
        return dx, dy

    def jvp(self, B, tangents, out, x, y):
        tx, ty = tangents  # bilinear: d(x @ y) = dx @ y + x @ dy, 1-D operands as in forward
        return tangent(out, None if tx is None else tx @ y, None if ty is None else x @ ty)

    def explain(self, x, y):
        if x.ndim == 0 or y.ndim == 0:
            return f"matmul: operands must be at least 1-D, got shapes {x.shape} and {y.shape}; use * for scalars"
        k1 = x.shape[-1]
        k2 = y.shape[0] if y.ndim == 1 else y.shape[-2]
        if k1 != k2:
            return (f"matmul: cannot multiply {x.shape} by {y.shape}: inner dimensions {k1} and {k2} "
                    f"differ")
        return (f"matmul: batch dimensions of {x.shape} and {y.shape} cannot be broadcast together")
