"""tinygraph: a small, exact autodiff engine whose computational graph is an object you can hold."""
from . import functional, nn, ops, optim, random  # noqa: F401
from .autograd import backward, grad, grad_of, value_and_grad  # noqa: F401
from .errors import (AnomalyError, CompileError, DTypeError, GradcheckError, GraphError, ShapeError,  # noqa: F401
                     StateDictError, TinygraphError)
from .functional import (abs, as_tensor, astype, broadcast_to, clip, concat, cross_entropy,  # noqa: F401
                         embedding, exp, linear_cross_entropy, log, log_softmax, logsumexp, matmul,
                         max, maximum, mean, mse_loss, relu, reshape, sigmoid, softmax, split, sqrt,
                         stack, sum, swapaxes, tanh, transpose, where)
from .functional import (absolute, acos, acosh, add, arccos, arccosh, arcsin, arcsinh,  # noqa: F401
                         arctan, arctan2, arctanh, asin, asinh, atan, atan2, atanh, ceil, clamp, cos,
                         cosh, div, divide, exp2, expm1, fabs, floor, fmax, fmin, hypot, isfinite,
                         isinf, isnan, log1p, log2, log10, logaddexp, minimum, mod, mul, multiply,
                         nan_to_num, neg, negative, pow, power, reciprocal, remainder, sign, sin, sinh,
                         square, sub, subtract, tan, true_divide)  # elementwise
from .functional import (arange, array_split, cat, chunk, clone, column_stack, concatenate,  # noqa: F401,E501  # shape
                         dstack, expand, expand_as, expand_dims, eye, flatten, flip, full, full_like,
                         hstack, linspace, moveaxis, movedim, ones, ones_like, pad, permute, rand,
                         randn, ravel, repeat, roll, squeeze, tile, unsqueeze, vstack, zeros,
                         zeros_like)
# reduce: reductions, scans, linear algebra, sorting
from .functional import (argmax, argmin, argsort, cumprod, cumsum, diag, diagonal, diff, dot,  # noqa: F401
                         einsum, inner, kron, min, outer, prod, sort, std, tensordot, trace, tril, triu,
                         var)
from .functional import (eq, equal, ge, greater, greater_equal, gt, le, less, less_equal,  # noqa: F401
                         lt, ne, not_equal)  # comparisons (not differentiable)
from . import forward  # noqa: F401
from . import safetensors  # noqa: F401
from .extras import MissingDependencyError  # noqa: F401
from .forward import hessian, hvp, jacfwd, jacrev, jvp, linearize, vjp  # noqa: F401
from .gradcheck import gradcheck, gradgradcheck  # noqa: F401
from .graph import Graph, toposort  # noqa: F401
from .jit import CompiledStep, CompileWarning, Plan, compile, io_callback  # noqa: F401
from .modes import (detect_anomaly, enable_grad, is_anomaly_enabled, is_grad_enabled,  # noqa: F401
                    no_grad, scope)
from .random import manual_seed  # noqa: F401
from .release import Released, keep_values  # noqa: F401
from .tensor import Tensor, tensor  # noqa: F401
from .versions import increment_version  # noqa: F401

# What ``from tinygraph import *`` gives and the API reference lists: everything imported above
# (tests/test_docs.py checks that the two agree).
__all__ = [
    "functional", "nn", "ops", "optim", "random",
    "backward", "grad", "grad_of", "value_and_grad",
    "AnomalyError", "CompileError", "DTypeError", "GradcheckError", "GraphError", "ShapeError",
    "StateDictError", "TinygraphError", "MissingDependencyError", "io_callback",
    "abs", "as_tensor", "astype", "broadcast_to", "clip", "concat", "cross_entropy", "embedding", "exp",
    "linear_cross_entropy", "log", "log_softmax", "logsumexp", "matmul", "max", "maximum", "mean",
    "mse_loss", "relu", "reshape", "sigmoid", "softmax", "split", "sqrt", "stack", "sum", "swapaxes",
    "tanh", "transpose", "where",
    "absolute", "acos", "acosh", "add", "arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctan2",
    "arctanh", "asin", "asinh", "atan", "atan2", "atanh", "ceil", "clamp", "cos", "cosh", "div", "divide",
    "exp2", "expm1", "fabs", "floor", "fmax", "fmin", "hypot", "isfinite", "isinf", "isnan", "log1p",
    "log2", "log10", "logaddexp", "minimum", "mod", "mul", "multiply", "nan_to_num", "neg", "negative",
    "pow", "power", "reciprocal", "remainder", "sign", "sin", "sinh", "square", "sub", "subtract", "tan",
    "true_divide",
    "arange", "array_split", "cat", "chunk", "clone", "column_stack", "concatenate", "dstack", "expand",
    "expand_as", "expand_dims", "eye", "flatten", "flip", "full", "full_like", "hstack", "linspace",
    "moveaxis", "movedim", "ones", "ones_like", "pad", "permute", "rand", "randn", "ravel", "repeat",
    "roll", "squeeze", "tile", "unsqueeze", "vstack", "zeros", "zeros_like",
    "argmax", "argmin", "argsort", "cumprod", "cumsum", "diag", "diagonal", "diff", "dot", "einsum",
    "inner", "kron", "min", "outer", "prod", "sort", "std", "tensordot", "trace", "tril", "triu", "var",
    "eq", "equal", "ge", "greater", "greater_equal", "gt", "le", "less", "less_equal", "lt", "ne",
    "not_equal",
    "forward", "hessian", "hvp", "jacfwd", "jacrev", "jvp", "linearize", "vjp", "gradcheck", "gradgradcheck",
    "Graph", "toposort", "CompiledStep", "CompileWarning", "Plan", "compile",
    "detect_anomaly", "enable_grad", "is_anomaly_enabled", "is_grad_enabled", "no_grad", "scope",
    "manual_seed", "Released", "keep_values", "Tensor", "tensor", "increment_version",
]

__version__ = "0.1.0"
