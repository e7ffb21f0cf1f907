"""Forward-mode autodiff (dual numbers carried through ``apply``) and the function transforms built
on both modes: ``jvp``, ``linearize``, ``vjp``, ``jacfwd``, ``jacrev``, ``hessian``, ``hvp``.

Where tangents live. Inside ``with dual_level():`` a Tensor may carry a tangent: ``t._tangent`` is
None or a dict ``{level: tangent}``, one entry per open level the value is perturbed in. A tangent has
its primal's shape and dtype; it is an ndarray, or a Tensor when it must be differentiable itself.
``make_dual(primal, tangent)`` makes such a Tensor and ``unpack_dual(t)`` reads its tangent. While a
level is open in any thread, ``apply`` calls ``propagate(op, inputs, out)`` right after ``forward``
(otherwise it reads one global and goes on): for each visible level some input carries, the op's
``jvp`` computes the output's tangent from the inputs' tangents (None for an input without one), and
the engine broadcasts it to the output's shape and casts it to its dtype. Non-differentiable ops and
non-float outputs get no tangent; a jvp returning None means zero. Nothing is recorded for the tangent
under ``no_grad``: a loop of any length holds only its current values and their tangents (real-time
recurrent learning carries dh_t/dθ this way). The rule runs before ``apply`` can sweep (see
``tinygraph.release``), so it may read any value of its op, whatever ``saves`` declares.

Which namespace a rule runs in. ``NUMPY_VJP`` on arrays (tangents are ndarrays) unless the tangent
must be differentiable itself; then ``TENSOR_VJP`` on Tensors, recorded through ``apply``:

- gradients are recorded and the output or an input tangent requires grad (reverse over forward,
  e.g. ``grad`` of a function that calls ``jvp``);
- an outer level is visible (nesting, below).

Recorded tangents are graph nodes like any other, so memory then grows with the graph; a loop that
only carries tangents forward (RTRL) runs under ``no_grad``, on arrays.

The rule of level L runs with only the levels opened before L visible: its own ops carry the outer
levels' tangents but never L's (L's tangent of an L-tangent would start a rule of its own, and so on
without end).

Nesting (``jvp`` of ``jvp``) works. Levels are numbered as they open and each Tensor keeps one tangent
per level, so two directions that perturb the same value are never confused (JAX's perturbation
levels). A Tensor's tangents are computed outer level first, so the inner level's rule sees the
output's outer tangent already; the inner tangent, computed with Tensors, carries the outer level's
tangent: the mixed second derivative. Tangents of a level that has closed are ignored (and ``jvp``
removes the ones it read from its outputs).

Forward over reverse. While a level is visible, ``grad``, ``value_and_grad``, ``grad_of``, ``vjp``
and ``jacrev`` build their backward with ``create_graph``: the rules run as ops, ``apply`` gives each
result a tangent, and the gradients carry d(gradient)/dε. So ``hessian = jacfwd(jacrev(f))`` and
``hvp`` work. ``Tensor.backward`` stores arrays in ``.grad`` and carries no tangent.
"""
import itertools
import threading

import numpy as np

from . import functional as F
from .autograd import compute_gradient, grad_of
from .errors import DTypeError, GraphError, ShapeError
from .modes import _dual_levels, dual_levels, enable_grad, is_anomaly_enabled, is_grad_enabled, no_grad
from .ops import base
from .ops.base import Op, apply, check_finite
from .ops.lazy import materialize
from .ops.namespaces import NUMPY_VJP, TENSOR_VJP
from .tensor import Tensor

__all__ = ["dual_level", "make_dual", "unpack_dual", "derived_jvp", "jvp", "linearize", "vjp",
           "jacfwd", "jacrev", "hessian", "hvp"]

_numbers = itertools.count(1)  # level numbers are never reused: a closed level's tangents stay dead
_open = 0                      # levels open in all threads; apply's hook is installed while > 0
_lock = threading.Lock()


# --- the engine ------------------------------------------------------------------------------------
class dual_level:
    """``with dual_level() as level:`` opens a forward-mode level (PyTorch's ``forward_ad.dual_level``).

    Inside, ``make_dual`` attaches tangents of this level and ops propagate them. Levels nest; the
    innermost is the one ``make_dual`` and ``unpack_dual`` use by default. Leaving the block hides the
    level's tangents for good.
    """
    __slots__ = ("level", "_token")

    def __enter__(self):
        global _open
        self.level = next(_numbers)
        self._token = _dual_levels.set(_dual_levels.get() + (self.level,))
        with _lock:
            _open += 1
            base.tangent_hook = propagate
        return self.level

    def __exit__(self, *exc):
        global _open
        _dual_levels.reset(self._token)
        with _lock:
            _open -= 1
            if not _open:
                base.tangent_hook = None
        return False


def propagate(op, inputs, out):
    """Give ``out`` (just computed by ``op`` from ``inputs``) its tangent at every visible level an
    input carries one in, outer level first (``apply`` calls this while a level is open)."""
    for t in inputs:  # the common case inside a level, an op on untangented values, first
        if t._tangent is not None:
            break
    else:
        return
    levels = _dual_levels.get()
    if not levels or not op.differentiable or out._data.dtype.kind != "f":
        return
    carried = [t._tangent for t in inputs]
    for position, level in enumerate(levels):
        tangents = [None if d is None else d.get(level) for d in carried]
        if all(v is None for v in tangents):
            continue
        tangent = _rule(op, tangents, out, inputs, levels[:position])
        if tangent is not None:
            if out._tangent is None:
                out._tangent = {level: tangent}
            else:
                out._tangent[level] = tangent


def _rule(op, tangents, out, inputs, below):
    """``op.jvp`` for one level, in the namespace the module docstring names, with only the ``below``
    levels visible while it runs; the result fitted to ``out``'s shape and dtype."""
    tensors = bool(below) or (is_grad_enabled() and (out.requires_grad or any(
        isinstance(v, Tensor) and v.requires_grad for v in tangents)))
    token = _dual_levels.set(below)
    try:
        if tensors:
            tangents = [v if v is None or isinstance(v, Tensor) else Tensor._wrap(v) for v in tangents]
            result = op.jvp(TENSOR_VJP, tangents, out, *inputs)
        else:
            tangents = [v._data if isinstance(v, Tensor) else v for v in tangents]
            result = op.jvp(NUMPY_VJP, tangents, out._data, *[t._data for t in inputs])
    finally:
        _dual_levels.reset(token)
    if result is None:
        return None
    shape, dtype = out._data.shape, out._data.dtype
    if tensors and not isinstance(result, Tensor):
        result = Tensor._wrap(np.asarray(result))
    elif not tensors and type(result) is not np.ndarray:
        result = np.asarray(result._data if isinstance(result, Tensor) else result)
    if result.shape != shape:
        try:
            fits = np.broadcast_shapes(result.shape, shape) == shape
        except ValueError:
            fits = False
        if not fits:
            raise ShapeError(f"jvp of op '{op.name}': the rule returned a tangent of shape "
                             f"{result.shape}, which does not broadcast to the output's shape {shape}")
        result = F.broadcast_to(result, shape) if tensors else np.broadcast_to(result, shape)
    if result.dtype != dtype:
        result = F.astype(result, dtype) if tensors else result.astype(dtype)
    if is_anomaly_enabled():
        check_finite(out, result._data if tensors else result, "tangent")
    return result


def derived_jvp(op, B, tangents, out, inputs):
    """J v of ``op`` from its ``vjp`` alone (``Op.jvp``'s default), in either namespace.

    vjp(u) is linear in u, so s(u) = sum_k <vjp(u)_k, v_k> is linear too and ds/du = J v. The rule
    runs on Tensors for a zero placeholder u (the value does not matter: s is linear) and a
    backward in u gives J v. With ``TENSOR_VJP`` that backward is built with ``create_graph``, so the
    result is differentiable in the inputs and the tangents and carries the visible levels' tangents
    (its ops go through ``apply``); with ``NUMPY_VJP`` the arrays are wrapped and an array returned.
    """
    tensors = B is TENSOR_VJP
    if not tensors:
        out = Tensor._wrap(out)
        inputs = [Tensor._wrap(a) for a in inputs]
        tangents = [None if v is None else Tensor._wrap(v) for v in tangents]
    with enable_grad():
        u = Tensor._wrap(np.zeros(out.shape, out.dtype), requires_grad=True)
        total = None
        for g, v in zip(op.vjp(TENSOR_VJP, u, out, *inputs), tangents):
            if g is None or v is None:
                continue
            term = (g * v).sum()
            total = term if total is None else total + term
        if total is None or not total.requires_grad:  # the output depends on no tangent
            return None
    seed = np.ones((), total.dtype)
    # the walk keeps its small graph (garbage once this returns) rather than sweeping the user's
    # pending values (tinygraph.release) once per op
    with enable_grad() if tensors else no_grad():
        found = compute_gradient([total], [seed], [u], retain_graph=True, create_graph=tensors,
                                 release_first=False)
    jv = found.get(u)
    if jv is None:
        return None
    return jv if tensors else materialize(jv)


class _Alias(Op, register=False):
    """The identity, as a node: a dual made from a Tensor keeps the Tensor's graph and tangents."""
    name = "alias"
    saves = ()
    def forward(self, x): return x
    def vjp(self, B, g, out, x): return (g,)
    def jvp(self, B, tangents, out, x): return tangents[0]


_ALIAS = _Alias()


def _innermost(function, level):
    levels = _dual_levels.get()
    if level is None:
        if not levels:
            raise GraphError(f"{function}: no forward-mode level is open; call it inside "
                             f"`with tg.forward.dual_level():` (or use tg.jvp)")
        return levels[-1]
    if level not in levels:
        raise GraphError(f"{function}: level {level!r} is not open here; open levels: {levels}")
    return level


def _float_array(function, what, x):
    """``x``'s array (a Tensor's, or ``x`` as an ndarray); it must hold floats."""
    array = x._data if isinstance(x, Tensor) else np.asarray(x)
    if array.dtype.kind != "f":
        raise DTypeError(f"{function}: {what} has dtype {array.dtype} (shape {array.shape}); it must be "
                         f"floating point (float16, float32 or float64): write 2.0, not 2, or convert "
                         f"with .astype(np.float64)")
    return array


def _checked_tangent(function, what, primal, tangent, of="primal"):
    """``tangent`` for ``primal`` (an ndarray): an ndarray or Tensor of exactly its shape and dtype.
    A Python number or list takes the primal's dtype; an array or Tensor must already have it.
    ``of`` names what it must match in messages ("primal"; "output" for a cotangent)."""
    kind = "cotangent" if of == "output" else "tangent"
    if isinstance(tangent, (Tensor, np.ndarray, np.generic)):
        array = tangent._data if isinstance(tangent, Tensor) else np.asarray(tangent)
    else:
        try:
            array = np.asarray(tangent, dtype=primal.dtype)
        except (TypeError, ValueError):
            raise DTypeError(f"{function}: {what} is a {type(tangent).__name__}; a {kind} is an ndarray, "
                             f"a Tensor or a number of its {of}'s dtype {primal.dtype}") from None
    if array.shape != primal.shape:
        raise ShapeError(f"{function}: {what} has shape {array.shape} but its {of} has shape "
                         f"{primal.shape}; a {kind} has its {of}'s shape")
    if array.dtype != primal.dtype:
        raise DTypeError(f"{function}: {what} has dtype {array.dtype} but its {of} has dtype "
                         f"{primal.dtype}; a {kind} has its {of}'s dtype (convert it with "
                         f".astype(np.{primal.dtype}))")
    if isinstance(tangent, Tensor):
        return tangent
    return array if isinstance(tangent, np.ndarray) else array.copy()


def make_dual(primal, tangent, level=None, _function="make_dual", _what="tangent"):
    """A Tensor equal to ``primal`` that carries ``tangent`` at ``level`` (default: the innermost).

    primal: a float Tensor, ndarray or number; a Tensor stays connected to its graph (the dual is an
    identity node of it, so gradients flow to it) and keeps its tangents at other levels.
    tangent: an ndarray or Tensor of the primal's shape and dtype (a number or list takes the dtype);
    a Tensor that requires grad makes the result's tangents differentiable in it.
    """
    level = _innermost(_function, level)
    array = _float_array(_function, "the primal", primal)
    tangent = _checked_tangent(_function, _what, array, tangent)
    if isinstance(primal, Tensor) and (primal.op is not None or primal.requires_grad
                                       or primal._tangent is not None):
        dual = apply(_ALIAS, primal)
    else:
        dual = Tensor._wrap(array)
    dual._tangent = {**(dual._tangent or {}), level: tangent}
    return dual


def unpack_dual(tensor, level=None):
    """``(tensor, tangent)``: the tangent ``tensor`` carries at ``level`` (default: the innermost) as a
    Tensor, or None when it carries none (zero)."""
    level = _innermost("unpack_dual", level)
    tangent = None if tensor._tangent is None else tensor._tangent.get(level)
    if tangent is not None and not isinstance(tangent, Tensor):
        tangent = Tensor._wrap(tangent)
    return tensor, tangent


# --- forward-mode transforms ---------------------------------------------------------------------------
def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _outputs(function, fn, out):
    """``(outputs as a tuple of Tensors, whether fn returned one Tensor)``; GraphError otherwise."""
    if isinstance(out, Tensor):
        return (out,), True
    if isinstance(out, (tuple, list)) and out and all(isinstance(o, Tensor) for o in out):
        return tuple(out), False
    got = type(out).__name__ if not isinstance(out, (tuple, list)) else \
        f"a {type(out).__name__} of {', '.join(type(o).__name__ for o in out) or 'nothing'}"
    raise GraphError(f"{function}: fn {getattr(fn, '__name__', fn)!r} must return a Tensor or a "
                     f"non-empty tuple of Tensors, got {got}")


def _jvp(function, fn, primals, tangents):
    """``(out, tangents out)`` with the output structure of ``fn``; a None tangent: no tangent."""
    if len(primals) != len(tangents):
        raise ShapeError(f"{function}: {len(primals)} primals but {len(tangents)} tangents; pass one "
                         f"tangent per primal")
    with dual_level() as level:
        args = []
        for k, (p, v) in enumerate(zip(primals, tangents)):
            if v is None:
                args.append(p if isinstance(p, Tensor) else Tensor._wrap(np.asarray(p)))
            else:
                args.append(make_dual(p, v, level, function, f"tangents[{k}]"))
        out = fn(*args)
        outs, single = _outputs(function, fn, out)
        result = []
        for o in outs:
            v = None if o._tangent is None else o._tangent.get(level)
            if v is None:
                v = np.zeros(o.shape, o.dtype)
            result.append(v if isinstance(v, Tensor) else Tensor._wrap(v))
        for o in outs:  # what this level left on the outputs is dead once it closes
            if o._tangent is not None and level in o._tangent:
                rest = {k: v for k, v in o._tangent.items() if k != level}
                o._tangent = rest or None
    return (outs[0], result[0]) if single else (outs, tuple(result))


def jvp(fn, primals, tangents):
    """Forward mode: ``(fn(*primals), J v)`` in one pass (JAX's ``jax.jvp``).

    fn: ``fn(*tensors) -> Tensor`` or a tuple of Tensors. primals: a tuple (or list) of float
    Tensors, ndarrays or numbers. tangents: one per primal, of its shape and dtype. Returns
    ``(out, tangent_out)``, each a Tensor or a tuple of Tensors like ``fn``'s output;
    tangent_out[k] = sum_j d out_k / d primals[j] · tangents[j], of out_k's shape and dtype.
    """
    primals, tangents = _as_tuple(primals), _as_tuple(tangents)
    for k, p in enumerate(primals):
        _float_array("jvp", f"primals[{k}]", p)
    return _jvp("jvp", fn, primals, tangents)


def linearize(fn, *primals):
    """``(fn(*primals), f_jvp)`` with ``f_jvp(*tangents) = jvp(fn, primals, tangents)[1]``.

    Unlike JAX's, ``f_jvp`` stores no linear graph: each call runs fn forward again with the tangents
    (memory is one forward pass; time is one forward pass per call).
    """
    for k, p in enumerate(primals):
        _float_array("linearize", f"primals[{k}]", p)
    out = fn(*[p if isinstance(p, Tensor) else Tensor._wrap(np.asarray(p)) for p in primals])
    _outputs("linearize", fn, out)

    def f_jvp(*tangents):
        return _jvp("linearize", fn, primals, tangents)[1]
    return out, f_jvp


# --- reverse mode, JAX style --------------------------------------------------------------------------
def _grad_leaf(function, what, x):
    """A leaf that requires grad for the primal ``x``. A Tensor that requires grad is used as it is
    (gradients of the result stay differentiable in it); otherwise a fresh leaf shares the value and
    carries the tangents ``x`` carries (forward over reverse)."""
    array = _float_array(function, what, x)
    if isinstance(x, Tensor) and x.requires_grad:
        return x
    leaf = Tensor._wrap(array, requires_grad=True)
    if isinstance(x, Tensor) and x._tangent is not None:
        leaf._tangent = dict(x._tangent)
    return leaf


def vjp(fn, *primals):
    """Reverse mode: ``(fn(*primals), vjp_fn)`` (JAX's ``jax.vjp``).

    ``vjp_fn(cotangent)`` returns a tuple with one Tensor per primal, sum_k J_k^T cotangent_k, of
    the primal's shape and dtype. The cotangent is one array/Tensor of the output's shape, or a tuple
    of them when fn returns a tuple. vjp_fn may be called any number of times. Its results are
    differentiable (built with ``create_graph``) when a primal or a cotangent is a Tensor that
    requires grad, or while a forward-mode level is visible (they then carry tangents).
    """
    leaves = [_grad_leaf("vjp", f"primals[{k}]", p) for k, p in enumerate(primals)]
    held = any(isinstance(p, Tensor) and p.requires_grad for p in primals)
    with enable_grad():
        out = fn(*leaves)
    outs, single = _outputs("vjp", fn, out)

    def vjp_fn(cotangents):
        cotangents = (cotangents,) if single else _as_tuple(cotangents)
        if len(cotangents) != len(outs):
            raise ShapeError(f"vjp_fn: fn has {len(outs)} outputs but {len(cotangents)} cotangents "
                             f"were given; pass one per output")
        cotangents = [_checked_tangent("vjp_fn", f"cotangent {k}", o._data, c, of="output")
                      for k, (o, c) in enumerate(zip(outs, cotangents))]
        pairs = [(o, c) for o, c in zip(outs, cotangents) if o.requires_grad]
        create = held or bool(dual_levels()) or any(
            isinstance(c, Tensor) and c.requires_grad for c in cotangents)
        if not pairs:
            grads = [None] * len(leaves)
        else:
            grads = grad_of([o for o, _ in pairs], leaves, grad_outputs=[c for _, c in pairs],
                            retain_graph=True, create_graph=create, allow_unused=True)
        return tuple(Tensor._wrap(np.zeros_like(t._data)) if g is None else g
                     for t, g in zip(leaves, grads))
    return (outs[0] if single else outs), vjp_fn


# --- Jacobians and second derivatives ------------------------------------------------------------------
def _argnums(function, argnums, count):
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for i in nums:
        if not isinstance(i, int) or not -count <= i < count:
            raise ShapeError(f"{function}: argnums {argnums!r} does not fit the {count} arguments given")
    return tuple(i % count for i in nums)


def _with(args, nums, chosen):
    args = list(args)
    for i, x in zip(nums, chosen):
        args[i] = x
    return args


def _stacked(columns, shape, dtype, axis):
    """``columns`` (Tensors) stacked along ``axis`` and reshaped to ``shape``; zeros when empty."""
    if not columns:
        return Tensor._wrap(np.zeros(shape, dtype))
    return F.reshape(F.stack(columns, axis=axis), shape)


def _nest(jac, single, int_argnums):
    """``jac[output][argnum]`` shaped like JAX's result: no tuple for one output / an int argnums."""
    rows = [row[0] if int_argnums else tuple(row) for row in jac]
    return rows[0] if single else tuple(rows)


def jacfwd(fn, argnums=0):
    """Jacobian by forward mode: one ``jvp`` per element of the differentiated arguments.

    ``jacfwd(fn, argnums)(*args)`` has shape out.shape + args[argnums].shape (JAX's ``jax.jacfwd``);
    a tuple over ``argnums`` when it is a tuple, over outputs when fn returns a tuple. The result is
    a Tensor built from the tangents, so it is differentiable and carries outer levels' tangents.
    """
    def jacobian(*args):
        nums = _argnums("jacfwd", argnums, len(args))
        primals = [args[i] for i in nums]
        arrays = [_float_array("jacfwd", f"argument {i}", args[i]) for i in nums]

        def partial(*chosen):
            return fn(*_with(args, nums, chosen))
        columns = None
        for j, a in enumerate(arrays):
            for e in range(a.size):
                basis = np.zeros(a.size, a.dtype)
                basis[e] = 1
                tangents = [basis.reshape(a.shape) if k == j else None for k in range(len(arrays))]
                out, tangent_out = _jvp("jacfwd", partial, primals, tangents)
                outs, single = _outputs("jacfwd", fn, out)
                tangent_out = (tangent_out,) if single else tangent_out
                if columns is None:
                    columns = [[[] for _ in arrays] for _ in outs]
                for o, v in enumerate(tangent_out):
                    columns[o][j].append(v)
        if columns is None:  # every differentiated argument is empty: one plain call for the shapes
            out = partial(*primals)
            outs, single = _outputs("jacfwd", fn, out)
            columns = [[[] for _ in arrays] for _ in outs]
        jac = [[_stacked(columns[o][j], outs[o].shape + a.shape, outs[o].dtype, -1)
                for j, a in enumerate(arrays)] for o in range(len(outs))]
        return _nest(jac, single, isinstance(argnums, int))
    return jacobian


def jacrev(fn, argnums=0):
    """Jacobian by reverse mode: one ``vjp_fn`` call per output element.

    ``jacrev(fn, argnums)(*args)`` has shape out.shape + args[argnums].shape (JAX's ``jax.jacrev``),
    nested like ``jacfwd``'s. Inside a forward-mode level (``jacfwd(jacrev(f))``) the backward is
    built from ops, so the result carries tangents.
    """
    def jacobian(*args):
        nums = _argnums("jacrev", argnums, len(args))
        primals = [args[i] for i in nums]

        def partial(*chosen):
            return fn(*_with(args, nums, chosen))
        out, pullback = vjp(partial, *primals)
        outs, single = _outputs("jacrev", fn, out)
        shapes = [p.shape if isinstance(p, Tensor) else np.shape(p) for p in primals]
        jac = []
        for o, target in enumerate(outs):
            rows = [[] for _ in primals]
            for e in range(target.size):
                cotangents = [np.zeros(t.shape, t.dtype) for t in outs]
                cotangents[o].reshape(-1)[e] = 1
                for j, g in enumerate(pullback(cotangents[0] if single else cotangents)):
                    rows[j].append(g)
            jac.append([_stacked(rows[j], target.shape + shapes[j], target.dtype, 0)
                        for j in range(len(primals))])
        return _nest(jac, single, isinstance(argnums, int))
    return jacobian


def hessian(fn, argnums=0):
    """``jacfwd(jacrev(fn, argnums), argnums)``: forward over reverse. For a single-element output
    and an int ``argnums`` the result has shape out.shape + x.shape + x.shape."""
    return jacfwd(jacrev(fn, argnums), argnums)


def hvp(fn, primals, tangents):
    """Hessian-vector product of the single-element ``fn`` at ``primals`` along ``tangents`` by forward
    over reverse (the gradient's ``jvp``): one backward and one forward pass, no Hessian.

    primals, tangents: tuples as for ``jvp``. Returns sum_j H[k][j] · tangents[j] for each primal k:
    a Tensor for one primal, else a tuple of them.
    """
    primals, tangents = _as_tuple(primals), _as_tuple(tangents)
    for k, p in enumerate(primals):
        _float_array("hvp", f"primals[{k}]", p)

    def gradient(*xs):
        out, pullback = vjp(fn, *xs)
        if out.size != 1:
            raise GraphError(f"hvp: fn must return a single-element Tensor, got shape {out.shape}")
        return pullback(np.ones(out.shape, out.dtype))
    _, products = _jvp("hvp", gradient, primals, tangents)
    return products[0] if len(primals) == 1 else products
