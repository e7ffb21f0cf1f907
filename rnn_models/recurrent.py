"""The recurrent node: any step function plus a delayed state edge, folded into one step or unrolled.

The cell protocol, in one place. A *cell* is any callable — a ``tinygraph.nn.Module`` or a plain
function — that computes one time step from tinygraph ops::

    new_state = cell(x_t, state)            # the step's output is the state (its first tensor)
    output, new_state = cell(x_t, state)    # or an output of its own beside the state

``x_t`` is (B, ...) — one time step of the input, B the batch — and ``state`` is a Tensor or a tuple of
Tensors, each (B, ...). ``new_state`` must have the structure, shapes and dtypes of ``state``; a cell
with a tuple state that also returns an output returns ``(output, (s_1, ..., s_k))``. Nothing else is
required: the zero initial state comes from ``Recurrent(cell, state_size=...)`` (or ``state0``), the
dtype from the cell's parameters (float64 for a cell without any).

Two optional hooks a cell may define (``RNNCell``, ``LSTMCell``, ``GRUCell`` do):

- ``initial_state(batch, dtype) -> state``: the zeros when neither ``state0`` nor ``state_size`` is
  given.
- ``project(xs) -> ps`` and ``recurrent_step(p_t, state) -> new_state`` with
  ``cell(x, s) == cell.recurrent_step(cell.project(x), s)``: ``project`` is the part of a step that
  reads only the input (``x @ W.T + b``); it has no recurrence, so ``unroll`` computes it for the whole
  sequence in one node and each step slices its row — one large matmul instead of T small ones.

``Recurrent(cell)`` holds ONE definition of the step. ``folded()`` traces it once on placeholder leaves
into a ``Graph`` whose ``loop_edges`` map each new state to the state input of the next step (JAX's
``lax.scan`` body); ``unroll(xs)`` runs the same cell T times, each step inside ``tg.scope("t=<k>")``,
with one set of shared parameter leaves, and records in a ``tg.graph.Loop`` which nodes form each step
and which tensors carry the state between steps (``Graph.steps``, ``Graph.state_edges``).
Backpropagation through time is ``loss.backward()`` over the unrolled graph.
"""
import numbers

import numpy as np

import tinygraph as tg
from tinygraph import functional as F
from tinygraph import release
from tinygraph.graph import Loop
from tinygraph.modes import current_scope, in_step
from tinygraph.nn import Module
from tinygraph.tensor import Tensor


def check_lengths(lengths, batch, steps, who):
    """``lengths`` (B,) as an int array with values in [1, T], else a clear tg error."""
    array = lengths.data if isinstance(lengths, Tensor) else np.asarray(lengths)
    if array.dtype.kind not in "iu":
        raise tg.DTypeError(f"{who}: lengths must be integers (one sequence length per batch row), got "
                            f"dtype {array.dtype}")
    if array.shape != (batch,):
        raise tg.ShapeError(f"{who}: lengths must have shape (B,) = ({batch},), got {array.shape}")
    if array.min() < 1 or array.max() > steps:
        raise tg.ShapeError(f"{who}: lengths must lie in [1, T] = [1, {steps}], got values from "
                            f"{array.min()} to {array.max()}")
    return array.astype(np.int64)


def check_finite_input(xs, batch_first, who):
    """In anomaly mode: raise at the first NaN/Inf of a (T, B, ...) input, naming its time step.

    The whole sequence may be projected in one node before the steps run, so the step scopes would
    never see it; the input is checked here instead.
    """
    bad = ~np.isfinite(xs)
    if bad.any():
        first = np.argwhere(bad.swapaxes(0, 1) if batch_first else bad)[0]
        t, b = int(first[0]), int(first[1])
        value = (xs[b, t] if batch_first else xs[t, b])[tuple(first[2:])]
        outer = current_scope()
        feature = tuple(int(i) for i in first[2:])
        raise tg.AnomalyError(
            f"{'NaN' if np.isnan(value) else 'Inf'} in the input of {who} at scope "
            f"'{outer + '/' if outer else ''}t={t}' (time step {t}, batch row {b}, feature "
            f"{feature[0] if len(feature) == 1 else feature}); clean or mask the data before the "
            f"recurrent layer")


# A batched input projection's gradient is as large as the projection, and backward holds it beside
# the slab and the head's gradient: chunks of this size bound it (hand-written BPTT holds none). At
# (B, H) = (32, 128) a 1 MiB chunk is 32 RNN steps; at T = 2000 8 MiB chunks held 7 MiB more at the
# peak, and steps with 1 MiB chunks measured as fast, eager and compiled, at (B, H, V, T) = (32, 128,
# 64, 25 to 2000) and (64, 512, 128, 100).
PROJECTION_CHUNK_BYTES = 2**20


def cell_name(cell):
    """How errors name a cell: its class for a Module, its qualified name for a function."""
    if isinstance(cell, Module):
        return type(cell).__name__
    return getattr(cell, "__qualname__", None) or type(cell).__name__


def flat(state):
    """A state as a tuple of tensors (a bare Tensor is a 1-tuple)."""
    return (state,) if isinstance(state, Tensor) else tuple(state)


def name_states(state, names):
    """Name the state tensors a cell left unnamed ("h", "c", ...): pictures and gradient plots find
    the state by its name."""
    for name, s in zip(names, flat(state)):
        if s.name is None:
            s.name = name


def describe(value):
    """What a cell returned, for error messages: ``Tensor(2, 4) float64``, ``tuple(Tensor(2, 4)
    float64, ...)``, ``int``."""
    if isinstance(value, Tensor):
        return f"Tensor{value.shape} {value.dtype}"
    if isinstance(value, (tuple, list)):
        return f"{type(value).__name__}({', '.join(describe(v) for v in value)})"
    if isinstance(value, np.ndarray):  # also the view Tensor.data hands out
        return "ndarray"
    return type(value).__name__


class Recurrent(Module):
    """The recurrent node around ``cell``: any step ``(x_t, state) -> state`` (see the module docstring).

    Args:
        cell: a Module or a plain callable following the cell protocol.
        state_size: the zero state's per-row shape when ``state0`` is not given: an int H for one
            (B, H) tensor, or a tuple of ints/shapes for a tuple state (``(H, H)``: LSTM's (h, c)).
            None: the cell's ``initial_state`` hook.
        input_size: per-step input features, for ``folded()`` (default: the cell's ``input_size``).
        state_names: names of the state tensors in pictures (default: the cell's ``state_names``,
            else "h" for one tensor and "s0", "s1", ... for a tuple).

    ``unroll`` is this reference loop, with every step recorded in the graph::

        state = state0 if given else zeros(state_size)   # a Tensor or a tuple of (B, ...) tensors
        outputs = []
        for t in range(T):                               # reversed(range(T)) when reverse=True
            with tg.scope(f"t={t}"):
                result = cell(xs[t], state)               # xs[t]: (B, ...)
                output, state = result if it is (output, state) else (first tensor of result, result)
            outputs.append(output)
        return outputs, state                            # outputs in input order, one per t

    With a fused cell the projection and the steps share one slab (T, B, width*H): each step writes
    its row over its own projection, ``sequence`` returns the stacked outputs as a view of it, and long
    sequences are projected in chunks (``_projections``), so a sequence's activations are stored once,
    as hand-written BPTT stores them.
    """

    def __init__(self, cell, state_size=None, input_size=None, state_names=None):
        super().__init__()
        if not callable(cell):
            raise TypeError(f"Recurrent: the cell must be callable as cell(x_t, state), got "
                            f"{type(cell).__name__}")
        self.cell = cell
        self.state_size = _check_state_size(cell, state_size)
        self.input_size = input_size if input_size is not None else getattr(cell, "input_size", None)
        self.state_names = tuple(state_names) if state_names is not None else \
            getattr(cell, "state_names", None)
        self.projected = callable(getattr(cell, "project", None)) and \
            callable(getattr(cell, "recurrent_step", None))

    @property
    def name(self):
        """The cell's name in errors and pictures: its class for a Module, its qualified name for a
        function."""
        return cell_name(self.cell)

    @property
    def dtype(self):
        """The cell's parameter dtype (float64 for a cell without parameters)."""
        cell = self.cell
        params = cell.parameters() if isinstance(cell, Module) else []
        return params[0].dtype if params else np.dtype(np.float64)

    # --- the state ------------------------------------------------------------------------------
    def initial_state(self, batch, dtype=None):
        """Zeros of the cell's state structure for ``batch`` rows (see ``state_size``)."""
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        if self.state_size is not None:
            sizes, single = self.state_size
            names = self._names(len(sizes), single)
            zeros = tuple(Tensor._wrap(np.zeros((batch,) + shape, dtype=dtype), name=f"{n}0")
                          for n, shape in zip(names, sizes))
            return zeros[0] if single else zeros
        hook = getattr(self.cell, "initial_state", None)
        if hook is None:
            raise TypeError(f"Recurrent({self.name}): cannot make the initial state; pass state0 to "
                            f"unroll, or say its size: Recurrent(cell, state_size=H) for one (B, H) "
                            f"tensor, state_size=(H, H) for a pair")
        return hook(batch, dtype)

    def _names(self, count, single):
        if self.state_names is not None and len(self.state_names) == count:
            return self.state_names
        return ("h",) if single else tuple(f"s{k}" for k in range(count))

    def check_state(self, state, batch, dtype):
        """``state0`` as Tensors of ``dtype`` with ``batch`` rows, keeping its structure; None -> zeros."""
        if state is None:
            return self.initial_state(batch, dtype)
        if hasattr(self.cell, "check_state"):   # our cells check their own shapes
            return self.cell.check_state(state, batch)
        single = not isinstance(state, (tuple, list))
        tensors = []
        for k, s in enumerate((state,) if single else state):
            if not isinstance(s, (Tensor, np.ndarray, numbers.Number, list)):
                raise TypeError(f"Recurrent({self.name}): state0 must be a Tensor or a tuple of Tensors, "
                                f"got {describe(state)}")
            s = as_float(s, dtype)
            if s.ndim < 1 or s.shape[0] != batch:
                raise tg.ShapeError(f"Recurrent({self.name}): state0[{k}] has shape {s.shape}; every state "
                                    f"tensor must have the batch ({batch}) as its first dimension")
            tensors.append(s)
        return tensors[0] if single else tuple(tensors)

    # --- one step -----------------------------------------------------------------------------------
    def call_cell(self, x, state, t, p=None, out=None):
        """Run the cell once and check what it returned: ``(output, new_state)``.

        ``p``: the step's input projection (cells with the ``project`` hook); ``out``: the fused op's
        output buffer (a slab row).
        """
        cell = self.cell
        if p is None:
            result = cell(x, state)
        elif out is None:
            result = cell.recurrent_step(p, state)
        else:
            result = cell.recurrent_step(p, state, out)
        return self.split_result(result, state, t)

    def split_result(self, result, state, t):
        """``(output, new_state)`` from what the cell returned at step ``t``, checked against ``state``."""
        if isinstance(state, Tensor):
            if isinstance(result, Tensor):
                new, output = result, result
            elif isinstance(result, (tuple, list)) and len(result) == 2 and \
                    isinstance(result[1], Tensor):
                output, new = result
            else:
                raise self._protocol_error(t, result, state)
            if new.shape != state.shape or new.dtype != state.dtype:
                raise self._state_error(t, result, state)
        else:
            k = len(state)
            if isinstance(result, (tuple, list)) and len(result) == k and \
                    all(isinstance(r, Tensor) for r in result):
                new, output = tuple(result), result[0]
            elif isinstance(result, (tuple, list)) and len(result) == 2 and \
                    isinstance(result[1], (tuple, list)) and len(result[1]) == k:
                output, new = result[0], tuple(result[1])
                if not all(isinstance(r, Tensor) for r in new):
                    raise self._protocol_error(t, result, state)
            else:
                raise self._protocol_error(t, result, state)
            for a, b in zip(new, state):
                if a.shape != b.shape or a.dtype != b.dtype:
                    raise self._state_error(t, result, state)
        if not isinstance(output, Tensor):
            raise TypeError(f"Recurrent({self.name}) at step t={t}: the step's output must be a Tensor, "
                            f"got {describe(output)} (the cell returned {describe(result)})")
        return output, new

    def _expected(self, state):
        if isinstance(state, Tensor):
            return f"a Tensor{state.shape} {state.dtype} (or (output, state))"
        return (f"a tuple of {len(state)} tensors {describe(tuple(state))} (or (output, "
                f"(state tensors...)))")

    def _protocol_error(self, t, result, state):
        return TypeError(f"Recurrent({self.name}) at step t={t}: the cell returned {describe(result)}; "
                         f"expected the new state, {self._expected(state)}")

    def _state_error(self, t, result, state):
        return tg.ShapeError(f"Recurrent({self.name}) at step t={t}: the new state "
                             f"{describe(result)} does not match the state it was given, "
                             f"{describe(state)}; a step must keep every state tensor's shape and "
                             f"dtype")

    # --- folded: one step, with loop edges -----------------------------------------------------
    def trace_step(self, x, reverse=False, state=None):
        """Run the cell once on state placeholders named "h[t-1]" ("h[t+1]" when reverse).

        The placeholders and the step's nodes are recorded as step 0 of a one-step ``Loop`` named
        after the current scope, as ``unroll`` records each of its steps, so a folded Graph knows
        which nodes form the step of each layer/direction (``Graph.steps``).

        Returns ``(placeholders, new_state, output)``; ``zip(flat(new_state), flat(placeholders))``
        are the loop edges.
        """
        previous = "t+1" if reverse else "t-1"
        zeros = state if state is not None else self.initial_state(x.shape[0], x.dtype)
        names = self._names(len(flat(zeros)), isinstance(zeros, Tensor))
        loop = Loop(current_scope(), reverse)
        with in_step(loop, 0):
            placeholders = tuple(Tensor._wrap(s.data, name=f"{n}[{previous}]")
                                 for n, s in zip(names, flat(zeros)))
            state = placeholders[0] if isinstance(zeros, Tensor) else placeholders
            output, new_state = self.call_cell(x, state, t="t")
            name_states(new_state, names)
            loop.record(0, flat(state), flat(new_state), output)
        return state, new_state, output

    def folded(self, batch=1, input_size=None, dtype=None):
        """One step traced on placeholders inside ``tg.scope("cell")``, as a Graph with one loop edge
        per state tensor (h; h and c for LSTM) from the new state to the placeholder it replaces next
        step. ``input_size`` defaults to ``Recurrent(input_size=...)`` or the cell's."""
        size = input_size if input_size is not None else self.input_size
        if size is None:
            raise TypeError(f"Recurrent({self.name}).folded: the input size is unknown; pass "
                            f"folded(input_size=...) or Recurrent(cell, input_size=...)")
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        shape = (batch,) + (tuple(size) if isinstance(size, tuple) else (size,))
        x = Tensor._wrap(np.zeros(shape, dtype=dtype), name="x[t]")
        with tg.scope("cell"):
            placeholders, new_state, output = self.trace_step(x)
        outputs = flat(new_state) + (() if any(output is s for s in flat(new_state)) else (output,))
        return tg.Graph.of(*outputs, loop_edges=list(zip(flat(new_state), flat(placeholders))))

    # --- unrolled: T steps ------------------------------------------------------------------------
    def unroll(self, xs, state0=None, reverse=False, lengths=None, batch_first=False):
        """Run the cell over ``xs`` and return ``(outputs, final_state)``.

        Args:
            xs: a Tensor (T, B, ...) — (B, T, ...) with ``batch_first`` — or a list of T tensors
                (B, ...). Step t's slice is taken inside its ``t=<k>`` scope, so anomaly-mode errors
                name the time step.
            state0: the initial state (the cell's structure: a Tensor or a tuple of tensors, each
                (B, ...)), None for zeros.
            reverse: run from t = T-1 down to 0 (scopes and outputs keep input positions).
            lengths: optional ints (B,) in [1, T] for padded batches: row b only steps through
                t < lengths[b]; its state is carried unchanged elsewhere and its output there is zero,
                so padded steps neither change the final state nor receive gradient.
        Returns:
            outputs: list of T output tensors (B, ...), ``outputs[t]`` belongs to input step t.
            final_state: the state after each row's last valid step, in the cell's structure.
        """
        outputs, state, _ = self._unroll(xs, state0, reverse, lengths, batch_first)
        return outputs, state

    forward = unroll

    def sequence(self, xs, state0=None, reverse=False, lengths=None):
        """``unroll`` with the outputs stacked: ``(out (T, B, ...), final_state)``, xs time-major.

        Without ``lengths`` the fused steps have written their outputs into one slab, and ``out`` is
        a view of it: the stack node costs no memory.
        """
        outputs, state, slab = self._unroll(xs, state0, reverse, lengths, batch_first=False)
        masked = lengths is not None  # masked outputs are new arrays; the slab must keep the cells' h
        if slab is None or masked:
            return F.stack(outputs), state
        return F.stack(outputs, out=slab[..., :self.cell.hidden_size], assume_filled=True), state

    def _unroll(self, xs, state0, reverse, lengths, batch_first):
        """``(outputs, final_state, slab)``; see ``unroll`` and ``_projections``."""
        xs, steps, batch = self._check_sequence(xs, batch_first)
        dtype = xs[0].dtype if isinstance(xs, list) else xs.dtype
        slab, chunks, step_input, step_projection = None, [], None, None
        if not self.projected:
            step_input = xs.__getitem__ if isinstance(xs, list) or not batch_first else \
                (lambda t: xs[:, t])
        elif isinstance(xs, list):
            step_projection = lambda t: self.cell.project(xs[t])  # noqa: E731
        else:
            step_projection, slab, chunks = self._projections(xs, batch_first)
        state = self.check_state(state0, batch, dtype)
        active = None if lengths is None else check_lengths(lengths, batch, steps, f"Recurrent({self.name})")
        loop = Loop(current_scope(), reverse)
        names = self._names(len(flat(state)), isinstance(state, Tensor))
        outputs, consumed = [None] * steps, []
        for t in (reversed(range(steps)) if reverse else range(steps)):
            with tg.scope(f"t={t}"), in_step(loop, t):
                if step_projection is None:
                    output, new_state = self.call_cell(step_input(t), state, t)
                else:
                    p = step_projection(t)
                    output, new_state = self.call_cell(None, state, t, p, None if slab is None else slab[t])
                    consumed.append(p)
                if active is not None and not (t < active).all():
                    output, new_state = self._mask(t < active, output, new_state, state)
                name_states(new_state, names)
                loop.record(t, flat(state), flat(new_state), output)
                state = new_state
                outputs[t] = output
        if slab is not None:  # the steps wrote their rows over the projection: its values are gone
            release.overwritten(chunks + consumed)
        return outputs, state, slab

    @staticmethod
    def _mask(keep, output, new_state, state):
        """Rows with ``keep`` False carry ``state`` unchanged and output zeros (padded steps)."""
        def where(new, old):
            mask = Tensor._wrap(keep.reshape((-1,) + (1,) * (new.ndim - 1)))
            return F.where(mask, new, old)
        if isinstance(new_state, Tensor):
            new_state = where(new_state, state)
        else:
            new_state = tuple(where(new, old) for new, old in zip(new_state, state))
        return where(output, 0), new_state

    def _projections(self, xs, batch_first):
        """``(step_projection(t) -> (B, G*H) tensor, slab, projection nodes)`` for a sequence tensor.

        The input projection has no recurrence, so it is computed for many steps in one node. For a
        time-major sequence and a fused cell it is written into the gate columns of a fresh slab
        (T, B, width*H) and each step computes its row in place, consuming its projection (see
        ``tinygraph.ops.fused``): the sequence's activations exist once. The projection is then
        split into chunks of about ``PROJECTION_CHUNK_BYTES``, because its gradient, which backward
        assembles before the weight gradient, is as large as the chunk. Otherwise ``slab`` is None
        and the whole sequence is one projection node.
        """
        cell = self.cell
        block = getattr(cell, "slab_block", None)
        if block is None or batch_first:
            projected = cell.project(xs)
            projected.name = "x@W_ih"
            return ((lambda t: projected[:, t]) if batch_first else projected.__getitem__), None, [projected]
        steps, batch, H = xs.shape[0], xs.shape[1], cell.hidden_size
        slab = np.empty((steps, batch, block.width * H), dtype=cell.dtype)
        first = block.gate_offset * H
        gates = slab.reshape(steps * batch, block.width * H)[:, first:first + cell.num_gates * H]
        size = max(1, PROJECTION_CHUNK_BYTES // max(1, gates[:batch].nbytes))    # steps per chunk
        chunks, bias = [], cell.projection_bias()  # one bias node for every chunk
        for start in range(0, steps, size):
            stop = min(start + size, steps)
            chunk = cell.project(xs if size >= steps else xs[start:stop], out=gates[start * batch:stop * batch],
                                 bias=bias)
            chunk.name = "x@W_ih" if size >= steps else f"x@W_ih[{start}:{stop}]"
            chunks.append(chunk)

        def step_projection(t):
            return chunks[t // size][t % size]
        return step_projection, slab, chunks

    def _check_sequence(self, xs, batch_first):
        """``(xs, T, B)``: xs as a list of checked (B, ...) tensors, or as one checked tensor."""
        who, check = f"Recurrent({self.name}).unroll", getattr(self.cell, "check_input", None)
        if isinstance(xs, (list, tuple)):
            if not xs:
                raise tg.ShapeError(f"{who}: got an empty sequence (T = 0); give at least one time step")
            xs = [check(x, what="each step") if check else as_float(x, self.dtype) for x in xs]
            shapes = {x.shape for x in xs}
            if len(shapes) > 1:
                raise tg.ShapeError(f"{who}: every step must have the same shape, got {sorted(shapes)}")
            if xs[0].ndim < 1:
                raise tg.ShapeError(f"{who}: each step must be (B, ...) with a batch dimension, got "
                                    f"shape {xs[0].shape}")
            return xs, len(xs), xs[0].shape[0]
        xs = F.as_tensor(xs)
        size = self.input_size
        layout = "(B, T, input_size)" if batch_first else "(T, B, input_size)"
        if size is not None and (xs.ndim != 3 or xs.shape[2] != size):
            raise tg.ShapeError(f"{who}: expected xs of shape {layout} with input_size={size}, got "
                                f"{xs.shape}")
        if xs.ndim < 2:
            raise tg.ShapeError(f"{who}: expected xs of shape {layout}, got {xs.shape}")
        xs = as_float(xs, self.dtype)
        steps, batch = (xs.shape[1], xs.shape[0]) if batch_first else xs.shape[:2]
        if tg.is_anomaly_enabled():
            check_finite_input(xs.data, batch_first, who)
        if steps == 0:
            raise tg.ShapeError(f"{who}: xs {xs.shape} has T = 0 time steps; give at least one")
        return xs, steps, batch

    def extra_repr(self):
        """Empty for a Module cell (its repr is shown below), the function's name for a function."""
        return "" if isinstance(self.cell, Module) else self.name

    def _repr_mimebundle_(self, include=None, exclude=None):
        return folded_mimebundle(self, include, exclude)


def _check_state_size(cell, state_size):
    """``state_size`` as ``(tuple of per-row shapes, single)`` or None."""
    if state_size is None:
        return None
    bad = ValueError(f"Recurrent({cell_name(cell)}): state_size must be a positive int H (one (B, H) "
                     f"state tensor) or a tuple of them (a tuple state), got {state_size!r}")

    def shape(size):
        if isinstance(size, numbers.Integral) and not isinstance(size, bool) and size > 0:
            return (int(size),)
        if isinstance(size, tuple) and size and all(
                isinstance(n, numbers.Integral) and not isinstance(n, bool) and n > 0 for n in size):
            return tuple(int(n) for n in size)
        raise bad
    if isinstance(state_size, (tuple, list)):
        if not state_size:
            raise bad
        return tuple(shape(s) for s in state_size), False
    return (shape(state_size),), True


def as_float(x, dtype):
    """``x`` as a Tensor of floating ``dtype`` (float32 models stay float32)."""
    x = F.as_tensor(x)
    return x if x.dtype == dtype else F.astype(x, dtype)


def folded_mimebundle(module, include=None, exclude=None):
    """Jupyter display of ``module.folded()`` when a renderer is installed on ``tg.Graph`` (the
    visualize package adds ``Graph._repr_mimebundle_`` on import); plain text otherwise."""
    render = getattr(tg.Graph, "_repr_mimebundle_", None)
    if render is None:
        return {"text/plain": repr(module)}
    return module.folded()._repr_mimebundle_(include=include, exclude=exclude)
