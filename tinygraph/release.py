"""Releasing the values no gradient rule reads (PyTorch's saved tensors, minitorch's
``ctx.save_for_backward``).

Every op declares in ``saves`` which of its values its gradient rule reads (see ``tinygraph.ops.base``).
A released value is replaced by a ``Released`` placeholder that keeps ``shape``, ``dtype``, ``ndim``
and ``size``, so the graph can still be walked and drawn and rules can still read shapes; every other
use raises a ``GraphError`` that names the op, its scope and how to keep the value.
"""
from .errors import GraphError


class Released:
    """Stands for the value of a node the engine released.  Keeps ``shape``, ``dtype``, ``ndim``,
    ``size`` (and ``len``); arithmetic, indexing, numpy conversion and any other attribute raise
    ``GraphError``. ``repr`` says what it is, so walking or printing a graph never fails on it."""
    __slots__ = ("shape", "dtype", "ndim", "size", "op", "scope")

    def __init__(self, shape, dtype, op="?", scope=""):
        self.shape, self.dtype, self.ndim = tuple(shape), dtype, len(shape)
        self.size = 1
        for n in self.shape:
            self.size *= n
        self.op, self.scope = op, scope

    @classmethod
    def of(cls, tensor):
        """The placeholder for ``tensor``'s value (an op output)."""
        data = tensor.data
        return cls(data.shape, data.dtype, tensor.op.name if tensor.op is not None else "leaf",
                   tensor.scope)

    def error(self):
        return GraphError(
            f"the value of op '{self.op}' (scope '{self.scope or '<root>'}', shape {self.shape}, "
            f"{self.dtype}) was released after forward: no gradient rule reads it and nothing outside "
            f"the graph held the tensor. To keep such a value, hold a reference to the tensor (a "
            f"variable, a list), call .retain_grad() on it, or build the graph inside "
            f"tg.keep_values()")

    def _fail(self, *args, **kwargs):
        raise self.error()

    def __getattr__(self, name):  # only reached for what a placeholder does not have
        raise self.error()

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d value")
        return self.shape[0]

    def __repr__(self):
        return (f"<released {self.dtype} value of shape {self.shape} of op '{self.op}' "
                f"(scope '{self.scope or '<root>'}')>")

    __hash__ = object.__hash__
    # numpy's protocols: np.asarray(p), np.tanh(p), np.sum(p) and ndarray (op) p all end here
    __array__ = __array_ufunc__ = __array_function__ = _fail
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _fail
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _fail
    __pow__ = __rpow__ = __matmul__ = __rmatmul__ = __neg__ = __pos__ = __abs__ = __invert__ = _fail
    __and__ = __rand__ = __or__ = __ror__ = __xor__ = __rxor__ = _fail
    __lt__ = __le__ = __gt__ = __ge__ = __eq__ = __ne__ = _fail
    __getitem__ = __setitem__ = __iter__ = __contains__ = _fail
    __bool__ = __float__ = __int__ = __index__ = __complex__ = _fail
    __iadd__ = __isub__ = __imul__ = __itruediv__ = _fail
