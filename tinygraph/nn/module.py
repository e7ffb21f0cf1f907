"""Parameter and Module: a tree of named parameters, as in PyTorch.

Assigning a ``Parameter`` or a ``Module`` to an attribute registers it; ``named_parameters`` walks the
tree in assignment order with dotted names (``encoder.weight_ih_l0``), so state dicts are ordered and
deterministic.
"""
from collections.abc import Mapping

import numpy as np

from ..errors import DTypeError, StateDictError
from ..tensor import Tensor, to_array
from ..tracing import CALLS, RECORDERS


class Parameter(Tensor):
    """A leaf tensor that requires grad and is registered by the Module that holds it."""
    __slots__ = ()

    def __init__(self, data, requires_grad=True, name=None, dtype=None):
        array = to_array(data, dtype, what="Parameter")
        if array.dtype.kind != "f":
            array = array.astype(np.float64)
        super().__init__(array, requires_grad=requires_grad, name=name)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of layers and models. Subclasses set attributes in ``__init__`` and define ``forward``."""

    def __init__(self):
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() before "
                                 f"assigning attributes")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
            if value.name is None:
                value.name = name
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def register_parameter(self, name, value):
        """``setattr(self, name, value)`` (PyTorch's spelling): a ``Parameter`` is registered under
        ``name``, replacing what was there."""
        setattr(self, name, value)

    def add_module(self, name, module):
        """``setattr(self, name, module)`` (PyTorch's spelling): a ``Module`` is registered as a child."""
        setattr(self, name, module)

    def forward(self, *args, **kwargs):
        """The computation, which every subclass defines; ``module(...)`` calls it."""
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        if CALLS:  # tinygraph.export is tracing: it may record this call as one node (tinygraph.tracing)
            return CALLS[-1](self, args, kwargs)
        return self.forward(*args, **kwargs)

    # --- the tree -------------------------------------------------------------------------------
    def named_modules(self, prefix="", _seen=None):
        """``(dotted path, module)`` depth-first in registration order; a shared module is listed once."""
        _seen = set() if _seen is None else _seen
        if id(self) in _seen:
            return
        _seen.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name, _seen)

    def children(self):
        """An iterator over the direct submodules, in registration order."""
        return iter(self._modules.values())

    def modules(self):
        """An iterator over this module and every submodule, depth-first (``named_modules`` without
        the names)."""
        return (m for _, m in self.named_modules())

    def named_parameters(self, prefix=""):
        """``(dotted name, Parameter)`` for every parameter of the tree, in registration order
        (``"encoder.weight_ih_l0"``); a shared parameter is listed once, under its first name."""
        seen = set()
        for path, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                if id(p) not in seen:  # a shared parameter is listed once
                    seen.add(id(p))
                    yield (f"{path}.{name}" if path else name), p

    def parameters(self):
        """The parameters of ``named_parameters``, as a list (what an optimizer takes)."""
        return [p for _, p in self.named_parameters()]

    def zero_grad(self):
        """Set every parameter's ``grad`` to None (the next backward starts from nothing)."""
        if RECORDERS:  # tinygraph.compile: the call becomes a unit of the plan
            RECORDERS[-1].optimizer(self, self._zero_grad, ())
        else:
            self._zero_grad()

    def _zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def train(self, mode=True):
        """Set ``training`` to ``mode`` on this module and every submodule (dropout is active only in
        training); returns self."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        """``train(False)``: evaluation mode (dropout off); returns self."""
        return self.train(False)

    def num_parameters(self):
        """The number of scalar parameters, each shared parameter counted once."""
        return sum(p.size for p in self.parameters())

    # --- state ----------------------------------------------------------------------------------
    def state_dict(self):
        """``{dotted name: ndarray copy}`` in registration order."""
        return {name: p._data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state, strict=True):
        """Copy arrays into the parameters, checking names and shapes; casts to each parameter's dtype.

        Accepts any mapping of name -> array-like (e.g. a PyTorch state_dict converted with
        ``{k: v.numpy() for k, v in sd.items()}``). Raises ``StateDictError`` naming every missing,
        unexpected or mis-shaped entry; nothing is modified unless all entries fit.
        """
        owner = f"load_state_dict for {type(self).__name__}"
        if not isinstance(state, Mapping):
            raise StateDictError(f"{owner}: expected a mapping of name -> array, got {type(state).__name__}")
        own = dict(self.named_parameters())
        arrays, problems = {}, []
        for k, v in state.items():
            try:
                arrays[k] = np.asarray(v._data if isinstance(v, Tensor) else v)
            except ValueError as exc:  # ragged nested lists
                problems.append(f"entry {k!r} is not an array ({exc})")
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and missing:
            problems.append(f"missing keys {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys {unexpected}")
        for k, p in own.items():
            if k not in arrays:
                continue
            if arrays[k].shape != p.shape:
                problems.append(f"shape mismatch for {k!r}: the model has shape {p.shape}, the state dict "
                                f"has shape {arrays[k].shape}")
            elif arrays[k].dtype.kind not in "fiu":
                problems.append(f"entry {k!r} has dtype {arrays[k].dtype}; expected numbers")
        if problems:  # nothing has been modified yet: loading is all-or-nothing
            raise StateDictError(f"{owner}: " + "; ".join(problems))
        for k, p in own.items():
            if k in arrays:
                p.data = arrays[k].astype(p.dtype, copy=True)
        return self

    def to(self, dtype):
        """Cast every parameter to ``dtype`` (float32/float64) in place; returns self."""
        if np.dtype(dtype).kind != "f":
            raise DTypeError(f"{type(self).__name__}.to: parameters must be floating point, got {np.dtype(dtype)}")
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = None
        return self

    def extra_repr(self):
        """The text inside ``Name(...)`` in ``repr(module)``: the constructor's arguments; a subclass
        overrides it."""
        return ""

    def __repr__(self):
        lines = [f"  ({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + ("\n" + "\n".join(lines) + "\n)" if lines else ")")
