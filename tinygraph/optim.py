"""Optimisers with PyTorch's update rules and defaults: ``SGD``, ``Adagrad``, ``RMSprop``, ``Adam``.

An optimiser holds a flat list of parameters, its hyper-parameters (``opt.defaults``; ``opt.lr`` is a
settable shortcut for schedules) and, per parameter, a dict of state arrays created at that
parameter's first update. ``step()`` updates every ``p.data`` in place from ``p.grad`` with plain
numpy — no graph nodes — so a float32 parameter stays float32; a parameter whose grad is None is
skipped, as in PyTorch.

``state_dict()`` is flat, with string keys and only ndarrays or numbers as values, so
``np.savez(path, **opt.state_dict())`` saves it without pickle::

    {"num_params": 2, "lr": 0.001, "betas": array([0.9, 0.999]), "eps": 1e-08, ...,
     "state.0.step": 3, "state.0.exp_avg": array(...), "state.0.exp_avg_sq": array(...), ...}

``load_state_dict`` restores the hyper-parameters and the state (as PyTorch does) after checking the
parameter count, every key and every shape; on any mismatch it raises ``StateDictError`` and changes
nothing.
"""
import numbers
from collections.abc import Mapping

import numpy as np

from .errors import ShapeError, StateDictError
from .modes import enable_grad
from .tensor import Tensor
from .tracing import RECORDERS
from .versions import record_writes


def _parameter_list(params, owner):
    """``params`` (e.g. ``model.parameters()``) as a list of distinct floating-point leaf Tensors."""
    if isinstance(params, Tensor):
        raise TypeError(f"{owner}: params must be an iterable of Parameters, got a single Tensor; "
                        f"pass [tensor] or model.parameters()")
    if hasattr(params, "named_parameters"):
        raise TypeError(f"{owner}: got the module {type(params).__name__} itself; pass model.parameters()")
    try:
        params = list(params)
    except TypeError:
        raise TypeError(f"{owner}: params must be an iterable of Parameters (e.g. model.parameters()), "
                        f"got {type(params).__name__}") from None
    if not params:
        raise ValueError(f"{owner}: got an empty parameter list; the model has no parameters to optimise")
    seen = set()
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"{owner}: params[{i}] is a {type(p).__name__}, not a Parameter/Tensor "
                            f"(pass model.parameters(), not model.named_parameters())")
        if not p.is_leaf:
            raise ValueError(f"{owner}: params[{i}] (shape {p.shape}) is computed by op {p.op.name}; "
                             f"only leaf tensors can be optimised")
        if p.dtype.kind != "f":
            raise ValueError(f"{owner}: params[{i}] has dtype {p.dtype}; only floating-point tensors "
                             f"can be optimised")
        if id(p) in seen:
            raise ValueError(f"{owner}: params[{i}] (shape {p.shape}) appears twice in the parameter "
                             f"list; it would be updated twice per step")
        seen.add(id(p))
    return params


def _lerp_(start, end, weight):
    """``start += weight * (end - start)`` in place, rounded exactly as ``torch.lerp``."""
    if abs(weight) < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (1 - weight)


class Optimizer:
    """Base class. Subclasses define ``_check`` (hyper-parameter validation), ``_state_names``
    and ``_update`` (the rule for one parameter, on arrays)."""

    def __init__(self, params, **defaults):
        self._check(defaults)
        self.params = _parameter_list(params, type(self).__name__)
        self.defaults = defaults
        self.state = [{} for _ in self.params]  # per parameter: {name: ndarray or int}, filled lazily

    lr = property(lambda self: self.defaults["lr"],
                  lambda self, value: self.defaults.__setitem__("lr", value),
                  doc="The learning rate; assign to it to schedule.")

    # --- the hooks subclasses fill --------------------------------------------------------------
    def _check(self, hp):
        """Raise ValueError for an invalid hyper-parameter dict ``hp``."""
        _nonnegative(self, hp, "lr")

    def _state_names(self, hp):
        """The state entries one updated parameter has under hyper-parameters ``hp``."""
        raise NotImplementedError

    def _update(self, param, grad, state, hp):
        """Update the array ``param`` in place from ``grad`` (same dtype, not to be mutated)."""
        raise NotImplementedError

    # --- the public API -------------------------------------------------------------------------
    def zero_grad(self, set_to_none=True):
        """Forget the gradients (``None``, PyTorch's default) or zero them in place."""
        if RECORDERS:  # tinygraph.compile: the call becomes a unit of the plan
            RECORDERS[-1].optimizer(self, self._zero_grad, (set_to_none,))
        else:
            self._zero_grad(set_to_none)

    def _zero_grad(self, set_to_none):
        for p in self.params:
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad = np.zeros_like(p._data)

    def step(self, closure=None):
        """One update of every parameter that has a gradient. ``closure`` (optional) recomputes the
        loss with gradients, as in PyTorch; its result is returned."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        if RECORDERS:  # tinygraph.compile: the update becomes a unit of the plan
            RECORDERS[-1].optimizer(self, self._step, ())
        else:
            self._step()
        return loss

    def _step(self):
        """The update itself, on arrays (what a compiled step replays)."""
        # Python floats keep float32 arithmetic float32 (a numpy float64 scalar would upcast).
        hp = {k: tuple(float(b) for b in v) if isinstance(v, tuple) else
              v if isinstance(v, bool) else float(v) for k, v in self.defaults.items()}
        written = []   # a graph built before this step refuses to backward (versions)
        try:
            for i, p in enumerate(self.params):
                grad = p.grad
                if grad is None:
                    continue
                grad = grad._data if isinstance(grad, Tensor) else np.asarray(grad)
                data = p._data
                if grad.shape != data.shape:
                    raise ShapeError(f"{type(self).__name__}.step: params[{i}] has shape {p.shape} but its "
                                     f"grad has shape {grad.shape}")
                self._update(data, grad if grad.dtype == data.dtype else grad.astype(data.dtype),
                             self.state[i], hp)
                written.append(data)
        finally:
            record_writes(written)

    def state_dict(self):
        """``{str: ndarray or number}`` (copies): hyper-parameters, ``num_params``, ``state.<i>.<name>``."""
        out = {"num_params": len(self.params)}
        for k, v in self.defaults.items():
            out[k] = np.array(v, dtype=np.float64) if isinstance(v, tuple) else v
        for i, state in enumerate(self.state):
            for name, value in state.items():
                out[f"state.{i}.{name}"] = value.copy() if isinstance(value, np.ndarray) else value
        return out

    def load_state_dict(self, state_dict):
        """Restore hyper-parameters and state saved by ``state_dict()`` (e.g. read back with
        ``dict(np.load(path))``). All-or-nothing: raises ``StateDictError`` naming every bad entry."""
        owner = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise StateDictError(f"{owner}: expected a mapping of str -> array/number, got "
                                 f"{type(state_dict).__name__}")
        problems = []
        expected = set(self.defaults) | {"num_params"}
        missing = [k for k in ["num_params", *self.defaults] if k not in state_dict]
        unexpected = [k for k in state_dict if k not in expected and not str(k).startswith("state.")]
        if missing:
            problems.append(f"missing keys {missing}")
        if unexpected:
            problems.append(f"unexpected keys {unexpected}")
        if problems:  # probably another optimiser's state: stop before interpreting the values
            raise StateDictError(f"{owner}: " + "; ".join(problems))

        count = _as_number(state_dict["num_params"])
        if count != len(self.params):
            raise StateDictError(f"{owner}: the state was saved for {count} parameters but this optimiser "
                                 f"has {len(self.params)}")
        hp = {k: _restore_hyperparameter(owner, k, state_dict[k], self.defaults[k]) for k in self.defaults}
        try:
            self._check(hp)
        except ValueError as exc:
            raise StateDictError(f"{owner}: the saved hyper-parameters are invalid: {exc}") from None

        names = self._state_names(hp)
        new_state = [{} for _ in self.params]
        for key, value in state_dict.items():
            if not str(key).startswith("state."):
                continue
            index, _, name = key[len("state."):].partition(".")
            if not index.isdigit() or int(index) >= len(self.params) or name not in names:
                problems.append(f"unexpected key {key!r} (expected state.<0..{len(self.params) - 1}>."
                                f"<{'|'.join(sorted(names)) or 'no state'}>)")
                continue
            i = int(index)
            if name == "step":
                step = _as_number(value)
                if not isinstance(step, numbers.Integral) or step < 0:
                    problems.append(f"{key}: step must be a non-negative integer, got {value!r}")
                new_state[i][name] = step
                continue
            array = np.asarray(value)
            if array.dtype.kind not in "fiu" or array.shape != self.params[i].shape:
                problems.append(f"{key}: expected shape {self.params[i].shape} (parameter {i}), got "
                                f"shape {array.shape} with dtype {array.dtype}")
                continue
            new_state[i][name] = array.astype(self.params[i].dtype, copy=True)
        for i, state in enumerate(new_state):
            if state and set(state) != names:
                absent = sorted(names - set(state))
                problems.append(f"state of parameter {i} lacks {[f'state.{i}.{n}' for n in absent]}")
        if problems:
            raise StateDictError(f"{owner}: " + "; ".join(problems))
        self.defaults.update(hp)
        self.state = new_state
        return self

    def __repr__(self):
        hp = ", ".join(f"{k}={v}" for k, v in self.defaults.items())
        return f"{type(self).__name__}({len(self.params)} parameters, {hp})"


def _as_number(value):
    """A 0-d array (as ``np.load`` returns) or a number -> a Python int/float; anything else unchanged."""
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "biuf":
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _restore_hyperparameter(owner, name, value, current):
    """The saved ``value`` converted to the type of the optimiser's ``current`` value."""
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise StateDictError(f"{owner}: hyper-parameter {name!r} must be numeric, got {value!r}")
    if isinstance(current, tuple):
        if array.shape != (len(current),):
            raise StateDictError(f"{owner}: hyper-parameter {name!r} must have {len(current)} values, "
                                 f"got shape {array.shape}")
        return tuple(float(v) for v in array)
    if array.ndim != 0:
        raise StateDictError(f"{owner}: hyper-parameter {name!r} must be a number, got shape {array.shape}")
    return bool(array) if isinstance(current, bool) else float(array)


def _nonnegative(opt, hp, *names):
    for name in names:
        value = hp[name]
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{type(opt).__name__}: {name} must be a number, got {value!r}")
        if not value >= 0:  # also rejects NaN
            raise ValueError(f"{type(opt).__name__}: {name} must be >= 0, got {value}")


def _add_weight_decay(grad, param, weight_decay):
    """L2 penalty folded into the gradient, as PyTorch's (coupled) ``weight_decay``."""
    return grad + weight_decay * param if weight_decay else grad


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, dampening, Nesterov and weight decay.

    Per parameter (PyTorch's rule; the buffer starts as the first gradient, undampened)::

        g = grad + weight_decay * p
        buf = g                                     (first step)
        buf = momentum * buf + (1 - dampening) * g  (later steps)
        g = g + momentum * buf if nesterov else buf (when momentum != 0)
        p -= lr * g
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False):
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening,
                         weight_decay=weight_decay, nesterov=bool(nesterov))

    def _check(self, hp):
        _nonnegative(self, hp, "lr", "momentum", "weight_decay")
        if hp["nesterov"] and (hp["momentum"] <= 0 or hp["dampening"] != 0):
            raise ValueError(f"SGD: nesterov=True needs momentum > 0 and dampening = 0, got "
                             f"momentum={hp['momentum']}, dampening={hp['dampening']}")

    def _state_names(self, hp):
        return {"momentum_buffer"} if hp["momentum"] != 0 else set()

    def _update(self, param, grad, state, hp):
        grad = _add_weight_decay(grad, param, hp["weight_decay"])
        momentum = hp["momentum"]
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.copy()
            else:
                buf *= momentum
                buf += (1 - hp["dampening"]) * grad
            grad = grad + momentum * buf if hp["nesterov"] else buf
        param -= hp["lr"] * grad


class Adagrad(Optimizer):
    """Adagrad: per-element step sizes shrink with the accumulated squared gradients.

    Per parameter, at step t = 1, 2, ... (``sum`` starts at ``initial_accumulator_value``)::

        g = grad + weight_decay * p
        sum += g * g
        p -= lr / (1 + (t - 1) * lr_decay) * g / (sqrt(sum) + eps)
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10):
        super().__init__(params, lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                         initial_accumulator_value=initial_accumulator_value, eps=eps)

    def _check(self, hp):
        _nonnegative(self, hp, "lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")

    def _state_names(self, hp):
        return {"step", "sum"}

    def _update(self, param, grad, state, hp):
        if not state:
            state.update(step=0, sum=np.full_like(param, hp["initial_accumulator_value"]))
        state["step"] += 1
        grad = _add_weight_decay(grad, param, hp["weight_decay"])
        clr = hp["lr"] / (1 + (state["step"] - 1) * hp["lr_decay"])
        state["sum"] += grad * grad
        param -= clr * grad / (np.sqrt(state["sum"]) + hp["eps"])


class RMSprop(Optimizer):
    """RMSprop: divide the gradient by a running RMS of recent gradients.

    Per parameter (all buffers start at zero)::

        g = grad + weight_decay * p
        square_avg = alpha * square_avg + (1 - alpha) * g * g
        if centered: grad_avg = lerp(grad_avg, g, 1 - alpha); v = square_avg - grad_avg ** 2
        else:        v = square_avg
        avg = sqrt(v) + eps
        if momentum > 0: buf = momentum * buf + g / avg; p -= lr * buf
        else:            p -= lr * g / avg
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False):
        super().__init__(params, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                         momentum=momentum, centered=bool(centered))

    def _check(self, hp):
        _nonnegative(self, hp, "lr", "alpha", "eps", "weight_decay", "momentum")

    def _state_names(self, hp):
        return ({"step", "square_avg"} | ({"momentum_buffer"} if hp["momentum"] > 0 else set())
                | ({"grad_avg"} if hp["centered"] else set()))

    def _update(self, param, grad, state, hp):
        if not state:
            state.update(step=0, **{name: np.zeros_like(param) for name in self._state_names(hp) - {"step"}})
        state["step"] += 1
        grad = _add_weight_decay(grad, param, hp["weight_decay"])
        alpha, square_avg = hp["alpha"], state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * grad * grad
        if hp["centered"]:
            grad_avg = state["grad_avg"]
            _lerp_(grad_avg, grad, 1 - alpha)
            avg = np.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = np.sqrt(square_avg)
        avg += hp["eps"]
        if hp["momentum"] > 0:
            buf = state["momentum_buffer"]
            buf *= hp["momentum"]
            buf += grad / avg
            param -= hp["lr"] * buf
        else:
            param -= hp["lr"] * grad / avg


class Adam(Optimizer):
    """Adam (Kingma & Ba) with PyTorch's bias correction, L2 ``weight_decay`` and optional AMSGrad.

    Per parameter, at step t = 1, 2, ... (moments start at zero)::

        g = grad + weight_decay * p
        exp_avg = lerp(exp_avg, g, 1 - beta1)
        exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * g * g
        v = max_exp_avg_sq = max(max_exp_avg_sq, exp_avg_sq) if amsgrad else exp_avg_sq
        p -= lr / (1 - beta1 ** t) * exp_avg / (sqrt(v) / sqrt(1 - beta2 ** t) + eps)
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False):
        try:
            betas = tuple(betas)
        except TypeError:
            raise TypeError(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}") from None
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=bool(amsgrad))

    def _check(self, hp):
        _nonnegative(self, hp, "lr", "eps", "weight_decay")
        betas = hp["betas"]
        if len(betas) != 2:
            raise ValueError(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}")
        for i, beta in enumerate(betas):
            if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not 0 <= beta < 1:
                raise ValueError(f"Adam: betas[{i}] must be in [0, 1), got {beta!r}")

    def _state_names(self, hp):
        return {"step", "exp_avg", "exp_avg_sq"} | ({"max_exp_avg_sq"} if hp["amsgrad"] else set())

    def _update(self, param, grad, state, hp):
        if not state:
            state.update(step=0, **{name: np.zeros_like(param) for name in self._state_names(hp) - {"step"}})
        state["step"] += 1
        step = state["step"]
        beta1, beta2 = hp["betas"]
        grad = _add_weight_decay(grad, param, hp["weight_decay"])
        _lerp_(state["exp_avg"], grad, 1 - beta1)
        exp_avg_sq = state["exp_avg_sq"]
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad
        if hp["amsgrad"]:
            np.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
            exp_avg_sq = state["max_exp_avg_sq"]
        step_size = hp["lr"] / (1 - beta1 ** step)
        denom = np.sqrt(exp_avg_sq) / (1 - beta2 ** step) ** 0.5 + hp["eps"]
        param -= step_size * state["exp_avg"] / denom
