"""Training: truncated backpropagation through time and a small trainer.

``TruncatedBPTT(k1, k2)`` is Sutskever's TBPTT(k1, k2) (Williams & Peng's BPTT(h; h')): every ``k1``
steps there is an update, whose gradient backpropagates the losses of those ``k1`` steps through the
last ``k2`` steps. The state is carried across windows *detached*, so no gradient crosses a cut. The
common case is ``k1 == k2 == k``: the sequence is cut into chunks of k steps. ``k2 >= T`` is full BPTT.

``Trainer`` runs the loop: batches from a task, truncated BPTT, ``clip_grad_norm_``, the optimiser
step, a smoothed loss, periodic evaluation and a record per step for a ``log`` callback, deterministic
under a seed. It never applies a non-finite update: a NaN/inf loss or gradient stops training with
``NonFiniteError`` (or, with ``skip_nonfinite=True``, the update is skipped and counted).
"""
import math
import time
import warnings
from dataclasses import dataclass

import numpy as np

import tinygraph as tg
from tinygraph.nn.utils import clip_grad_norm_

from .checkpoint import NonFiniteError
from .models import detach_state
from .tasks import check_positive

OPTIMIZERS = {"sgd": "SGD", "adam": "Adam", "adagrad": "Adagrad"}

# Whether a Trainer made with compile=None replays its step as a plan; the command line's --no-compile
# sets it (set_default_compile) for every trainer its command makes, in forked workers too.
COMPILE = [True]


def set_default_compile(flag):
    """Make ``Trainer(compile=None)`` compile its step (True, the default) or run it eagerly (False)."""
    COMPILE[0] = bool(flag)


def make_optimizer(name, params, lr):
    """``tg.optim.SGD/Adam/Adagrad(params, lr=lr)`` by its CLI name ("sgd", "adam", "adagrad")."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimiser {name!r}; choose one of {sorted(OPTIMIZERS)}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"optimiser {name}: lr must be a positive number, got {lr!r}")
    return getattr(tg.optim, OPTIMIZERS[name])(params, lr=lr)


@dataclass(frozen=True)
class Window:
    """One update of truncated BPTT: the forward runs over steps ``[start, stop)`` from the detached
    state at ``start``; the losses of steps ``[loss_start, stop)`` are backpropagated; the state is also
    detached at each step in ``cuts``."""
    start: int
    loss_start: int
    stop: int
    cuts: tuple = ()


@dataclass
class WindowResult:
    """What one update saw: its mean loss, number of loss terms, and what ``update()`` returned."""
    window: Window
    loss: float
    count: int
    update: object = None


class TruncatedBPTT:
    """TBPTT(k1, k2): an update every ``k1`` steps, each backpropagating through ``k2`` steps.

    Updates happen after steps t = k1, 2·k1, ... (and at the end, T); the update at t counts the
    losses of steps t - k1 .. t - 1 and backpropagates them to the state at step t - k2, which is
    detached (a short last window is measured as if it were full, so with k1 == k2 it is a chunk):

    - ``k1 == k2 == k``: chunks of k steps, the state detached between chunks (the usual case).
    - ``k2 > k1``: overlapping windows; the forward over the k2 - k1 older steps is recomputed from
      their saved (detached) state with the current parameters.
    - ``k2 < k1``: the state is additionally detached every k2 steps counting back from t, so no loss
      backpropagates through more than k2 steps (``k2 = 1``: no gradient between steps at all).
    - ``k2 >= T``: nothing is truncated; the windows' gradients sum to full BPTT's.

    Reference loop for k1 == k2 == k::

        state = state0
        for lo in range(0, T, k):
            out, state = forward(xs[lo:lo+k], state.detach())
            loss = mean of the losses of steps lo .. lo+k-1
            loss.backward(); update()
    """

    def __init__(self, k1, k2=None):
        k2 = k1 if k2 is None else k2
        check_positive("TruncatedBPTT", k1=k1, k2=k2)
        self.k1, self.k2 = int(k1), int(k2)

    def __repr__(self):
        return f"TruncatedBPTT(k1={self.k1}, k2={self.k2})"

    def windows(self, steps):
        """The updates for a sequence of ``steps`` time steps, in order."""
        check_positive("TruncatedBPTT.windows", steps=steps)
        result = []
        for previous in range(0, steps, self.k1):
            # measured from the full-length stop, so a short last window is a chunk like the others
            nominal_stop = previous + self.k1
            start = max(0, min(previous, nominal_stop - self.k2))
            stop = min(nominal_stop, steps)
            cuts = tuple(c for c in range(nominal_stop - self.k2, start, -self.k2) if c < stop)[::-1]
            result.append(Window(start, previous, stop, cuts))
        return result

    def run(self, forward, inputs, state, loss_terms, update=None):
        """Run a sequence through the windows; returns ``(results, final_state)``.

        Args:
            forward: ``forward(x_piece, state) -> (outputs, state)`` over consecutive steps, e.g. a
                ``SequenceModel``; ``state=None`` means zeros.
            inputs: anything sliceable along time, ``inputs[a:b]`` (T first).
            state: the state before step 0 (None for zeros); it is detached.
            loss_terms: ``loss_terms(outputs, a, b) -> (summed loss Tensor, count)`` for steps
                ``[a, b)``, or None when those steps carry no loss (many-to-one before the end).
            update: called after each window's ``backward()`` (clip, optimiser step, zero_grad); its
                return value is kept in the result. None: gradients accumulate in ``.grad``.
        Returns:
            one ``WindowResult`` per window that had a loss, and the final state (detached).
        """
        steps = len(inputs)
        windows = self.windows(steps)
        future_starts = {w.start for w in windows}
        saved = {0: detach_state(state)}   # detached states where later windows start
        results = []
        for i, w in enumerate(windows):
            state = saved[w.start]
            bounds = sorted({w.start, w.loss_start, w.stop, *w.cuts,
                             *(s for s in future_starts if w.start < s < w.stop)})
            total, count = None, 0
            for a, b in zip(bounds[:-1], bounds[1:]):
                if a in w.cuts:
                    state = detach_state(state)
                outputs, state = forward(inputs[a:b], state)
                if b in future_starts or b == steps:
                    saved.setdefault(b, detach_state(state))
                terms = loss_terms(outputs, a, b) if a >= w.loss_start else None
                if terms is not None:
                    total = terms[0] if total is None else total + terms[0]
                    count += terms[1]
            next_start = windows[i + 1].start if i + 1 < len(windows) else steps
            for old in [s for s in saved if s < next_start]:
                del saved[old]
            if total is None:
                continue
            loss = total / count
            loss.backward()
            results.append(WindowResult(w, loss.item(), count, update() if update else None))
        return results, saved[steps]


# --- the trainer ----------------------------------------------------------------------------------------
class Trainer:
    """Trains ``model`` on ``task`` with ``optimizer``.

    One training step is one batch of ``batch_size`` sequences of ``seq_len`` steps (each starting
    from a zero state), run through ``TruncatedBPTT(tbptt, tbptt_k2)`` (default: full BPTT), so it
    makes ceil(seq_len / tbptt) optimiser updates, each after ``clip_grad_norm_(clip)`` (no clipping
    when ``clip`` is None).

    ``history`` holds, per step: ``loss`` (mean over the step's windows), ``smoothed_loss`` (an
    exponential moving average with factor ``smoothing``, bias-corrected), ``grad_norm`` (the mean
    pre-clipping norm over the step's updates); and ``eval``: a list of {"step", "loss", metric}.
    ``log`` receives a record dict after every step (the command line's progress bar is one such
    callable); None is silent.
    The batch stream is drawn from ``np.random.default_rng(seed)``: the same seed and the same initial
    model give the same losses, and ``state_dict``/``load_state_dict`` make a resumed run identical.

    Non-finite values: before each optimiser step the window's loss and the gradient norm are checked.
    If either is NaN/inf, ``NonFiniteError`` names the step and nothing is applied; with
    ``skip_nonfinite=True`` the update is skipped instead and counted in ``skipped_updates`` (and in the
    records as ``skipped``/``skipped_total``); such a step's loss stays in ``history`` but not in the
    smoothed loss.

    Compiled steps: with ``compile`` (default: ``set_default_compile``'s flag, True) a step runs as a
    ``tg.compile`` plan, traced on the first batch of each shape and replayed afterwards, about twice as
    fast at small sizes; the clip, the non-finite check and the update run in an ``io_callback`` at
    every replay. The numbers are the eager step's bit for bit, and the trainer checks that: the first
    replay of each batch shape is undone and the batch run eagerly, and a plan that differs in any bit
    (or a trace that warns or fails) sends the trainer back to eager steps for good, saying why in a
    ``RuntimeWarning`` and in ``compile_fallback``. ``compiled`` says which mode is running.

    Stopping: ``request_stop()`` (e.g. from a SIGINT handler) makes ``train`` return after the step in
    progress. A step that raises (an interrupt, an error) before its first update is undone (the batch
    RNGs are rewound), so ``state_dict`` is again the state after the previous step; one that raises
    after an update leaves the model between two steps, and ``state_dict`` refuses until a step completes.
    """

    def __init__(self, model, task, optimizer, *, batch_size=None, seq_len=None, tbptt=None,
                 tbptt_k2=None, clip=None, seed=0, log=None, eval_every=0, eval_batches=4,
                 smoothing=0.98, skip_nonfinite=False, compile=None):
        self.model, self.task, self.optimizer = model, task, optimizer
        self.batch_size = batch_size or task.default_batch_size
        self.seq_len = seq_len or task.default_seq_len
        check_positive("Trainer", batch_size=self.batch_size, seq_len=self.seq_len)
        task.check_seq_len(self.seq_len)
        if clip is not None and not (isinstance(clip, (int, float)) and clip > 0):
            raise ValueError(f"Trainer: clip must be a positive number or None, got {clip!r}")
        if not 0 <= smoothing < 1:
            raise ValueError(f"Trainer: smoothing must be in [0, 1), got {smoothing}")
        self.tbptt = TruncatedBPTT(tbptt or self.seq_len, tbptt_k2)
        if getattr(model, "num_directions", 1) == 2 and self.tbptt.k2 < self.seq_len:
            raise ValueError("Trainer: a bidirectional model reads the whole sequence; truncated BPTT "
                             "(tbptt < seq_len) does not apply to it")
        self.clip, self.smoothing, self.log = clip, smoothing, log
        self.eval_every, self.num_eval_batches = eval_every, eval_batches
        self.rng = np.random.default_rng(seed)
        self.step = 0
        self._ema, self._ema_weight = 0.0, 0.0
        self.history = {"loss": [], "smoothed_loss": [], "grad_norm": [], "eval": []}
        self._eval_data = None
        self.skip_nonfinite = bool(skip_nonfinite)
        self.skipped_updates = 0       # updates skipped for a non-finite loss or gradient, in all steps
        self.stop_requested = False    # set by request_stop(); train() returns after the current step
        self._torn = None              # why the model is between two steps (a step raised mid-way)
        self._in_step = None           # (updates applied, updates skipped) in the step running now
        self._norms = []               # the step's pre-clipping gradient norms, one per update
        # the step as a replayed plan (tg.compile): traced on the first batch of each shape
        compile = COMPILE[0] if compile is None else bool(compile)
        self._compiled = tg.compile(self._forward_backward) if compile else None
        self.compile_fallback = None   # why the trainer went back to eager steps, if it did
        self._verified = set()         # signatures whose first replay matched an eager run

    @property
    def smoothed_loss(self):
        """The exponential moving average of the loss (weight ``smoothing``), bias-corrected for the
        first steps; NaN before the first step."""
        return self._ema / self._ema_weight if self._ema_weight else float("nan")

    def request_stop(self):
        """Ask ``train`` to return after the step in progress (safe to call from a signal handler)."""
        self.stop_requested = True

    @property
    def at_step_boundary(self):
        """False while the model is between two steps: a step raised after applying an update."""
        return self._torn is None

    @property
    def compiled(self):
        """Whether steps run as a replayed plan (``compile=True`` and no fallback to eager steps)."""
        return self._compiled is not None

    def _update(self, loss):
        """Clip, check, and apply one window's gradient; records the pre-clipping gradient norm."""
        norm = clip_grad_norm_(self.model.parameters(), self.clip if self.clip else float("inf"))
        self._norms.append(norm)
        applied, skipped = self._in_step
        problem = (f"the loss is {loss}" if not math.isfinite(loss) else
                   f"the gradient norm is {norm}" if not math.isfinite(norm) else None)
        if problem is not None:
            self.optimizer.zero_grad()
            if self.skip_nonfinite:
                self._in_step = (applied, skipped + 1)
                self.skipped_updates += 1
                return
            updates = len(self.tbptt.windows(self.seq_len))
            which = f" (update {applied + skipped + 1} of {updates})" if updates > 1 else ""
            finding = f"step {self.step + 1}{which}: {problem}"
            raise NonFiniteError(
                f"Trainer: {finding}; training stopped before this update was applied. Lower the learning "
                f"rate (now {getattr(self.optimizer, 'lr', '?')}) or clip the gradient, or pass "
                f"skip_nonfinite=True to skip such updates", finding)
        self._in_step = (applied + 1, skipped)   # from here on the model is inside this step
        self.optimizer.step()
        self.optimizer.zero_grad()

    def train_step(self):
        """One batch; returns its record (also appended to ``history``)."""
        rng_state = self.rng.bit_generator.state
        init_state = tg.random.default_generator().bit_generator.state
        self._in_step = (0, 0)
        try:
            record = self._run_step()
        except BaseException as exc:
            if self._in_step[0] == 0:   # nothing applied: rewind to the end of the previous step
                self.rng.bit_generator.state = rng_state
                tg.random.default_generator().bit_generator.state = init_state
            else:
                self._torn = (f"step {self.step + 1} stopped ({type(exc).__name__}) after "
                              f"{self._in_step[0]} of its updates")
            raise
        finally:
            self._in_step = None
        self._torn = None
        return record

    def _forward_backward(self, inputs, targets):
        """One batch's windows: forward, backward and (in an ``io_callback``) each update; returns the
        windows' mean losses and term counts. This is the function ``tg.compile`` traces and replays:
        the Python decisions on the loss and gradient (``_update``) run in the callback at every
        replay, on that replay's values."""
        self.model.train()
        self.optimizer.zero_grad()
        window = []   # the loss pieces of the window being run, checked before its update

        def loss_terms(outputs, a, b):
            terms = self.task.loss_terms(outputs, targets, a, b, self.seq_len)
            if terms is not None:
                window.append(terms)
            return terms

        def update():
            sums, count = [t[0] for t in window], sum(t[1] for t in window)
            window.clear()
            tg.io_callback(lambda *arrays: self._update(sum(a.item() for a in arrays) / count), *sums)

        results, _ = self.tbptt.run(self.model, inputs, None, loss_terms, update)
        return [r.loss for r in results], [r.count for r in results]

    def _run_batch(self, inputs, targets):
        """``_forward_backward`` replayed when compiled; on the first batch of a shape it is traced (and
        run eagerly): a trace the plan could not replay faithfully (a ``CompileWarning``: Python code
        reading traced values, numpy writes into tracked arrays) or cannot record (``CompileError``)
        sends the trainer back to eager steps for good, with the reason in ``compile_fallback``."""
        if self._compiled is None:
            return self._forward_backward(inputs, targets)
        if len(self._verified) < len(self._compiled.plans):   # a plan not yet checked: is it this one?
            signature = self._compiled.signature(inputs, targets)
            if signature in self._compiled.plans and signature not in self._verified:
                return self._verified_replay(inputs, targets, signature)
        traces = self._compiled.traces
        draws = tg.random.default_generator().bit_generator.state   # dropout masks drawn by the step
        refused = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", tg.CompileWarning)
            try:
                result = self._compiled(inputs, targets)
            except tg.CompileError as exc:
                if self._in_step[0] or self._in_step[1]:
                    raise
                refused = exc
        if refused is not None:   # nothing was applied: run the batch again, eagerly
            self._fall_back(str(refused))
            self._norms.clear()
            tg.random.default_generator().bit_generator.state = draws
            return self._forward_backward(inputs, targets)
        problems = [w for w in caught if issubclass(w.category, tg.CompileWarning)]
        for w in caught:
            if w not in problems:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if problems and self._compiled.traces > traces:   # this step ran eagerly: its numbers are right
            self._fall_back(str(problems[0].message))
        return result

    def _verified_replay(self, inputs, targets, signature):
        """The first replay of a plan (one per batch shape), checked: replayed, undone, run eagerly on the same batch, and compared bit
        for bit (losses, gradient norms, parameters, optimiser state). A plan that differs — one that
        froze a value the step computed with numpy from its inputs, say — is dropped (the eager
        results stand); one that agrees is trusted from then on."""
        generator = tg.random.default_generator()
        before = self._snapshot(), generator.bit_generator.state, self._in_step, self.skipped_updates
        try:
            replayed = self._compiled(inputs, targets), list(self._norms), self._snapshot(), None
        except Exception as exc:   # noqa: BLE001 - compared with what the eager step does below
            replayed = None, None, None, exc
        state, draws, self._in_step, self.skipped_updates = before
        self._restore(state)
        generator.bit_generator.state = draws
        self._norms.clear()
        try:
            eager = self._forward_backward(inputs, targets)
        except Exception as exc:
            if replayed[3] is None or type(replayed[3]) is not type(exc) or str(replayed[3]) != str(exc):
                self._fall_back("its first replay did not raise what the eager step raised")
            raise
        if replayed[3] is not None or not _same_numbers(replayed[0], eager) or \
                not _same_numbers(replayed[1], self._norms) or not _same_state(replayed[2], self._snapshot()):
            self._fall_back("its first replay differed from the eager step on the same batch (a value "
                            "the step computed from its inputs outside ops was frozen at trace time)")
        else:
            self._verified.add(signature)
        return eager

    def _snapshot(self):
        return ([p._data.copy() for p in self.model.parameters()], self.optimizer.state_dict())

    def _restore(self, state):
        params, optimizer_state = state
        for p, value in zip(self.model.parameters(), params):
            p.data[...] = value
        self.optimizer.load_state_dict(optimizer_state)

    def _fall_back(self, reason):
        self._compiled, self.compile_fallback = None, reason
        warnings.warn(f"Trainer: training with eager steps (compile=False): the step cannot be replayed "
                      f"as a plan: {reason}", RuntimeWarning, stacklevel=4)

    def _run_step(self):
        inputs, targets = self.task.batch(self.rng, self.batch_size, self.seq_len)
        self._norms.clear()
        losses, counts = self._run_batch(inputs, targets)
        count = sum(counts)
        loss = sum(l * c for l, c in zip(losses, counts)) / count
        grad_norm = float(np.mean(self._norms))
        skipped = self._in_step[1]
        self.step += 1
        if math.isfinite(loss):  # a skipped non-finite step is in the history, not in the average
            self._ema = self.smoothing * self._ema + (1 - self.smoothing) * loss
            self._ema_weight = self.smoothing * self._ema_weight + (1 - self.smoothing)
        for key, value in (("loss", loss), ("smoothed_loss", self.smoothed_loss), ("grad_norm", grad_norm)):
            self.history[key].append(value)
        return {"step": self.step, "loss": loss, "smoothed_loss": self.smoothed_loss, "grad_norm": grad_norm,
                "skipped": skipped, "skipped_total": self.skipped_updates}

    def evaluate(self):
        """Mean loss and metric on the task's fixed evaluation batches (eval mode, no graph)."""
        if self._eval_data is None:
            self._eval_data = self.task.eval_batches(self.batch_size, self.seq_len, self.num_eval_batches)
        self.model.eval()
        losses, metrics = [], []
        try:
            with tg.no_grad():
                for inputs, targets in self._eval_data:
                    outputs, _ = self.model(inputs)
                    losses.append(self.task.loss(outputs, targets).item())
                    metrics.append(self.task.metric(outputs, targets))
        finally:
            self.model.train()
        return {"loss": float(np.mean(losses)), self.task.metric_name: float(np.mean(metrics))}

    def train(self, steps=None, time_limit=None):
        """Run ``steps`` more steps, stopping early once ``time_limit`` seconds have passed (``steps``
        None: until the time limit) or after the step during which ``request_stop()`` was called;
        returns ``history``."""
        if steps is None and time_limit is None:
            raise ValueError("Trainer.train: give steps, time_limit or both")
        if steps is not None:
            check_positive("Trainer.train", steps=steps)
        begin = time.perf_counter()
        last = None if steps is None else self.step + steps
        while (last is None or self.step < last) and not self.stop_requested:
            record = self.train_step()
            record.update(total_steps=last, elapsed=time.perf_counter() - begin)
            out_of_time = time_limit is not None and record["elapsed"] >= time_limit
            if out_of_time:
                record["total_steps"] = self.step
            if self.eval_every and (self.step % self.eval_every == 0 or self.step == record["total_steps"]):
                record["eval"] = self.evaluate()
                self.history["eval"].append({"step": self.step, **record["eval"]})
            if self.log is not None:
                self.log(record)
            if out_of_time or self.stop_requested:
                break
        return self.history

    # --- checkpointing ---------------------------------------------------------------------------
    def state_dict(self):
        """Everything besides the model and optimiser that a resumed run needs (JSON values/arrays).

        Raises ``RuntimeError`` while the model is between two steps (see the class docstring): such a
        state would not resume exactly."""
        if self._torn is not None:
            raise RuntimeError(f"Trainer.state_dict: {self._torn}, so the model is between two steps and "
                               f"a resumed run would not be exact; complete a step first")
        return {"step": self.step, "rng": self.rng.bit_generator.state,
                "init_rng": tg.random.default_generator().bit_generator.state,
                "ema": self._ema, "ema_weight": self._ema_weight, "skipped_updates": self.skipped_updates,
                "history": {k: np.asarray(v) if k != "eval" else v for k, v in self.history.items()}}

    def load_state_dict(self, state):
        """Restore ``state_dict()``'s state; all-or-nothing (``ValueError`` names what is wrong)."""
        try:
            step, skipped = state["step"], state.get("skipped_updates", 0)
            for name, value in (("step", step), ("skipped_updates", skipped)):
                if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                    raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
            rng = _checked_rng_state(self.rng, state["rng"])
            init_rng = _checked_rng_state(tg.random.default_generator(), state["init_rng"])
            ema, ema_weight = float(state["ema"]), float(state["ema_weight"])
            history = state["history"]
            restored = {k: list(history[k]) if k == "eval" else
                        [float(v) for v in np.asarray(history[k], dtype=np.float64).ravel()]
                        for k in ("loss", "smoothed_loss", "grad_norm", "eval")}
            if not all(isinstance(e, dict) for e in restored["eval"]):
                raise ValueError("history['eval'] must be a list of dicts")
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError, IndexError) as exc:
            raise ValueError(f"Trainer.load_state_dict: the trainer state is incomplete or corrupt "
                             f"({type(exc).__name__}: {exc})") from None
        self.step, self.skipped_updates = int(step), int(skipped)
        self.rng.bit_generator.state = rng
        tg.random.default_generator().bit_generator.state = init_rng
        self._ema, self._ema_weight = ema, ema_weight
        self.history = restored
        self._torn = None
        return self


def _same_numbers(a, b):
    """Whether two (nested) lists of numbers are equal, NaN equal to NaN (a skipped update's loss)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


def _same_state(a, b):
    """Whether two ``Trainer._snapshot()`` results are equal bit for bit (NaN equal to NaN)."""
    (params_a, opt_a), (params_b, opt_b) = a, b
    same = lambda x, y: np.array_equal(x, y, equal_nan=np.asarray(x).dtype.kind == "f")  # noqa: E731
    return all(same(x, y) for x, y in zip(params_a, params_b)) and opt_a.keys() == opt_b.keys() \
        and all(same(opt_a[k], opt_b[k]) for k in opt_a)


def _checked_rng_state(generator, state):
    """``state`` after checking that ``generator``'s kind of bit generator accepts it (on a scratch copy)."""
    scratch = type(generator.bit_generator)()
    scratch.state = state
    return state
