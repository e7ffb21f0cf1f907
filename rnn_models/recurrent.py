"""The recurrent node: a cell plus a delayed state edge, folded into one step or unrolled over time.

``Recurrent(cell)`` holds ONE definition of the step (the cell). ``folded()`` traces it once on
placeholder leaves into a ``Graph`` whose ``loop_edges`` map each new state to the state input of the
next step (JAX's ``lax.scan`` body); ``unroll(xs)`` runs the same cell T times, each step inside
``tg.scope("t=<k>")``, with one set of shared parameter leaves. The unrolled result is an ordinary
Graph, and backpropagation through time is just ``loss.backward()`` over it.
"""
import numpy as np

import tinygraph as tg
from tinygraph import functional as F
from tinygraph.nn import Module
from tinygraph.tensor import Tensor

from .cells import as_float


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
    """In anomaly mode: raise at the first NaN/Inf of a (T, B, I) input, naming its time step.

    The whole sequence is projected in one node before the steps run, so the step scopes would never
    see it; the input is checked here instead.
    """
    bad = ~np.isfinite(xs)
    if bad.any():
        first = np.argwhere(bad.swapaxes(0, 1) if batch_first else bad)[0]
        t, b = int(first[0]), int(first[1])
        value = (xs[b, t] if batch_first else xs[t, b])[first[2]]
        outer = tg.modes.current_scope()
        raise tg.AnomalyError(
            f"{'NaN' if np.isnan(value) else 'Inf'} in the input of {who} at scope "
            f"'{outer + '/' if outer else ''}t={t}' (time step {t}, batch row {b}, feature "
            f"{int(first[2])}); clean or mask the data before the recurrent layer")


# A batched input projection's gradient is as large as the projection; chunks of this size bound it
# (one chunk, the whole sequence, for all but long sequences).
PROJECTION_CHUNK_BYTES = 8 * 2**20


def mark_consumed(tensors):
    """Replace the values of tensors whose buffer was overwritten in place by read-only NaN placeholders
    of their shape and dtype (no memory, one per shape): nobody can mistake what now lives in the
    buffer for them. Only for values no gradient rule reads."""
    spent = {}
    for t in tensors:
        key = (t.shape, t.dtype)
        if key not in spent:
            spent[key] = np.broadcast_to(np.array(np.nan, dtype=t.dtype), t.shape)
        t.data = spent[key]


class Recurrent(Module):
    """The recurrent node around ``cell`` (an ``RNNCell``, ``LSTMCell`` or ``GRUCell``).

    ``unroll`` is this reference loop, with every step recorded in the graph::

        state = state0 or cell.initial_state(B)          # tuple of (B, H)
        outputs = []
        for t in range(T):                               # reversed(range(T)) when reverse=True
            with tg.scope(f"t={t}"):
                state = cell.step(xs[t], state)          # xs[t]: (B, I)
                outputs.append(cell.output(state))       # h: (B, H)
        return outputs, state                            # outputs in input order, one per t

    ``cell.step(x, s)`` is ``cell.recurrent_step(cell.project(x), s)``, and the projection has no
    recurrence: when ``xs`` is one tensor, ``unroll`` projects all T steps in one node (outside the
    step scopes) and each step slices its row — same numbers, one large matmul instead of T small ones.
    With a fused cell the projection and the steps share one slab (T, B, width*H): each step writes
    its row over its own projection, ``sequence`` returns the stacked outputs as a view of it, and long
    sequences are projected in chunks (``_projections``), so a sequence's activations are stored once,
    as hand-written BPTT stores them.
    """

    def __init__(self, cell):
        super().__init__()
        self.cell = cell

    # --- folded: one step, with loop edges -----------------------------------------------------
    def trace_step(self, x, reverse=False):
        """Run the cell once on state placeholders named "h[t-1]" ("h[t+1]" when reverse).

        Returns ``(placeholders, new_state)``; ``zip(new_state, placeholders)`` are the loop edges.
        """
        previous = "t+1" if reverse else "t-1"
        placeholders = tuple(Tensor._wrap(s.data, name=f"{n}[{previous}]") for n, s in
                             zip(self.cell.state_names, self.cell.initial_state(x.shape[0])))
        return placeholders, self.cell.step(x, placeholders)

    def folded(self, batch=1):
        """One step traced on placeholders inside ``tg.scope("cell")``, as a Graph with one loop edge
        per state (h; h and c for LSTM) from the new state to the placeholder it replaces next step."""
        x = Tensor._wrap(np.zeros((batch, self.cell.input_size), dtype=self.cell.dtype), name="x[t]")
        with tg.scope("cell"):
            placeholders, new_state = self.trace_step(x)
        return tg.Graph.of(*new_state, loop_edges=list(zip(new_state, placeholders)))

    # --- unrolled: T steps ------------------------------------------------------------------------
    def unroll(self, xs, state0=None, reverse=False, lengths=None, batch_first=False):
        """Run the cell over ``xs`` and return ``(outputs, final_state)``.

        Args:
            xs: a Tensor (T, B, input_size) — (B, T, input_size) with ``batch_first`` — or a list of
                T tensors (B, input_size). Step t's slice is taken inside its ``t=<k>`` scope, so
                anomaly-mode errors name the time step.
            state0: tuple of (B, hidden_size) tensors (``cell.state_names``), None for zeros.
            reverse: run from t = T-1 down to 0 (scopes and outputs keep input positions).
            lengths: optional ints (B,) in [1, T] for padded batches: row b only steps through
                t < lengths[b]; its state is carried unchanged elsewhere and its output there is zero,
                so padded steps neither change the final state nor receive gradient.
        Returns:
            outputs: list of T tensors h (B, hidden_size), ``outputs[t]`` belongs to input step t.
            final_state: tuple of (B, hidden_size) — the state after each row's last valid step.
        """
        outputs, state, _ = self._unroll(xs, state0, reverse, lengths, batch_first)
        return outputs, state

    forward = unroll

    def sequence(self, xs, state0=None, reverse=False, lengths=None):
        """``unroll`` with the outputs stacked: ``(out (T, B, hidden_size), final_state)``, xs time-major.

        Without ``lengths`` the fused steps have written their outputs into one slab, and ``out`` is
        a view of it: the stack node costs no memory.
        """
        outputs, state, slab = self._unroll(xs, state0, reverse, lengths, batch_first=False)
        masked = lengths is not None  # masked outputs are new arrays; the slab must keep the cells' h
        H = self.cell.hidden_size
        return F.stack(outputs, out=None if slab is None or masked else slab[..., :H]), state

    def _unroll(self, xs, state0, reverse, lengths, batch_first):
        """``(outputs, final_state, slab)``; see ``unroll`` and ``_projections``."""
        cell = self.cell
        xs, steps, batch = self._check_sequence(xs, batch_first)
        slab, chunks = None, ()
        if isinstance(xs, list):
            step_projection = lambda t: cell.project(xs[t])  # noqa: E731
        else:
            step_projection, slab, chunks = self._projections(xs, batch_first)
        state = cell.check_state(state0, batch)
        active = None if lengths is None else check_lengths(lengths, batch, steps, "Recurrent.unroll")
        outputs, consumed = [None] * steps, []
        for t in (reversed(range(steps)) if reverse else range(steps)):
            with tg.scope(f"t={t}"):
                p = step_projection(t)
                new_state = cell.recurrent_step(p, state, None if slab is None else slab[t])
                consumed.append(p)
                output = cell.output(new_state)
                if active is not None and not (t < active).all():
                    keep = Tensor._wrap((t < active)[:, None])
                    new_state = tuple(F.where(keep, new, old) for new, old in zip(new_state, state))
                    output = F.where(keep, output, 0)
                state = new_state
                outputs[t] = output
        if slab is not None:  # the steps wrote their rows over the projection: its values are gone
            mark_consumed(chunks + consumed)
        return outputs, state, slab

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
        cell, block = self.cell, self.cell.slab_block
        if block is None or batch_first:
            projected = cell.project(xs)
            projected.name = "x@W_ih"
            return ((lambda t: projected[:, t]) if batch_first else projected.__getitem__), None, [projected]
        steps, batch, H = xs.shape[0], xs.shape[1], cell.hidden_size
        slab = np.empty((steps, batch, block.width * H), dtype=cell.dtype)
        first = block.gate_offset * H
        gates = slab.reshape(steps * batch, -1)[:, first:first + cell.num_gates * H]
        size = max(1, PROJECTION_CHUNK_BYTES // gates[:batch].nbytes)    # steps per chunk
        chunks = []
        for start in range(0, steps, size):
            stop = min(start + size, steps)
            chunk = cell.project(xs if size >= steps else xs[start:stop], out=gates[start * batch:stop * batch])
            chunk.name = "x@W_ih" if size >= steps else f"x@W_ih[{start}:{stop}]"
            chunks.append(chunk)

        def step_projection(t):
            return chunks[t // size][t % size]
        return step_projection, slab, chunks

    def _check_sequence(self, xs, batch_first):
        """``(xs, T, B)``: xs as a list of checked (B, I) tensors, or as one checked tensor."""
        cell, name = self.cell, type(self.cell).__name__
        if isinstance(xs, (list, tuple)):
            if not xs:
                raise tg.ShapeError(f"Recurrent({name}).unroll: got an empty sequence (T = 0); give at "
                                    f"least one time step")
            xs = [cell.check_input(x, what="each step") for x in xs]
            shapes = {x.shape for x in xs}
            if len(shapes) > 1:
                raise tg.ShapeError(f"Recurrent({name}).unroll: every step must have the same shape "
                                    f"(B, {cell.input_size}), got {sorted(shapes)}")
            return xs, len(xs), xs[0].shape[0]
        xs = F.as_tensor(xs)
        layout = "(B, T, input_size)" if batch_first else "(T, B, input_size)"
        if xs.ndim != 3 or xs.shape[2] != cell.input_size:
            raise tg.ShapeError(f"Recurrent({name}).unroll: expected xs of shape {layout} with input_size="
                                f"{cell.input_size}, got {xs.shape}")
        xs = as_float(xs, cell.dtype)
        steps, batch = (xs.shape[1], xs.shape[0]) if batch_first else xs.shape[:2]
        if tg.is_anomaly_enabled():
            check_finite_input(xs.data, batch_first, f"Recurrent({name}).unroll")
        if steps == 0:
            raise tg.ShapeError(f"Recurrent({name}).unroll: xs {xs.shape} has T = 0 time steps; give at "
                                f"least one")
        return xs, steps, batch

    def _repr_mimebundle_(self, include=None, exclude=None):
        return folded_mimebundle(self, include, exclude)


def folded_mimebundle(module, include=None, exclude=None):
    """Jupyter display of ``module.folded()`` when a renderer is installed on ``tg.Graph`` (the
    visualize package adds ``Graph._repr_mimebundle_`` on import); plain text otherwise."""
    render = getattr(tg.Graph, "_repr_mimebundle_", None)
    if render is None:
        return {"text/plain": repr(module)}
    return module.folded()._repr_mimebundle_(include=include, exclude=exclude)
