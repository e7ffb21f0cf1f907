"""Training progress on the command line (`tinygraph train`, `tinygraph demo`): the Trainer's ``log``.

On a terminal (stderr is a TTY) it is a tqdm bar on stderr with the rate (steps/s), the time left and
the latest losses; each evaluation is a line on stdout above the bar::

    step 40/200  loss 2.9812  smoothed 3.0507  |grad| 0.412  3.1s  eval loss 2.9433  eval accuracy 0.1990
     45%|████▌     | 90/200 [00:07<00:09, 11.83 steps/s, loss 2.6671, smoothed 2.8130, |grad| 0.387]

Anywhere else (a pipe, a log file, CI) there is no bar and no carriage return: the first kind of line,
on stdout, every ``every`` steps, at each evaluation and at the last step.
"""
import sys

from tqdm import tqdm

BAR = "{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_noinv_fmt}{postfix}]"
BAR_UNKNOWN_TOTAL = "{n_fmt} steps [{elapsed}, {rate_noinv_fmt}{postfix}]"   # a time-limited run


def losses(record):
    """A Trainer record's losses as the progress shows them: ``["loss 2.6671", "smoothed 2.8130",
    "|grad| 0.387"]``, and the count of skipped non-finite updates if there are any."""
    parts = [f"loss {record['loss']:.4f}", f"smoothed {record['smoothed_loss']:.4f}",
             f"|grad| {record['grad_norm']:.3g}"]
    if record.get("skipped_total"):
        parts.append(f"skipped {record['skipped_total']} non-finite")
    return parts


def format_record(record, total=None):
    """One line for a Trainer record: the step (of ``total``, when known), losses, seconds, evaluation."""
    step = f"step {record['step']}" + (f"/{total}" if total else "")
    evaluation = [f"eval {name} {value:.4f}" for name, value in record.get("eval", {}).items()]
    return "  ".join([step, *losses(record), f"{record['elapsed']:.1f}s", *evaluation])


class Progress:
    """The Trainer's ``log`` callback: a bar when ``bar_stream`` (default stderr) is a TTY, else lines
    on ``stream`` (default stdout) every ``every`` steps.

    ``steps``: how many steps this run trains, counted from the first record it gets (a resumed run
    starts past 0); None takes the end from each record's ``total_steps`` (unknown in a time-limited
    run until its last step). Use it as a context manager (or call ``close``) so that a run which stops
    early leaves the terminal on a fresh line.
    """

    def __init__(self, steps=None, every=10, stream=None, bar_stream=None):
        self.steps, self.every = steps, max(1, int(every))
        self.stream = stream or sys.stdout
        self.bar_stream = bar_stream or sys.stderr
        self.tty = hasattr(self.bar_stream, "isatty") and self.bar_stream.isatty()
        self.end = None    # the step the run ends at, once known
        self.bar = None

    def __call__(self, record):
        step = record["step"]
        if self.steps is not None:
            self.end = self.end or step - 1 + self.steps
        else:
            self.end = record.get("total_steps")
        final = step == self.end
        if self.tty:
            self._show(record, final)
        elif final or "eval" in record or step % self.every == 0:
            self.stream.write(format_record(record, self.end) + "\n")
            self.stream.flush()

    def _show(self, record, final):
        if self.bar is None:
            first = record["step"] - 1
            self.bar = tqdm(total=self.end, initial=first, unit=" steps", file=self.bar_stream,
                            dynamic_ncols=True, bar_format=BAR if self.end else BAR_UNKNOWN_TOTAL)
        if self.end and self.bar.total != self.end:   # a time-limited run's end became known
            self.bar.total, self.bar.bar_format = self.end, BAR
        self.bar.set_postfix_str(", ".join(losses(record)), refresh=False)
        self.bar.update(record["step"] - self.bar.n)
        if "eval" in record:
            self.bar.write(format_record(record, self.end), file=self.stream)
            self.stream.flush()
        if final:
            self.close()

    def close(self):
        """Close the bar, if one is drawn (a context manager's exit does it too)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
