"""Training tasks with embedded data (nothing is downloaded).

Each task gives a batch generator that is deterministic under a ``np.random.Generator``, the model
config it needs, a loss and a metric:

============  =========================================  ============  ===========================
task          inputs -> targets                          head          loss / metric
============  =========================================  ============  ===========================
``chars``     char ids (T, B) -> next char ids (T, B)     many-to-many  cross-entropy / accuracy
``adding``    (T, B, 2) value+marker -> sum (B, 1)        many-to-one   MSE / accuracy (|err|<0.04)
``copy``      symbol ids (T, B) -> ids (T, B)             many-to-many  cross-entropy / recall acc.
``sine``      x_t (T, B, 1) -> x_{t+1} (T, B, 1)          many-to-many  MSE / MSE relative to x_t
============  =========================================  ============  ===========================

Losses are built from ``loss_terms(outputs, targets, lo, hi, steps)``, the summed loss of the time
steps ``[lo, hi)`` and how many terms it holds, so truncated BPTT can take a sequence in windows; the
loss of a whole sequence is ``loss_terms(outputs, targets, 0, T, T)`` divided by its count.
"""
import math
from importlib import resources

import numpy as np

import tinygraph as tg

DEFAULT_TEXT = "lantern.txt"


def load_text(name=DEFAULT_TEXT):
    """A text shipped in ``rnn_models/data`` (UTF-8)."""
    try:
        return resources.files("rnn_models").joinpath("data", name).read_text(encoding="utf-8")
    except FileNotFoundError:
        available = sorted(p.name for p in resources.files("rnn_models").joinpath("data").iterdir()
                           if p.name.endswith(".txt"))
        raise ValueError(f"load_text: no embedded text {name!r}; available: {available}") from None


def check_positive(who, **values):
    """Raise ``ValueError`` naming each argument that is not a positive integer."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ValueError(f"{who}: {name} must be a positive integer, got {value!r}")


class Task:
    """Base class. Subclasses set the class attributes and define ``batch`` and ``_sum_loss``."""
    name = None
    head = "many_to_many"       # or "many_to_one": one prediction per sequence, at its end
    metric_name = None
    default_seq_len = 50
    default_batch_size = 32
    min_seq_len = 1

    def config(self):
        """JSON-able description that ``make_task`` turns back into this task."""
        return {"name": self.name}

    input_size = output_size = None   # real-valued tasks: features in and out per step

    def model_config(self, cell="lstm", hidden_size=64, num_layers=1):
        """The ``rnn_models.models.build_model`` config of a model for this task."""
        return {"kind": "SequenceModel", "cell": cell, "input_size": self.input_size,
                "hidden_size": hidden_size, "output_size": self.output_size, "num_layers": num_layers,
                "head": self.head}

    def check_seq_len(self, seq_len):
        """``ValueError`` naming the task unless ``seq_len`` is an integer >= ``min_seq_len``."""
        check_positive(f"{self.name} task", seq_len=seq_len)
        if seq_len < self.min_seq_len:
            raise ValueError(f"{self.name} task: seq_len must be at least {self.min_seq_len}, got {seq_len}")

    def batch(self, rng, batch_size, seq_len):
        """``(inputs, targets)`` as numpy arrays, drawn from ``rng`` (a ``np.random.Generator``)."""
        raise NotImplementedError

    def eval_batches(self, batch_size, seq_len, count):
        """``count`` fixed evaluation batches: the same every call (their own seed), not the training
        stream."""
        rng = np.random.default_rng(2**31 - 1)
        return [self.batch(rng, batch_size, seq_len) for _ in range(count)]

    # --- loss and metric --------------------------------------------------------------------------
    def loss_terms(self, outputs, targets, lo, hi, steps):
        """Summed loss of time steps ``[lo, hi)`` of a ``steps``-long sequence, and its number of terms.

        ``outputs`` are the model's outputs for those steps: (hi-lo, B, O) for many-to-many, the final
        (B, O) for many-to-one (whose only loss is at the last step: None unless ``hi == steps``).
        """
        if self.head == "many_to_one":
            return self._sum_loss(outputs, targets) if hi == steps else None
        return self._sum_loss(outputs, targets[lo:hi])

    def loss(self, outputs, targets):
        """Mean loss of a whole sequence (a scalar Tensor)."""
        steps = len(targets) if self.head == "many_to_many" else None
        total, count = self.loss_terms(outputs, targets, 0, steps, steps)
        return total / count

    def _sum_loss(self, outputs, targets):
        raise NotImplementedError

    def metric(self, outputs, targets):
        """The task's metric (``metric_name``) as a float."""
        raise NotImplementedError


def _sum_cross_entropy(logits, targets):
    """Summed cross-entropy of (T, B, C) logits against (T, B) ids, and the number of terms."""
    logits = tg.as_tensor(logits)
    flat = logits.reshape(-1, logits.shape[-1])
    return tg.cross_entropy(flat, np.asarray(targets).reshape(-1), reduction="sum"), flat.shape[0]


def _sum_squared_error(prediction, target):
    prediction = tg.as_tensor(prediction)
    # the target as it is: mse_loss casts it to the prediction's dtype itself (an op a replay repeats)
    return tg.mse_loss(prediction, target, reduction="sum"), prediction.size


def _values(outputs):
    return outputs.data if isinstance(outputs, tg.Tensor) else np.asarray(outputs)


class CharsTask(Task):
    """Character-level language modelling on an embedded text: predict each next character.

    The last ``val_fraction`` of the text is held out for evaluation. A batch is ``batch_size`` random
    windows of ``seq_len + 1`` characters: inputs are the first ``seq_len``, targets the last.
    """
    name = "chars"
    metric_name = "accuracy"
    default_seq_len = 64
    default_batch_size = 32

    def __init__(self, text=None, text_name=DEFAULT_TEXT, val_fraction=0.1):
        self.text_name = text_name if text is None else None
        self.text = load_text(text_name) if text is None else text
        if not 0 < val_fraction < 1:
            raise ValueError(f"chars task: val_fraction must be in (0, 1), got {val_fraction}")
        self.vocab = "".join(sorted(set(self.text)))
        lookup = {c: i for i, c in enumerate(self.vocab)}
        ids = np.array([lookup[c] for c in self.text], dtype=np.int64)
        split = int(len(ids) * (1 - val_fraction))
        self.train_ids, self.val_ids = ids[:split], ids[split:]
        if len(self.val_ids) < 2 or len(self.train_ids) < 2:
            raise ValueError(f"chars task: the text has only {len(ids)} characters; give a longer text")
        self.val_fraction = val_fraction

    def config(self):
        if self.text_name is None:
            raise ValueError("chars task: a task built from a custom text cannot be saved by name")
        return {"name": self.name, "text_name": self.text_name, "val_fraction": self.val_fraction}

    def model_config(self, cell="lstm", hidden_size=64, num_layers=1):
        return {"kind": "CharRNN", "vocab": self.vocab, "hidden_size": hidden_size, "cell": cell,
                "num_layers": num_layers}

    def batch(self, rng, batch_size, seq_len, ids=None):
        self.check_seq_len(seq_len)
        check_positive("chars task", batch_size=batch_size)
        ids = self.train_ids if ids is None else ids
        if seq_len + 1 > len(ids):
            raise ValueError(f"chars task: seq_len {seq_len} is longer than the text split "
                             f"({len(ids) - 1} usable characters)")
        starts = rng.integers(0, len(ids) - seq_len, size=batch_size)
        windows = ids[starts[:, None] + np.arange(seq_len + 1)].T  # (T+1, B)
        return windows[:-1], windows[1:]

    def eval_batches(self, batch_size, seq_len, count):
        rng = np.random.default_rng(2**31 - 1)
        seq_len = min(seq_len, len(self.val_ids) - 1)
        return [self.batch(rng, batch_size, seq_len, self.val_ids) for _ in range(count)]

    _sum_loss = staticmethod(_sum_cross_entropy)

    def metric(self, outputs, targets):
        return float((_values(outputs).argmax(-1) == targets).mean())


class AddingTask(Task):
    """The adding problem (Hochreiter & Schmidhuber 1997): remember two marked values, output their sum.

    inputs (T, B, 2): channel 0 a value ~ U(0, 1), channel 1 a marker, 1 at exactly two steps — one in
    the first half, one in the second — and 0 elsewhere. target (B, 1): the sum of the two marked
    values. Predicting the constant 1.0 scores MSE = Var(U+U) = 1/6 ≈ 0.167, the bar to beat. The
    metric is the fraction of sequences with absolute error < 0.04 (the original criterion).
    """
    name = "adding"
    head = "many_to_one"
    metric_name = "accuracy"
    default_seq_len = 50
    min_seq_len = 2
    tolerance = 0.04
    input_size, output_size = 2, 1


    def batch(self, rng, batch_size, seq_len):
        self.check_seq_len(seq_len)
        check_positive("adding task", batch_size=batch_size)
        half = seq_len // 2
        values = rng.uniform(0.0, 1.0, size=(seq_len, batch_size))
        first = rng.integers(0, half, size=batch_size)
        second = rng.integers(half, seq_len, size=batch_size)
        markers = np.zeros((seq_len, batch_size))
        columns = np.arange(batch_size)
        markers[first, columns] = markers[second, columns] = 1.0
        inputs = np.stack([values, markers], axis=-1)
        targets = (values[first, columns] + values[second, columns])[:, None]
        return inputs, targets

    _sum_loss = staticmethod(_sum_squared_error)

    def metric(self, outputs, targets):
        return float((np.abs(_values(outputs) - targets) < self.tolerance).mean())


class CopyTask(Task):
    """The copy (memory) task: read ``copy_len`` symbols, wait, then write them back after a delimiter.

    Ids: 0 blank, 1..8 symbols, 9 the delimiter. For T = ``seq_len``, n = ``copy_len``::

        inputs  s1 .. sn  0 .. 0  9  0 .. 0      (blanks: T - 2n - 1, then n)
        targets 0  ..  0  0 .. 0  0  s1 .. sn    (the last n steps recall the symbols)

    Loss: cross-entropy over every step (a model that always outputs blanks until the delimiter and then
    guesses scores n·ln 8 / T). Metric: accuracy on the n recall steps (chance 1/8).
    """
    name = "copy"
    metric_name = "recall_accuracy"
    default_seq_len = 20
    num_symbols = 8
    blank, delimiter = 0, 9
    vocab_size = 10

    def __init__(self, copy_len=5):
        check_positive("copy task", copy_len=copy_len)
        self.copy_len = copy_len
        self.min_seq_len = 2 * copy_len + 1

    def config(self):
        return {"name": self.name, "copy_len": self.copy_len}

    def model_config(self, cell="lstm", hidden_size=64, num_layers=1):
        return {"kind": "SequenceModel", "cell": cell, "input_size": None, "embedding": self.vocab_size,
                "hidden_size": hidden_size, "output_size": self.vocab_size, "num_layers": num_layers,
                "head": self.head}

    def batch(self, rng, batch_size, seq_len):
        self.check_seq_len(seq_len)
        check_positive("copy task", batch_size=batch_size)
        n = self.copy_len
        symbols = rng.integers(1, self.num_symbols + 1, size=(n, batch_size))
        inputs = np.full((seq_len, batch_size), self.blank, dtype=np.int64)
        targets = np.full((seq_len, batch_size), self.blank, dtype=np.int64)
        inputs[:n] = symbols
        inputs[seq_len - n - 1] = self.delimiter
        targets[seq_len - n:] = symbols
        return inputs, targets

    _sum_loss = staticmethod(_sum_cross_entropy)

    def metric(self, outputs, targets):
        n = self.copy_len
        return float((_values(outputs)[-n:].argmax(-1) == targets[-n:]).mean())


class SineTask(Task):
    """Next-value prediction on sine waves: x_t = sin(ω t + φ), predict x_{t+1}.

    Each sequence has its own frequency ω ~ U(0.1, 0.5) rad/step and phase φ ~ U(0, 2π). inputs and
    targets (T, B, 1). Metric: the model's MSE divided by that of repeating the current value (below 1
    means the model predicts the wave rather than echoing it).
    """
    name = "sine"
    metric_name = "relative_mse"
    default_seq_len = 50
    input_size, output_size = 1, 1


    def batch(self, rng, batch_size, seq_len):
        self.check_seq_len(seq_len)
        check_positive("sine task", batch_size=batch_size)
        omega = rng.uniform(0.1, 0.5, size=batch_size)
        phase = rng.uniform(0.0, 2 * math.pi, size=batch_size)
        wave = np.sin(np.arange(seq_len + 1)[:, None] * omega + phase)[..., None]  # (T+1, B, 1)
        return wave[:-1], wave[1:]

    _sum_loss = staticmethod(_sum_squared_error)

    def metric(self, outputs, targets):
        inputs = np.concatenate([targets[:1] * 0, targets[:-1]])  # x_t for t >= 1
        model = ((_values(outputs) - targets) ** 2)[1:].mean()
        echo = ((inputs - targets) ** 2)[1:].mean()
        return float(model / echo)


TASKS = {task.name: task for task in (CharsTask, AddingTask, CopyTask, SineTask)}
"""``{"chars": CharsTask, "adding": AddingTask, "copy": CopyTask, "sine": SineTask}``: the tasks
``make_task`` and ``tinygraph train --task`` know, by name."""


def make_task(name, **options):
    """The task called ``name`` ("chars", "adding", "copy", "sine"); ``options`` go to its constructor."""
    if isinstance(name, dict):
        options, name = {k: v for k, v in name.items() if k != "name"}, name.get("name")
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {sorted(TASKS)}")
    return TASKS[name](**options)
