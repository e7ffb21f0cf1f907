"""Context-local switches read while ops are built: grad recording, the scope path, anomaly mode,
the open forward-mode levels.

They live in ``contextvars`` so threads and async tasks do not see each other's settings.
"""
import contextvars

_grad_enabled = contextvars.ContextVar("tinygraph_grad_enabled", default=True)
_scope_path = contextvars.ContextVar("tinygraph_scope", default="")
_anomaly = contextvars.ContextVar("tinygraph_anomaly", default=False)
_step = contextvars.ContextVar("tinygraph_step", default=None)
_dual_levels = contextvars.ContextVar("tinygraph_dual_levels", default=())  # see tinygraph.forward

is_grad_enabled = _grad_enabled.get
current_scope = _scope_path.get
is_anomaly_enabled = _anomaly.get
current_step = _step.get
dual_levels = _dual_levels.get  # the forward-mode levels visible here, outermost first


class _setting:
    """Set a context variable for the duration of a ``with`` block (a class, not a generator: this
    runs once per op-building scope, e.g. twice per unrolled time step, and costs a third as much)."""
    __slots__ = ("var", "value", "token")

    def __init__(self, var, value):
        self.var, self.value = var, value

    def __enter__(self):
        self.token = self.var.set(self.value)

    def __exit__(self, *exc):
        self.var.reset(self.token)
        return False


def no_grad():
    """Build ops without recording the graph (inference, optimiser updates)."""
    return _setting(_grad_enabled, False)


def enable_grad():
    """Re-enable graph recording inside a ``no_grad()`` block."""
    return _setting(_grad_enabled, True)


def scope(name):
    """Stamp every node created inside with ``<outer>/<name>``, e.g. ``lstm/t=3/forget_gate``.

    Nestable; the path is a plain string so nodes pay one context-variable read each.
    """
    name = str(name)
    if not name or "/" in name:
        raise ValueError(f"scope: name must be non-empty and contain no '/', got {name!r}")
    outer = _scope_path.get()
    return _setting(_scope_path, f"{outer}/{name}" if outer else name)


def in_step(loop, t):
    """Mark every node created inside as belonging to time step ``t`` of ``loop`` (a
    ``tinygraph.graph.Loop``): the recurrent node records its unrolled structure this way, so the
    ``Graph`` knows which nodes form which step without reading scope strings."""
    return _setting(_step, (loop, t))


def detect_anomaly():
    """Check every forward output and every gradient for NaN/Inf; raise ``AnomalyError`` at the first.

    The error names the op, its scope (time step, gate), its input shapes and the ``file:line`` where the
    node was created (recorded only while this mode is on, so normal runs pay nothing).
    """
    return _setting(_anomaly, True)
