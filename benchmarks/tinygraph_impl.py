"""The tinygraph side of the training-step benchmark: ``rnn_models.RNN``/``LSTM`` + ``tg.nn.Linear``.

Same model, data and parameters as ``baselines`` (PyTorch names), so its gradients can be checked
equal to the hand-written numpy BPTT before anything is timed.
"""
import numpy as np

import tinygraph as tg
from rnn_models import LSTM, RNN

from .baselines import LR, init_params


class Model(tg.nn.Module):
    """x (T, B, V) -> logits (T, B, V) through one recurrent layer and a linear head."""

    def __init__(self, cell, H, V, dtype):
        super().__init__()
        layer = {"rnn": RNN, "lstm": LSTM}[cell]
        self.rnn = layer(V, H, dtype=dtype)
        self.head = tg.nn.Linear(H, V, dtype=dtype)

    def loss(self, x, targets):
        """Mean softmax cross-entropy over all T*B positions: the head and the loss in one fused node
        (``tg.linear_cross_entropy``, equal to ``cross_entropy(self.head(out))``)."""
        out = self.rnn(x)[0]
        return tg.linear_cross_entropy(out, self.head.weight, self.head.bias, targets)


def build(cell, params_np, dtype):
    H, V = params_np["weight_hh_l0"].shape[1], params_np["head.weight"].shape[0]
    model = Model(cell, H, V, np.dtype(dtype))
    model.load_state_dict({(k if k.startswith("head.") else "rnn." + k): v for k, v in params_np.items()})
    return model


class NotAvailable(RuntimeError):
    """The implementation asked for does not exist in this version of tinygraph."""


def compile_available():
    """True if this tinygraph has ``tg.compile`` (trace one training step once, replay it)."""
    return callable(getattr(tg, "compile", None))


def make_step(cell, dtype, B, H, V, T, seed, lr=LR, compiled=False):
    """(model, step_fn): step_fn(x, targets) -> loss before an in-place SGD update.

    With ``compiled``, the same step function is handed to ``tg.compile`` and its replay is timed
    (eager: every step builds and walks the graph again); NotAvailable if tinygraph has no compile.
    """
    if compiled and not compile_available():
        raise NotAvailable("tinygraph.compile does not exist in this version of tinygraph")
    model = build(cell, init_params(cell, H, V, seed, dtype), dtype)
    return model, sgd_step(model, lr, compiled)


def sgd_step(model, lr, compiled=False):
    """``step(x, targets) -> loss``: ``model.loss`` forward, backward and an SGD update through
    ``tg.optim`` (an update ``tg.compile`` replays as one unit), eager or through ``tg.compile``."""
    optimizer = tg.optim.SGD(model.parameters(), lr=lr)

    def step(x, targets):
        loss = model.loss(tg.Tensor._wrap(x), targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss.item()
    return tg.compile(step) if compiled else step


def loss_and_grads(cell, params_np, x, targets):
    """(loss, {baseline name: grad}) for one forward + backward, parameters unchanged."""
    model = build(cell, params_np, x.dtype)
    loss = model.loss(tg.Tensor._wrap(x), targets)
    loss.backward()
    grads = {name.removeprefix("rnn."): p.grad for name, p in model.named_parameters()}
    return loss.item(), grads
