"""Primitive ops. Importing this package registers every op in ``OPS``."""
from .base import OPS, Op, apply, unbroadcast  # noqa: F401
from . import elementwise, fused, head, layout, math, reduce, shape, sources  # noqa: F401  (registers the ops)
from .namespaces import NUMPY_VJP, TENSOR_VJP  # noqa: F401

__all__ = ["OPS", "Op", "apply", "unbroadcast", "NUMPY_VJP", "TENSOR_VJP"]
