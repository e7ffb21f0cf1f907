"""tinygraph: a small, exact autodiff engine whose computational graph is an object you can hold."""
from . import functional, nn, ops, optim, random  # noqa: F401
from .autograd import backward, grad, grad_of, value_and_grad  # noqa: F401
from .errors import (AnomalyError, DTypeError, GradcheckError, GraphError, ShapeError,  # noqa: F401
                     StateDictError, TinygraphError)
from .functional import (abs, as_tensor, astype, broadcast_to, clip, concat, cross_entropy,  # noqa: F401
                         embedding, exp, linear_cross_entropy, log, log_softmax, logsumexp, matmul,
                         max, maximum, mean, mse_loss, relu, reshape, sigmoid, softmax, split, sqrt,
                         stack, sum, swapaxes, tanh, transpose, where)
from . import forward  # noqa: F401
from .forward import hessian, hvp, jacfwd, jacrev, jvp, linearize, vjp  # noqa: F401
from .gradcheck import gradcheck, gradgradcheck  # noqa: F401
from .graph import Graph, toposort  # noqa: F401
from .modes import (detect_anomaly, enable_grad, is_anomaly_enabled, is_grad_enabled,  # noqa: F401
                    no_grad, scope)
from .random import manual_seed  # noqa: F401
from .release import Released, keep_values  # noqa: F401
from .tensor import Tensor, tensor  # noqa: F401

__version__ = "0.1.0"
