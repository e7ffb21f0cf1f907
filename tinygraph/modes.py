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

# Read for every op and tensor built: the variables' own ``get``, a builtin that costs no Python frame
# (a function around it adds 17 ns a call, 5% of a small op). The functions below say what they are.
_is_grad_enabled, _is_anomaly_enabled = _grad_enabled.get, _anomaly.get
_current_scope, _current_step = _scope_path.get, _step.get


def is_grad_enabled():
    """Whether ops built here record the graph: True, except inside ``no_grad()`` (and not inside an
    ``enable_grad()`` nested in it). Per thread and async task."""
    return _grad_enabled.get()


def is_anomaly_enabled():
    """Whether ops built here check for NaN/Inf: True inside ``detect_anomaly()``."""
    return _anomaly.get()


def current_scope():
    """The scope path new nodes get, e.g. ``"lstm/t=3/forget_gate"``; ``""`` outside any ``scope()``."""
    return _scope_path.get()


def current_step():
    """``(loop, t)`` while a recurrent node builds its time step ``t`` (``in_step``), else None."""
    return _step.get()


def dual_levels():
    """The forward-mode levels open here (``tinygraph.forward.dual_level``), outermost first; ``()``
    when forward mode is off."""
    return _dual_levels.get()


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
