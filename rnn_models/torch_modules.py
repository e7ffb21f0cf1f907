"""The PyTorch side of ``rnn_models.to_torch``: the op table and the modules we ship.

Imported only by ``to_torch`` (this module imports torch; ``import rnn_models`` never does).

- ``TORCH_OPS``: tinygraph op name -> ``fn(attrs, *inputs)`` computing the op with torch functions,
  numpy's semantics kept (axis tuples, ``pad``'s per-axis constants, stable sorts). It covers every
  op in ``tinygraph.ops.OPS``; a registry test runs each against ours, forward and gradient.
- ``TracedRecurrentLayer``: ``RecurrentLayer`` over any cell, each layer/direction's step a
  ``StepProgram`` (traced from the tinygraph cell, see ``rnn_models.torch_export``) evaluated with
  ``TORCH_OPS``; the parameters under the layer's names.
- ``TorchSequenceModel``/``TorchCharRNN``: ``SequenceModel``/``CharRNN`` — embedding or one-hot, the
  recurrent layer (``torch.nn.RNN/LSTM/GRU``, or a ``TracedRecurrentLayer``), the Linear head — with
  our forward's signature, shapes and outputs.
"""
import numpy as np
import torch
import torch.nn.functional as TF

TORCH_DTYPES = {np.dtype(k): v for k, v in (
    (np.bool_, torch.bool), (np.uint8, torch.uint8), (np.int8, torch.int8), (np.int16, torch.int16),
    (np.int32, torch.int32), (np.int64, torch.int64), (np.uint16, torch.uint16),
    (np.uint32, torch.uint32), (np.uint64, torch.uint64), (np.float16, torch.float16),
    (np.float32, torch.float32), (np.float64, torch.float64))}


def as_torch(array):
    """An ndarray (or number) as a torch tensor (a copy, so the module owns it)."""
    return torch.from_numpy(np.array(array, copy=True))


# --- the op table ----------------------------------------------------------------------------------
def _dims(axis, ndim):
    """numpy's ``axis`` (None: all; an int or a tuple) as a tuple of dims."""
    if axis is None:
        return tuple(range(ndim))
    return (axis,) if isinstance(axis, int) else tuple(axis)


def _reduce(fn):
    """A torch reduction over numpy's ``axis``/``keepdims`` (``axis=()`` reduces nothing)."""
    def reduce(a, x):
        dims = _dims(a["axis"], x.ndim)
        if not dims:
            return x.clone()
        return fn(x, dim=dims, keepdim=a["keepdims"])
    return reduce


def _max_shift(a, x):
    """tinygraph's ``max_shift``: the max over the axes kept as size-1 dims, 0 where it is not finite
    (zeros for an empty input), a constant for the gradient (detached)."""
    dims = _dims(a["axis"], x.ndim)
    with torch.no_grad():
        if not x.numel():
            kept = {d % x.ndim for d in dims}
            shape = [1 if d in kept else n for d, n in enumerate(x.shape)]
            return torch.zeros(shape, dtype=x.dtype)
        shift = torch.amax(x, dim=dims, keepdim=True) if dims else x.clone()
        return torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))


def _var(a, x):
    """numpy's ``var``; over no axes (``axis=()``) each element is its own sample of one."""
    dims = _dims(a["axis"], x.ndim)
    if not dims:
        return torch.var(x.unsqueeze(-1), dim=-1, correction=a["ddof"])
    return torch.var(x, dim=dims, keepdim=a["keepdims"], correction=a["ddof"])


def _prod(x, dim, keepdim):
    for d in sorted(dim, reverse=True):   # torch.prod takes one dim at a time
        x = torch.prod(x, dim=d, keepdim=keepdim)
    return x


def _getitem(x, index):
    """``x[index]`` with numpy's semantics: arrays become tensors, and a slice with a negative step
    (which torch refuses) becomes a positive one over the flipped dimension."""
    parts = index if isinstance(index, tuple) else (index,)
    consumed = sum(p.ndim if isinstance(p, np.ndarray) and p.dtype == bool else 1
                   for p in parts if p is not None and p is not Ellipsis)
    dim, flips, converted = 0, [], []
    for part in parts:
        if part is Ellipsis:
            dim += x.ndim - consumed
        elif isinstance(part, slice) and part.step is not None and part.step < 0:
            chosen = range(x.shape[dim])[part]
            n = x.shape[dim]
            part = slice(n - 1 - chosen[0], n - chosen[-1], -part.step) if len(chosen) else slice(0, 0)
            flips.append(dim)
        elif isinstance(part, np.ndarray):
            dim += part.ndim - 1 if part.dtype == bool else 0
            part = torch.from_numpy(part)
        if part is not None and part is not Ellipsis:
            dim += 1
        converted.append(part)
    if flips:
        x = torch.flip(x, flips)
    return x[tuple(converted) if isinstance(index, tuple) else converted[0]]


def _index_add(a, g):
    """Zeros of ``shape`` with ``g`` added at ``index``: the flat positions the index selects, then one
    ``index_add`` (repeated positions accumulate, as ``np.add.at``)."""
    size = int(np.prod(a["shape"]))
    positions = _getitem(torch.arange(size).reshape(a["shape"]), a["index"])
    out = torch.zeros(size, dtype=g.dtype)
    return out.index_add(0, positions.reshape(-1), g.reshape(-1)).reshape(a["shape"])


def _pad(a, x):
    """Constant padding axis by axis, each side its own constant (as ``np.pad``; later axes pad over
    earlier ones' corners)."""
    for axis, ((before, after), (low, high)) in enumerate(zip(a["pad_width"], a["constant_values"])):
        parts = []
        for width, value in ((before, low), (None, None), (after, high)):
            if width is None:
                parts.append(x)
            elif width:
                shape = x.shape[:axis] + (width,) + x.shape[axis + 1:]
                parts.append(torch.full(shape, value, dtype=x.dtype))
        x = torch.cat(parts, dim=axis)
    return x if a["pad_width"] else x.clone()


def _flattened(fn):
    """numpy's ``axis=None`` for scans and sorts: over the flattened input."""
    def along(a, x):
        if a["axis"] is None:
            return fn(a, x.reshape(-1), 0)
        return fn(a, x, a["axis"])
    return along


def _arg_reduce(fn):
    def arg(a, x):
        if a["axis"] is None:
            flat = fn(x.reshape(-1), dim=0)
            return flat.reshape((1,) * x.ndim) if a["keepdims"] else flat
        return fn(x, dim=a["axis"], keepdim=a["keepdims"])
    return arg


def _lstm_cell(a, p, h, c, w, b=None):
    """[h' | c' | i f g o], as ``tinygraph.ops.fused.LSTMCellBlock`` (its recurrent bias optional)."""
    i, f, g, o = (p + TF.linear(h, w, b)).chunk(4, dim=-1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c_new = f * c + i * g
    return torch.cat([o * torch.tanh(c_new), c_new, i, f, g, o], dim=-1)


def _gru_cell(a, p, h, w, b):
    """[h' | r z n | hn], as ``tinygraph.ops.fused.GRUCellBlock``."""
    H = h.shape[-1]
    hh = TF.linear(h, w, b)
    r, z = torch.sigmoid(p[:, :2 * H] + hh[:, :2 * H]).chunk(2, dim=-1)
    hn = hh[:, 2 * H:]
    n = torch.tanh(p[:, 2 * H:] + r * hn)
    return torch.cat([n + z * (h - n), r, z, n, hn], dim=-1)


def _cross_entropy(a, logits):
    """Softmax cross-entropy of logits (..., C) against integer targets (...)."""
    targets = torch.from_numpy(np.asarray(a["targets"]))
    losses = TF.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                              reduction=a["reduction"])
    return losses.reshape(logits.shape[:-1]) if a["reduction"] == "none" else losses


ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}
_ELEMENTWISE = {
    "neg": torch.neg, "exp": torch.exp, "log": torch.log, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
    "relu": torch.relu, "sqrt": torch.sqrt, "abs": torch.abs, "sign": torch.sign, "sin": torch.sin,
    "cos": torch.cos, "tan": torch.tan, "arcsin": torch.asin, "arccos": torch.acos, "arctan": torch.atan,
    "sinh": torch.sinh, "cosh": torch.cosh, "arcsinh": torch.asinh, "arccosh": torch.acosh,
    "arctanh": torch.atanh, "exp2": torch.exp2, "expm1": torch.expm1, "log2": torch.log2,
    "log10": torch.log10, "log1p": torch.log1p, "square": torch.square, "reciprocal": torch.reciprocal,
    "floor": torch.floor, "ceil": torch.ceil, "isnan": torch.isnan, "isinf": torch.isinf,
    "isfinite": torch.isfinite, "clone": torch.clone,
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.true_divide, "pow": torch.pow,
    "maximum": torch.maximum, "minimum": torch.minimum, "fmax": torch.fmax, "fmin": torch.fmin,
    "lt": torch.lt, "le": torch.le, "gt": torch.gt, "ge": torch.ge, "eq": torch.eq, "ne": torch.ne,
    "matmul": torch.matmul, "arctan2": torch.atan2, "hypot": torch.hypot, "logaddexp": torch.logaddexp,
    "mod": torch.remainder,   # numpy's mod takes the divisor's sign, as torch.remainder
}

TORCH_OPS = {name: (lambda fn: lambda a, *xs: fn(*xs))(fn) for name, fn in _ELEMENTWISE.items()}
TORCH_OPS.update({
    "pow_const": lambda a, x: torch.pow(x, a["exponent"]),
    "nan_to_num": lambda a, x: torch.nan_to_num(x, a["nan"], a["posinf"], a["neginf"]),
    "where": lambda a, cond, x, y: torch.where(cond.bool(), x, y),
    "affine": lambda a, x, w, b=None: TF.linear(x, w, b),
    "rnn_cell": lambda a, p, h, w, b=None: ACTIVATIONS[a["nonlinearity"]](p + TF.linear(h, w, b)),
    "lstm_cell": _lstm_cell,
    "gru_cell": _gru_cell,
    "cross_entropy": lambda a, x: _cross_entropy(a, x),
    "linear_cross_entropy": lambda a, x, w, b: _cross_entropy(a, TF.linear(x, w, b)),
    "flip": lambda a, x: torch.flip(x, _dims(a["axis"], x.ndim)),
    "roll": lambda a, x: torch.roll(x, a["shift"], a["axis"]),
    "pad": _pad,
    "sum": _reduce(torch.sum),
    "max": _reduce(torch.amax),
    "max_shift": _max_shift,
    "min": _reduce(torch.amin),
    "prod": _reduce(_prod),
    "var": _var,
    "reshape": lambda a, x: x.reshape(a["shape"]),
    "transpose": lambda a, x: x.permute(a["axes"]),
    "broadcast_to": lambda a, x: torch.broadcast_to(x, a["shape"]),
    "getitem": lambda a, x: _getitem(x, a["index"]),
    "index_add": _index_add,
    "concat": lambda a, *xs: torch.cat(xs, dim=a["axis"]),
    "stack": lambda a, *xs: torch.stack(xs, dim=a["axis"]),
    "astype": lambda a, x: x.to(TORCH_DTYPES[np.dtype(a["dtype"])]),
    "cumsum": _flattened(lambda a, x, d: torch.cumsum(x, dim=d)),
    "cumprod": _flattened(lambda a, x, d: torch.cumprod(x, dim=d)),
    "diff": lambda a, x: torch.diff(x, n=a["n"], dim=a["axis"]),
    "einsum": lambda a, *xs: torch.einsum(a["subscripts"], *xs),
    "diagonal": lambda a, x: torch.diagonal(x, a["offset"], a["axis1"], a["axis2"]),
    "sort": _flattened(lambda a, x, d: torch.sort(x, dim=d, descending=a["descending"], stable=True).values),
    "argsort": _flattened(lambda a, x, d: torch.argsort(x, dim=d, descending=a["descending"], stable=True)),
    "argmax": _arg_reduce(torch.argmax),
    "argmin": _arg_reduce(torch.argmin),
})


# --- the loop over time and layers ---------------------------------------------------------------
class TracedRecurrentLayer(torch.nn.Module):
    """``rnn_models.RecurrentLayer`` in torch: ``out, h_n = layer(x, h0=None, lengths=None)``.

    The shapes are ours (see ``rnn_models.layers``): x (T, B, input_size) or (B, T, input_size) with
    ``batch_first``; h0 and h_n (D * num_layers, B, ...) per state tensor (a tuple for a tuple state);
    out (T, B, D * hidden_size). Each layer/direction ``k`` runs ``programs[k]``, one step of its
    tinygraph cell, as this loop::

        for t in (reversed(range(T)) if reverse else range(T)):
            output, state = programs[k].step(TORCH_OPS, x[t], state, parameter, constant)
            (rows with t >= lengths[b] keep their state and output zeros)

    The parameters carry the layer's names (``input_weight_l0``...), so ``state_dict`` keys are ours;
    constants the step reads are buffers that are not saved. ``dropout`` between layers in train mode
    draws torch's own masks (the numbers then differ from ours; equal in eval mode or with dropout 0).
    """

    def __init__(self, programs, parameters, state_shapes, single, input_size, hidden_size, num_layers,
                 batch_first, dropout, bidirectional):
        super().__init__()
        self.programs, self.state_shapes, self.single = programs, state_shapes, single
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.batch_first, self.dropout, self.bidirectional = batch_first, dropout, bidirectional
        for name, array in parameters.items():
            self.register_parameter(name, torch.nn.Parameter(as_torch(array)))
        for k, program in enumerate(programs):
            for j, array in enumerate(program.constants):
                self.register_buffer(f"_constant_{k}_{j}", as_torch(array), persistent=False)

    @property
    def num_directions(self):
        """2 for a bidirectional layer, else 1 (D in the shapes above)."""
        return 2 if self.bidirectional else 1

    def _step(self, k, x, state):
        params = self._parameters
        buffers = self._buffers
        return self.programs[k].step(TORCH_OPS, x, state, params.__getitem__,
                                     lambda j: buffers[f"_constant_{k}_{j}"])

    def forward(self, x, h0=None, lengths=None, hx=None):
        """``out, h_n`` for input x and initial state h0 (``hx``: torch's name for it), shapes as in
        the class docstring; ``lengths`` (B,) for padded batches, as ``RecurrentLayer``."""
        h0 = hx if h0 is None else h0
        if x.dim() != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"{type(self).__name__}: expected input of shape "
                             f"{'(B, T, input_size)' if self.batch_first else '(T, B, input_size)'} with "
                             f"input_size={self.input_size}, got {tuple(x.shape)}")
        sequence = x.transpose(0, 1) if self.batch_first else x
        steps, batch = sequence.shape[:2]
        dtype = next(iter(self._parameters.values())).dtype
        if h0 is None:
            initial = tuple(torch.zeros((self.num_directions * self.num_layers, batch) + shape, dtype=dtype)
                            for shape in self.state_shapes)
        else:
            initial = self._check_initial_state(h0, batch)
        keep = None
        if lengths is not None:
            lengths = torch.as_tensor(lengths)
            keep = torch.arange(steps)[:, None] < lengths[None, :]   # (T, B): row b steps at t
        finals = []
        for layer in range(self.num_layers):
            if layer > 0 and self.training and self.dropout:
                sequence = TF.dropout(sequence, self.dropout)
            directions = []
            for direction in range(self.num_directions):
                k = layer * self.num_directions + direction
                state = tuple(s[k] for s in initial)
                outputs = [None] * steps
                for t in (reversed(range(steps)) if direction else range(steps)):
                    output, new_state = self._step(k, sequence[t], state)
                    if keep is not None:
                        mask = keep[t]
                        new_state = tuple(torch.where(mask.reshape((-1,) + (1,) * (n.dim() - 1)), n, s)
                                          for n, s in zip(new_state, state))
                        output = torch.where(mask.reshape((-1,) + (1,) * (output.dim() - 1)), output,
                                             torch.zeros((), dtype=output.dtype))
                    state, outputs[t] = new_state, output
                directions.append(torch.stack(outputs))
                finals.append(state)
            sequence = directions[0] if len(directions) == 1 else torch.cat(directions, dim=-1)
        out = sequence.transpose(0, 1) if self.batch_first else sequence
        states = tuple(torch.stack([final[i] for final in finals]) for i in range(len(finals[0])))
        return out, (states[0] if self.single else states)

    def _check_initial_state(self, h0, batch):
        """h0 as a tuple of (D * num_layers, B, ...) tensors, one per state tensor."""
        name, rows = type(self).__name__, self.num_directions * self.num_layers
        if self.single != isinstance(h0, torch.Tensor) or (
                not self.single and len(h0) != len(self.state_shapes)):
            want = "a tensor" if self.single else f"a tuple of {len(self.state_shapes)} tensors"
            raise TypeError(f"{name}: the initial state must be {want}, got {type(h0).__name__}")
        initial = (h0,) if self.single else tuple(h0)
        for k, (s, shape) in enumerate(zip(initial, self.state_shapes)):
            if tuple(s.shape) != (rows, batch) + shape:
                raise ValueError(f"{name}: initial state {k} has shape {tuple(s.shape)}, expected "
                                 f"{(rows, batch) + shape} = (num_directions * num_layers, B, ...)")
        return initial

    def extra_repr(self):
        """Sizes, options and the ops the traced step runs, for ``repr``."""
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"bidirectional={self.bidirectional}, batch_first={self.batch_first}, "
                f"ops={sorted({op for p in self.programs for op in p.op_names()})}")


# --- the models ----------------------------------------------------------------------------------
class TorchSequenceModel(torch.nn.Module):
    """``rnn_models.SequenceModel`` in torch: ``y, state = model(x, state=None, lengths=None)``.

    x (T, B, input_size) floats, or (T, B) integer ids with an embedding (learned, or one-hot when
    ``vocab_size`` is given without one); y (T, B, output_size) many-to-many, (B, output_size)
    many-to-one (from the last layer's final h); state h_n (or LSTM's (h_n, c_n)), (L*D, B, H).
    ``lengths`` (B,): padded batches, as ours (``torch.nn`` layers run them packed).
    """

    def __init__(self, rnn, head, head_kind="many_to_many", embedding=None, vocab_size=None):
        super().__init__()
        if embedding is not None:
            self.embedding = embedding
        self.rnn, self.head = rnn, head
        self.head_kind, self.vocab_size = head_kind, vocab_size

    @property
    def num_directions(self):
        """2 when the recurrent layer is bidirectional, else 1."""
        return 2 if self.rnn.bidirectional else 1

    def embed(self, x):
        """Integer ids (T, B) -> (T, B, input_size) through the embedding (or one-hot); float inputs
        pass through unchanged."""
        if self.vocab_size is None:
            return x
        if "embedding" in self._modules:
            return self.embedding(x)
        return TF.one_hot(x, self.vocab_size).to(self.head.weight.dtype)

    def recurrent(self, x, state=None, lengths=None):
        """The recurrent layer over x (T, B, F), padded rows as ours: ``(out, state)``."""
        if isinstance(self.rnn, TracedRecurrentLayer):
            return self.rnn(x, state, lengths=lengths)
        if lengths is None:
            return self.rnn(x, state)
        lengths = torch.as_tensor(lengths).cpu()
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
        out, state = self.rnn(packed, state)
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=x.shape[0])
        return out, state

    def forward(self, x, state=None, lengths=None):
        """``(y, state)``: y (T, B, output_size) many-to-many, (B, output_size) many-to-one; state the
        layer's h_n (LSTM: (h_n, c_n)), as ``SequenceModel.forward``."""
        out, state = self.recurrent(self.embed(x), state, lengths)
        if self.head_kind == "many_to_one":
            out = self.final_hidden(state)
        return self.head(out), state

    def final_hidden(self, state):
        """The last layer's final h (B, D*H) from h_n (L*D, B, H) (or LSTM's (h_n, c_n))."""
        h_n = state[0] if isinstance(state, tuple) else state
        last = [h_n[h_n.shape[0] - self.num_directions + d] for d in range(self.num_directions)]
        return last[0] if len(last) == 1 else torch.cat(last, dim=-1)


class TorchCharRNN(TorchSequenceModel):
    """``rnn_models.CharRNN`` in torch: ``logits (T, B, V), state = model(ids (T, B), state=None)``,
    with the vocabulary's ``encode``/``decode``."""

    def __init__(self, vocab, rnn, head, embedding=None):
        super().__init__(rnn, head, "many_to_many", embedding, len(vocab))
        self.vocab = vocab
        self._ids = {c: i for i, c in enumerate(vocab)}

    def encode(self, text):
        """The ids (len(text),) int64 of ``text``; a character outside the vocabulary is a ValueError."""
        unknown = sorted({c for c in text if c not in self._ids})
        if unknown:
            raise ValueError(f"TorchCharRNN: characters {unknown} are not in the vocabulary {self.vocab!r}")
        return torch.tensor([self._ids[c] for c in text], dtype=torch.int64)

    def decode(self, ids):
        """The text of ``ids`` (any shape, read in order)."""
        return "".join(self.vocab[int(i)] for i in torch.as_tensor(ids).reshape(-1))
