"""What every experiment shares: its claims (results stated with tolerances), its report (a table and
the claims' verdicts, written as Markdown and JSON), byte-stable SVG figures, and the small numerical
helpers (a matrix of a chosen spectral radius, a fitted rate).

Files are written atomically and hold no wall-clock times, so the same seed gives the same bytes.
"""
import io
import json
import math
import multiprocessing
import operator
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from visualize.plots import SVG_RC
from visualize.render import write_atomic

REPRODUCIBLE = ("bit-identical with the same seed on one BLAS build; across builds the claims below hold "
                "within the stated tolerances")
COMPARISONS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


@dataclass(frozen=True)
class Claim:
    """One result an experiment states: a value measured from its numbers and the bound it must meet.

    Attributes:
        name: a short identifier.
        sentence: the claim as the README says it, with ``{bound}`` (a format field, e.g. ``{bound:g}``)
            where the bound goes.
        measure: ``numbers -> float``: the value, read from the experiment's JSON numbers (the
            ``"numbers"`` of ``<name>.json``; non-finite floats are the strings "inf"/"nan" there).
        compare: ``"<"``, ``"<="``, ``">"`` or ``">="``: the claim holds when ``value compare bound``.
        full: the bound for the full-size run.
        quick: the bound for the --quick run, when the shorter run needs its own (default: ``full``).

    Bounds are chosen to hold on any BLAS build: rounding differences grow through a chaotic training
    run, so what a claim measures is the textbook result (diverges or not, under a bound or not), never
    a chaotic figure such as the step at which a diverging run overflows.
    """
    name: str
    sentence: str
    measure: Callable
    compare: str
    full: float
    quick: float = None

    def __post_init__(self):
        if self.compare not in COMPARISONS:
            raise ValueError(f"Claim {self.name!r}: compare must be one of {', '.join(COMPARISONS)}, "
                             f"got {self.compare!r}")

    def bound(self, quick=False):
        """The bound the measured value is compared with: the quick run's when given, else the full's."""
        return self.quick if quick and self.quick is not None else self.full

    def text(self, quick=False):
        """The sentence with the bound of the full-size (or quick) run filled in."""
        return self.sentence.format(bound=self.bound(quick))

    def check(self, numbers, quick=False):
        """``(measured value, holds)`` on an experiment's numbers; a NaN value never holds."""
        value = float(self.measure(numbers))
        return value, bool(COMPARISONS[self.compare](value, self.bound(quick)))


def check_claims(claims, numbers, quick=False):
    """Every claim's verdict on ``numbers`` (taken as they are written to JSON): a list of
    ``{"name", "claim", "value", "bound", "holds"}``."""
    numbers = jsonable(numbers)
    verdicts = []
    for claim in claims:
        value, holds = claim.check(numbers, quick)
        verdicts.append(dict(name=claim.name, claim=claim.text(quick), value=value,
                             bound=claim.bound(quick), holds=holds))
    return verdicts


def worst(values):
    """The largest of ``values`` (JSON numbers), or inf if any is not finite: how far a run went."""
    values = [float(v) for v in values]
    return math.inf if not all(map(math.isfinite, values)) else max(values)


@dataclass
class Report:
    """An experiment's result: a table plus the numbers and files behind it.

    Attributes:
        name: the experiment's registry name (files are ``<name>.md`` and ``<name>.json``).
        title: one line saying what was measured.
        columns, rows: the table (rows are lists of already formatted cells).
        notes: lines printed under the table (settings, the verdict).
        numbers: the raw measurements, JSON-able (what the tests assert on).
        files: paths of the pictures written, relative to the output directory.
        claims: the verdicts of the experiment's claims (``check_claims``), set by ``run_experiment``.
    """
    name: str
    title: str
    columns: list
    rows: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    numbers: dict = field(default_factory=dict)
    files: list = field(default_factory=list)
    claims: list = field(default_factory=list)

    def markdown(self):
        """The report as Markdown: the title, the table, the notes and the files written."""
        lines = [f"### {self.title}", ""] + markdown_table(self.columns, self.rows) + [""]
        lines += [f"- {note}" for note in self.notes]
        if self.files:
            lines.append("- pictures: " + ", ".join(self.files))
        if self.claims:
            lines += ["", f"Reproducible: {REPRODUCIBLE}.", ""] + claims_table(self.claims)
        return "\n".join(lines) + "\n"

    def to_json(self):
        """The report as JSON text (every field, NaN refused), ending in a newline."""
        return json.dumps({"name": self.name, "title": self.title, "columns": self.columns,
                           "rows": self.rows, "notes": self.notes, "claims": jsonable(self.claims),
                           "numbers": jsonable(self.numbers), "files": self.files},
                          indent=1, allow_nan=False) + "\n"

    def write(self, out_dir):
        """Write ``<name>.md`` and ``<name>.json`` into ``out_dir``; returns their paths."""
        paths = [os.path.join(out_dir, f"{self.name}.{suffix}") for suffix in ("md", "json")]
        for path, text in zip(paths, (self.markdown(), self.to_json())):
            write_atomic(path, text.encode("utf-8"))
        return paths


def markdown_table(columns, rows):
    """The lines of a Markdown table (a "|" inside a cell is escaped: it would split the cell)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    return lines + ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]


def claims_table(verdicts):
    """The lines of the claims' table: each claim, its measured value and ✓ or ✗ (what the README's
    claims tables copy)."""
    return markdown_table(["claim (holds across BLAS builds)", "measured", "holds"],
                          [[v["claim"], sci(v["value"], 3), "✓" if v["holds"] else "✗"] for v in verdicts])


def jsonable(value):
    """Numbers, lists and dicts with numpy types converted, floats rounded to 12 significant digits
    and non-finite floats spelled as strings ("inf", "nan"), so the JSON stays strict.

    The rounding keeps the files byte-stable from run to run: numpy's sums and BLAS kernels may round
    differently in the last bit depending on how an array happens to be aligned in memory.
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return float(f"{value:.12g}") if math.isfinite(value) else str(value)
    return value


def sci(value, digits=2):
    """A number for a table: ``3.1e-12``; non-finite values as ``inf``/``nan``."""
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    return f"{value:.{digits}g}" if 1e-3 <= abs(value) < 1e4 or value == 0 else f"{value:.{digits - 1}e}"


# --- numerics ------------------------------------------------------------------------------------------
def scaled_orthogonal(rng, size, radius):
    """A (size, size) matrix ``radius · Q`` with Q a random orthogonal matrix (Haar, via QR).

    Every eigenvalue has modulus ``radius`` and every singular value equals it, so the spectral radius
    and the spectral norm coincide: the per-step Jacobian bound ‖W‖ and the asymptotic rate ρ are the
    same number, and a linear recurrence scales every vector by exactly ``radius`` per step.
    """
    q, r = np.linalg.qr(rng.standard_normal((size, size)))
    return radius * q * np.sign(np.diag(r))


def spectral_radius(matrix):
    """ρ(matrix): the largest absolute value of its eigenvalues."""
    return float(np.abs(np.linalg.eigvals(matrix)).max())


def fit_rate(norms):
    """The per-step factor r of a geometric fit norms[k] ≈ a·r^k (least squares on log norms over the
    positive finite entries; k = distance in steps). r < 1: vanishing, r > 1: exploding."""
    norms = np.asarray(norms, dtype=np.float64)
    distance = np.arange(len(norms))
    usable = (norms > 0) & np.isfinite(norms)
    if usable.sum() < 2:
        return float("nan")
    slope = np.polyfit(distance[usable], np.log(norms[usable]), 1)[0]
    return float(np.exp(slope))


# --- independent runs in parallel ------------------------------------------------------------------------
def map_jobs(fn, calls, jobs=1):
    """``[fn(*args) for args in calls]``, in up to ``jobs`` forked worker processes.

    The results are the same, in the same order, as the serial loop: every call seeds its own
    generators. Each worker runs one BLAS thread (many small matrix products: threads only add
    synchronisation). Serial when ``jobs <= 1`` or where processes cannot be forked.
    """
    calls = list(calls)
    if jobs <= 1 or len(calls) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [fn(*args) for args in calls]
    from tinygraph_app.train import configure_runtime
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(min(jobs, len(calls)), mp_context=context, initializer=configure_runtime,
                             initargs=(1,)) as pool:
        return list(pool.map(_star_call, [(fn, args) for args in calls]))


def _star_call(fn_and_args):
    fn, args = fn_and_args
    return fn(*args)


# --- figures --------------------------------------------------------------------------------------------
def figure(panels=1, width=6.4, height=3.8):
    """A matplotlib ``Figure`` with ``panels`` side-by-side axes (no pyplot, no GUI)."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width * panels, height), dpi=100)
    axes = fig.subplots(1, panels, squeeze=False)[0]
    for ax in axes:
        ax.grid(True, which="major", alpha=0.3)
    return fig, list(axes)


def save_svg(fig, path):
    """Write ``fig`` as a byte-stable SVG (fixed hash salt, no date, glyphs as paths)."""
    import matplotlib
    for ax in fig.axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(frameon=False, fontsize="small")
    fig.tight_layout()
    buffer = io.StringIO()
    with matplotlib.rc_context(SVG_RC):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": "tinygraph"})
    write_atomic(path, buffer.getvalue().encode("utf-8"))
    return path
