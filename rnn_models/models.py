"""Sequence models: a recurrent layer with an output head, and the character-level language model.

The output layer is the textbook one, ŷ_t = softmax(W_yh h_t + b_y): a ``Linear`` head on the recurrent
outputs, returning logits (the softmax lives in the loss, ``tg.cross_entropy``, for stability).

- many-to-many: a prediction at every step, y (T, B, output_size) — language modelling, tagging.
- many-to-one: one prediction per sequence from the final hidden state, y (B, output_size) —
  sequence classification or regression. With ``lengths`` it is each sequence's last valid step.
"""
import numpy as np

import tinygraph as tg
from tinygraph.nn import Embedding, Linear, Module
from tinygraph.tensor import Tensor

from .registry import make_layer, resolve_cell

HEADS = ("many_to_many", "many_to_one")


def _check_size(who, name, value, allow_none=False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{who}: {name} must be a positive integer, got {value!r}")


def detach_state(state):
    """The recurrent state (a Tensor, or a tuple such as LSTM's (h, c)) cut from the graph."""
    if state is None:
        return None
    if isinstance(state, (tuple, list)):
        return tuple(detach_state(s) for s in state)
    return state.detach()


class SequenceModel(Module):
    """``[embedding ->] RNN/LSTM/GRU -> Linear`` head.

    Args:
        cell: "rnn", "lstm", "gru", or a user's cell as "package.module:ClassName" (see
            ``rnn_models.registry``).
        input_size: features per step; with ``embedding`` the embedding dimension, or None for one-hot
            inputs (the h_t = σ(W_hx x_t + ...) of the textbook, x_t one-hot).
        hidden_size, num_layers, nonlinearity (rnn only), dropout, bidirectional: as ``tinygraph``'s
            ``RNN/LSTM/GRU``.
        output_size: features per prediction (classes for classification).
        head: "many_to_many" (y at every step) or "many_to_one" (y from the final hidden state).
        embedding: vocabulary size when inputs are integer ids (T, B), else None.

    ``forward(x, state=None, lengths=None) -> (y, state)``:
        x (T, B, input_size) floats, or (T, B) ints with ``embedding``.
        state: the recurrent layer's h_0 ((L*D, B, H); a tuple (h_0, c_0) for LSTM) or None for zeros.
        y: (T, B, output_size) many-to-many, (B, output_size) many-to-one; state: h_n (or (h_n, c_n)).
    """
    kind = "SequenceModel"

    def __init__(self, cell, input_size, hidden_size, output_size, num_layers=1, head="many_to_many",
                 embedding=None, nonlinearity="tanh", dropout=0.0, bidirectional=False, dtype=np.float64):
        super().__init__()
        who = type(self).__name__
        dtype = np.dtype(dtype)
        try:
            resolve_cell(cell)
        except ValueError as exc:
            raise ValueError(f"{who}: {exc}") from None
        if head not in HEADS:
            raise ValueError(f"{who}: unknown head {head!r}; choose one of {list(HEADS)}")
        _check_size(who, "embedding", embedding, allow_none=True)
        _check_size(who, "input_size", input_size, allow_none=embedding is not None)
        for name, value in (("hidden_size", hidden_size), ("output_size", output_size),
                            ("num_layers", num_layers)):
            _check_size(who, name, value)
        self.options = dict(cell=cell, input_size=input_size, hidden_size=hidden_size,
                            output_size=output_size, num_layers=num_layers, head=head, embedding=embedding,
                            nonlinearity=nonlinearity, dropout=dropout, bidirectional=bidirectional,
                            dtype=np.dtype(dtype).name)
        self.cell, self.head_kind, self.vocab_size = cell, head, embedding
        self.hidden_size, self.output_size = hidden_size, output_size
        self.num_directions = 2 if bidirectional else 1
        self._one_hot = None
        if embedding is not None and input_size is None:
            # one-hot inputs: a constant table, not a parameter
            self._one_hot = Tensor._wrap(np.eye(embedding, dtype=dtype), name="one_hot")
            input_size = embedding
        elif embedding is not None:
            self.embedding = Embedding(embedding, input_size, dtype=dtype)
        self.input_size = input_size
        self.rnn = make_layer(cell, input_size, hidden_size, num_layers=num_layers, dropout=dropout,
                              bidirectional=bidirectional, dtype=dtype, nonlinearity=nonlinearity)
        self.head = Linear(self.num_directions * hidden_size, output_size, dtype=dtype)

    def config(self):
        """JSON-able constructor arguments (``build_model(model.config())`` rebuilds the architecture)."""
        return {"kind": self.kind, **self.options}

    def embed(self, x):
        """Integer ids (T, B) -> (T, B, input_size); float inputs pass through unchanged."""
        if self.vocab_size is None:
            return x
        ids = x.data if isinstance(x, Tensor) else np.asarray(x)
        if ids.dtype.kind not in "iu" or ids.ndim != 2:
            raise tg.ShapeError(f"{type(self).__name__}: expected integer ids of shape (T, B) for the "
                                f"embedding of {self.vocab_size} symbols, got {ids.dtype} {ids.shape}")
        if self._one_hot is not None:
            return tg.embedding(self._one_hot, ids)
        return self.embedding(ids)

    def forward(self, x, state=None, lengths=None):
        """``(y, state)`` for inputs x; the shapes are in the class docstring. ``lengths`` (B,) ints in
        [1, T]: padded batches, as the recurrent layer takes them."""
        out, state = self.rnn(self.embed(x), state, lengths=lengths)
        if self.head_kind == "many_to_one":
            out = self.final_hidden(state)
        return self.head(out), state

    def final_hidden(self, state):
        """The last layer's final h (B, D*H) from h_n (L*D, B, H) (or LSTM's (h_n, c_n))."""
        h_n = state[0] if isinstance(state, tuple) else state
        D = self.num_directions
        last = [h_n[h_n.shape[0] - D + d] for d in range(D)]
        return last[0] if D == 1 else tg.concat(last, axis=-1)


class CharRNN(SequenceModel):
    """Character-level language model: embedding -> recurrent -> linear -> softmax over ``vocab``.

    Args:
        vocab: a string of distinct characters; id i is ``vocab[i]``.
        embedding_dim: size of a learned embedding, or None for one-hot inputs.

    ``forward(ids (T, B), state=None) -> (logits (T, B, V), state)``; ``sample`` generates text.
    """
    kind = "CharRNN"

    def __init__(self, vocab, hidden_size, cell="lstm", num_layers=1, embedding_dim=None, dropout=0.0,
                 dtype=np.float64):
        if not isinstance(vocab, str) or not vocab:
            raise ValueError(f"CharRNN: vocab must be a non-empty string of characters, got {vocab!r}")
        repeated = sorted({c for c in vocab if vocab.count(c) > 1})
        if repeated:
            raise ValueError(f"CharRNN: vocab repeats the characters {repeated}; each must appear once")
        super().__init__(cell, embedding_dim, hidden_size, len(vocab), num_layers=num_layers,
                         embedding=len(vocab), dropout=dropout, dtype=dtype)
        self.vocab = vocab
        self._ids = {c: i for i, c in enumerate(vocab)}
        self.options = dict(vocab=vocab, hidden_size=hidden_size, cell=cell, num_layers=num_layers,
                            embedding_dim=embedding_dim, dropout=dropout, dtype=np.dtype(dtype).name)

    def encode(self, text):
        """``text`` as int64 ids (len(text),); unknown characters raise ``ValueError`` naming them."""
        unknown = sorted({c for c in text if c not in self._ids})
        if unknown:
            raise ValueError(f"CharRNN: characters {''.join(unknown)!r} ({unknown}) are not in the "
                             f"vocabulary of {len(self.vocab)} characters {self.vocab!r}")
        return np.array([self._ids[c] for c in text], dtype=np.int64)

    def decode(self, ids):
        """Integer ids (any shape, read flat) as the text they stand for; ids outside [0, vocabulary
        size) raise ``ValueError``."""
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (ids.dtype.kind not in "iu" or ids.min() < 0 or ids.max() >= len(self.vocab)):
            raise ValueError(f"CharRNN.decode: ids must be integers in [0, {len(self.vocab)}), got {ids}")
        return "".join(self.vocab[i] for i in ids)

    def sample(self, prompt, n, temperature=1.0, seed=None):
        """Generate ``n`` characters after ``prompt`` (returned without the prompt).

        The prompt is read into the state, then each character is drawn from softmax(logits /
        temperature) and fed back. Deterministic for a given ``seed``; lower temperature is more
        conservative, higher more varied.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"CharRNN.sample: n must be a non-negative integer, got {n!r}")
        if not (isinstance(temperature, (int, float)) and np.isfinite(temperature) and temperature > 0):
            raise ValueError(f"CharRNN.sample: temperature must be a positive number, got {temperature!r}")
        if not isinstance(prompt, str) or not prompt:
            raise ValueError(f"CharRNN.sample: prompt must be a non-empty string (the model needs a "
                             f"first character), got {prompt!r}")
        ids = self.encode(prompt)
        rng = np.random.default_rng(seed)
        was_training = self.training
        self.eval()
        generated = []
        try:
            with tg.no_grad():
                logits, state = self.forward(ids[:, None])
                for _ in range(n):
                    last = logits.data[-1, 0].astype(np.float64)
                    if not np.isfinite(last).all():
                        raise ValueError(f"CharRNN.sample: the model's logits are not finite after "
                                         f"{len(generated)} generated characters; its weights may hold "
                                         f"NaN/Inf (check the checkpoint)")
                    # shift before dividing: at a temperature of 1e-320 the logits themselves would
                    # overflow to inf and inf - inf is NaN; shifted, the largest is 0 and the rest -inf
                    with np.errstate(over="ignore"):
                        probs = np.exp((last - last.max()) / temperature)
                    next_id = int(rng.choice(len(self.vocab), p=probs / probs.sum()))
                    generated.append(next_id)
                    logits, state = self.forward(np.array([[next_id]]), state)
        finally:
            self.train(was_training)
        return self.decode(generated)


MODELS = {cls.kind: cls for cls in (SequenceModel, CharRNN)}


def build_model(config):
    """A model from its ``config()`` dict ({"kind": "CharRNN" | "SequenceModel", ...constructor args})."""
    if not isinstance(config, dict) or config.get("kind") not in MODELS:
        kind = config.get("kind") if isinstance(config, dict) else config
        raise ValueError(f"build_model: unknown model kind {kind!r}; expected one of {sorted(MODELS)}")
    options = {k: v for k, v in config.items() if k != "kind"}
    try:
        return MODELS[config["kind"]](**options)
    except TypeError as exc:
        raise ValueError(f"build_model: config does not fit {config['kind']} ({exc})") from None
