"""Elementwise math primitives: trigonometric, hyperbolic, exponential and logarithmic functions,
rounding, remainder, NaN-aware selection and NaN replacement.

Every op maps inputs of broadcastable shapes to an output of their broadcast shape, elementwise, with
numpy's semantics (``forward`` is the numpy function of the same name). A unary op whose derivative is
a function of its input and output writes that derivative once, as ``d(B, out, x)``, beside its
forward; ``vjp`` (``g * d``) and ``jvp`` (``t * d``) are both read from it (``Pointwise``). Binary ops
write their ``vjp`` and ``jvp`` out, side by side.
"""
import math

import numpy as np

from .math import Binary, Differentiable, Piecewise, Unary, scaled, tangent


class Pointwise(Unary):
    """A unary op with derivative ``d(B, out, x)`` (an array or Tensor broadcastable to x):
    vjp ``g * d``, jvp ``t * d``. ``saves`` names what ``d`` reads."""
    def d(self, B, out, x):
        """The derivative d out / d x, elementwise, from the input ``x`` and the output ``out``
        (computed with ``B``, see ``Op.vjp``)."""
        raise NotImplementedError

    def vjp(self, B, g, out, x):
        """``(g * d(B, out, x),)``."""
        return (g * self.d(B, out, x),)

    def jvp(self, B, tangents, out, x):
        (t,) = tangents
        return None if t is None else tangent(out, t * self.d(B, out, x))


# --- trigonometric ---------------------------------------------------------------------------------
class Sin(Pointwise):
    """sin(x); derivative cos(x)."""
    name = "sin"
    saves = ("x",)
    def forward(self, x): return np.sin(x)
    def d(self, B, out, x): return B.cos(x)


class Cos(Pointwise):
    """cos(x); derivative -sin(x)."""
    name = "cos"
    saves = ("x",)
    def forward(self, x): return np.cos(x)
    def d(self, B, out, x): return -B.sin(x)


class Tan(Pointwise):
    """tan(x); derivative 1 + tan(x)**2, from the output."""
    name = "tan"
    saves = ("out",)
    domain = (-1.2, 1.2)  # poles at +-pi/2 = +-1.571
    def forward(self, x): return np.tan(x)
    def d(self, B, out, x): return 1 + out * out


class Arcsin(Pointwise):
    """arcsin(x) on [-1, 1]; derivative 1 / sqrt(1 - x**2)."""
    name = "arcsin"
    saves = ("x",)
    domain = (-0.9, 0.9)  # defined on [-1, 1], the derivative is infinite at +-1
    def forward(self, x): return np.arcsin(x)
    def d(self, B, out, x): return 1 / B.sqrt(1 - x * x)


class Arccos(Pointwise):
    """arccos(x) on [-1, 1]; derivative -1 / sqrt(1 - x**2)."""
    name = "arccos"
    saves = ("x",)
    domain = (-0.9, 0.9)
    def forward(self, x): return np.arccos(x)
    def d(self, B, out, x): return -1 / B.sqrt(1 - x * x)


class Arctan(Pointwise):
    """arctan(x); derivative 1 / (1 + x**2)."""
    name = "arctan"
    saves = ("x",)
    def forward(self, x): return np.arctan(x)
    def d(self, B, out, x): return 1 / (1 + x * x)


# --- hyperbolic ------------------------------------------------------------------------------------
class Sinh(Pointwise):
    """sinh(x); derivative cosh(x)."""
    name = "sinh"
    saves = ("x",)
    def forward(self, x): return np.sinh(x)
    def d(self, B, out, x): return B.cosh(x)


class Cosh(Pointwise):
    """cosh(x); derivative sinh(x)."""
    name = "cosh"
    saves = ("x",)
    def forward(self, x): return np.cosh(x)
    def d(self, B, out, x): return B.sinh(x)


class Arcsinh(Pointwise):
    """arcsinh(x); derivative 1 / sqrt(x**2 + 1)."""
    name = "arcsinh"
    saves = ("x",)
    def forward(self, x): return np.arcsinh(x)
    def d(self, B, out, x): return 1 / B.sqrt(x * x + 1)


class Arccosh(Pointwise):
    """arccosh(x) for x >= 1; derivative 1 / sqrt(x**2 - 1)."""
    name = "arccosh"
    saves = ("x",)
    domain = (1.1, 5.0)  # defined for x >= 1, the derivative is infinite at 1
    def forward(self, x): return np.arccosh(x)
    def d(self, B, out, x): return 1 / B.sqrt(x * x - 1)


class Arctanh(Pointwise):
    """arctanh(x) on (-1, 1); derivative 1 / (1 - x**2)."""
    name = "arctanh"
    saves = ("x",)
    domain = (-0.9, 0.9)  # defined on (-1, 1)
    def forward(self, x): return np.arctanh(x)
    def d(self, B, out, x): return 1 / (1 - x * x)


# --- exponential and logarithmic -------------------------------------------------------------------
LN2, LN10 = math.log(2.0), math.log(10.0)


class Exp2(Pointwise):
    """2 ** x; derivative out * ln 2, from the output."""
    name = "exp2"
    saves = ("out",)
    def forward(self, x): return np.exp2(x)
    def d(self, B, out, x): return out * LN2


class Expm1(Pointwise):
    """exp(x) - 1, exact for small |x| (where exp(x) - 1 loses the digits)."""
    name = "expm1"
    saves = ("out",)
    def forward(self, x): return np.expm1(x)
    def d(self, B, out, x): return out + 1


class Log2(Pointwise):
    """log2(x) for x > 0; derivative 1 / (x ln 2)."""
    name = "log2"
    saves = ("x",)
    domain = (0.1, 5.0)
    def forward(self, x): return np.log2(x)
    def d(self, B, out, x): return 1 / (x * LN2)


class Log10(Pointwise):
    """log10(x) for x > 0; derivative 1 / (x ln 10)."""
    name = "log10"
    saves = ("x",)
    domain = (0.1, 5.0)
    def forward(self, x): return np.log10(x)
    def d(self, B, out, x): return 1 / (x * LN10)


class Log1p(Pointwise):
    """log(1 + x), exact for small |x|; defined for x > -1."""
    name = "log1p"
    saves = ("x",)
    domain = (-0.9, 4.0)
    def forward(self, x): return np.log1p(x)
    def d(self, B, out, x): return 1 / (1 + x)


# --- powers ----------------------------------------------------------------------------------------
class Square(Pointwise):
    """x * x; derivative 2x."""
    name = "square"
    saves = ("x",)
    def forward(self, x): return np.square(x)
    def d(self, B, out, x): return 2 * x


class Reciprocal(Pointwise):
    """1 / x; the property tests keep |x| >= 0.5 (a pole at 0)."""
    name = "reciprocal"
    saves = ("out",)
    sample = "unary_nonzero"
    def forward(self, x): return np.reciprocal(x)
    def d(self, B, out, x): return -(out * out)


# --- rounding: piecewise constant, no gradient (like ``sign``) ---------------------------------------
class Floor(Piecewise):
    """floor(x), in x's dtype; piecewise constant, no gradient."""
    name = "floor"
    def forward(self, x): return np.floor(x)


class Ceil(Piecewise):
    """ceil(x), in x's dtype; piecewise constant, no gradient."""
    name = "ceil"
    def forward(self, x): return np.ceil(x)


# --- tests for special values: bool outputs, no gradient --------------------------------------------
class IsNan(Piecewise):
    """isnan(x): bool, no gradient."""
    name = "isnan"
    def forward(self, x): return np.isnan(x)


class IsInf(Piecewise):
    """isinf(x): bool (True at +inf and -inf), no gradient."""
    name = "isinf"
    def forward(self, x): return np.isinf(x)


class IsFinite(Piecewise):
    """isfinite(x): bool (False at NaN and +-inf), no gradient."""
    name = "isfinite"
    def forward(self, x): return np.isfinite(x)


class NanToNum(Unary):
    """NaN -> ``nan``, +inf -> ``posinf``, -inf -> ``neginf`` (None: the dtype's largest and smallest
    finite values, numpy's default). The gradient passes where x is finite, and is 0 where a value
    was replaced (the output does not depend on it there)."""
    name = "nan_to_num"
    saves = ("x",)
    sample = "nan_to_num"
    def __init__(self, nan=0.0, posinf=None, neginf=None):
        self.nan, self.posinf, self.neginf = nan, posinf, neginf
    def forward(self, x): return np.nan_to_num(x, nan=self.nan, posinf=self.posinf, neginf=self.neginf)
    def vjp(self, B, g, out, x): return (g * B.isfinite(x),)
    def jvp(self, B, tangents, out, x):
        (t,) = tangents
        return None if t is None else tangent(out, t * B.isfinite(x))


# --- binary ----------------------------------------------------------------------------------------
class Arctan2(Differentiable):
    """The angle of the point (x, y) in (-pi, pi]: ``arctan2(y, x)``, numpy's argument order (the
    first input is the y coordinate). The property tests keep |x|, |y| >= 0.5 (away from the origin
    and from the branch cut's jump)."""
    name = "arctan2"
    saves = ("x", "y")  # both coordinates (the rule's parameters are named by position: y is first)
    sample = "binary_nonzero"
    def forward(self, y, x): return np.arctan2(y, x)
    def partials(self, B, out, y, x):
        """(x / r**2, -y / r**2) with r = hypot(x, y), divided by r twice: x*x + y*y underflows to 0
        for |x|, |y| < 1e-154 (1e-19 in float32)."""
        m = B.maximum(B.abs(x), B.abs(y))
        m = B.where(m == 0, 1, m)  # the origin: no derivative; 0/1 keeps it finite
        xs, ys = x / m, y / m      # in [-1, 1]: the ratios keep full precision even for subnormals
        h = B.hypot(xs, ys)
        return xs / h / h / m, -ys / h / h / m


class Hypot(Differentiable):
    """sqrt(x**2 + y**2) without overflow; the property tests keep |x|, |y| >= 0.5 (the cone's tip
    at the origin has no derivative)."""
    name = "hypot"
    saves = ("x", "y")
    sample = "binary_nonzero"
    def forward(self, x, y): return np.hypot(x, y)
    def partials(self, B, out, x, y):
        """(x / out, y / out): each ratio first, so subnormal inputs do not make 1 / out overflow;
        0 at the origin (PyTorch's choice of subgradient)."""
        m = B.maximum(B.abs(x), B.abs(y))
        m = B.where(m == 0, 1, m)
        xs, ys = x / m, y / m  # scaled to [-1, 1] first: for subnormal x, y, out = hypot(x, y) has
        h = B.hypot(xs, ys)    # too few digits to divide by; h is in [1, sqrt 2] (0 at the origin)
        h = B.where(h == 0, 1, h)
        return xs / h, ys / h


class LogAddExp(Binary):
    """log(exp(x) + exp(y)), computed without overflow (numpy's ``logaddexp``). The derivatives are
    sigmoid(x - y) and sigmoid(y - x), written exp(-logaddexp(0, y - x)): in [0, 1], no overflow,
    exactly 0.5 at ties (exp(x - out) gives 1 there once out rounds to x, e.g. at x = y = 1e308)."""
    name = "logaddexp"
    saves = ("x", "y")
    def forward(self, x, y): return np.logaddexp(x, y)
    def vjp(self, B, g, out, x, y):
        return (B.unbroadcast(g * B.exp(-B.logaddexp(0, y - x)), x.shape),
                B.unbroadcast(g * B.exp(-B.logaddexp(0, x - y)), y.shape))
    def jvp(self, B, tangents, out, x, y):
        tx, ty = tangents
        return tangent(out, scaled(tx, B.exp(-B.logaddexp(0, y - x))),
                       scaled(ty, B.exp(-B.logaddexp(0, x - y))))


class Mod(Binary):
    """``x % y`` with numpy's (and Python's) sign convention: the result has y's sign,
    x - floor(x / y) * y. Away from the jumps (x / y an integer) d/dx = 1 and d/dy = -floor(x / y);
    the property tests draw x / y at least 0.03 away from every integer."""
    name = "mod"
    saves = ("x", "y")
    sample = "mod"
    def forward(self, x, y): return np.mod(x, y)
    def vjp(self, B, g, out, x, y):
        return B.unbroadcast(g, x.shape), B.unbroadcast(-g * B.floor(x / y), y.shape)
    def jvp(self, B, tangents, out, x, y):
        tx, ty = tangents
        return tangent(out, tx, scaled(ty, -B.floor(x / y)))


class Select(Binary):
    """An op whose output is, elementwise, one of its inputs: the gradient goes to the input equal to
    the output, split equally where both are (ties, as ``maximum``; PyTorch's rule). Where the output
    equals neither (NaN from two NaNs) no input gets a gradient."""
    saves = ("out", "x", "y")
    distinct = True

    def vjp(self, B, g, out, x, y):
        from_x, from_y = out == x, out == y
        return (B.unbroadcast(B.where(from_y, g * 0.5, g) * from_x, x.shape),
                B.unbroadcast(B.where(from_x, g * 0.5, g) * from_y, y.shape))

    def jvp(self, B, tangents, out, x, y):
        tx, ty = tangents
        from_x, from_y = out == x, out == y
        return tangent(out, None if tx is None else B.where(from_y, tx * 0.5, tx) * from_x,
                       None if ty is None else B.where(from_x, ty * 0.5, ty) * from_y)


class Minimum(Select):
    """Elementwise min; NaN wins (propagates), as numpy's ``minimum``."""
    name = "minimum"
    def forward(self, x, y): return np.minimum(x, y)


class Fmin(Select):
    """Elementwise min ignoring NaN: where one input is NaN the other is the result (and gets the
    whole gradient); NaN only where both are."""
    name = "fmin"
    sample = "binary_nan"
    def forward(self, x, y): return np.fmin(x, y)


class Fmax(Select):
    """Elementwise max ignoring NaN (see ``fmin``)."""
    name = "fmax"
    sample = "binary_nan"
    def forward(self, x, y): return np.fmax(x, y)

