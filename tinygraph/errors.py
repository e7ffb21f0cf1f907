"""Exceptions raised by tinygraph.

Every error names the op, the shapes or values involved and, where there is one, the fix. They subclass
the builtin exception a Python user would expect (``ValueError``/``TypeError``), so ``except ValueError``
keeps working.
"""


class TinygraphError(Exception):
    """Base class of every tinygraph error."""


class ShapeError(TinygraphError, ValueError):
    """Shapes that an op cannot combine, e.g. ``matmul: cannot multiply (3, 4) by (5, 2)``."""


class DTypeError(TinygraphError, TypeError):
    """A dtype an op or a tensor does not accept (object/str arrays, integer tensors with grad)."""


class GraphError(TinygraphError, RuntimeError):
    """Misuse of the graph: a second backward through freed arrays, non-scalar backward without grad."""


class AnomalyError(TinygraphError, FloatingPointError):
    """Raised inside ``detect_anomaly()`` at the first NaN/Inf in a forward value or a gradient."""


class GradcheckError(TinygraphError, AssertionError):
    """Analytic and numerical gradients disagree; the message names the input and the worst index."""


class StateDictError(TinygraphError, KeyError):
    """``load_state_dict`` got a missing, unexpected or mis-shaped entry."""

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CompileError(TinygraphError, TypeError):
    """``tg.compile`` cannot trace or replay a step: a bad argument or result, or something a
    replay could not repeat (see ``tinygraph.jit``)."""


class ExportError(TinygraphError, ValueError):
    """A model that cannot be exported: for ``tinygraph.export.to_onnx`` an op without an ONNX mapping,
    a shape fixed at trace time on a dynamic axis, a bad argument (see ``tinygraph.export``); for
    ``rnn_models.to_torch`` a model or a cell's step that torch cannot express (an op without a torch
    function, a step depending on the batch size)."""
