"""Line plots as SVG: the per-step gradient norm ‖∂L/∂h_t‖ against t, and training loss curves.

Each run's line is the SVG group ``id="run-<k>"`` (k in the order given). matplotlib is an optional
extra (``pip install tinygraph[plot]``), imported only when a plot is made, through ``Figure`` (no
pyplot, no GUI). The SVG is byte-stable: a fixed ``svg.hashsalt``, no date in the metadata, glyphs
drawn as paths. Titles, axis labels and run labels are written out and cut as in the graph
pictures (``visualize.labels``), so a control character cannot make the SVG invalid.
"""
import io
import math

from .grads import norm
from .labels import label_text
from .render import write_atomic
from .structure import StepIndex

SVG_RC = {"svg.hashsalt": "tinygraph", "svg.fonttype": "path", "path.simplify": False}


def _figure(title, xlabel, ylabel, log_y):
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("visualize plots need matplotlib: pip install 'tinygraph[plot]' "
                          "(or pip install matplotlib)") from None
    fig = Figure(figsize=(6.4, 3.6), dpi=100)
    ax = fig.add_subplot()
    ax.set(title=label_text(title), xlabel=label_text(xlabel), ylabel=label_text(ylabel))
    if log_y:
        ax.set_yscale("log")
    ax.grid(True, which="major", alpha=0.3)
    return matplotlib, fig, ax


def _finish(matplotlib, fig, ax, path):
    if ax.get_legend_handles_labels()[0]:
        ax.legend(frameon=False)
    fig.tight_layout()
    buffer = io.StringIO()
    with matplotlib.rc_context(SVG_RC):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": "tinygraph"})
    text = buffer.getvalue()
    if path is not None:
        write_atomic(path, text.encode("utf-8"))
    return text


def _series(runs, what):
    if not isinstance(runs, dict):
        runs = {"": runs}
    if not runs:
        raise ValueError(f"{what}: no runs to plot")
    out = {}
    for label, values in runs.items():
        values = [float(v) for v in values]
        if not values:
            raise ValueError(f"{what}: run {label!r} has no values")
        out[label_text(label)] = values   # legend text: control characters written out, cut
    return out


def gradflow(runs, path=None, title="gradient flow back through time", ylabel="‖∂L/∂h_t‖"):
    """Plot per-step gradient norms against the time step t on a log scale; returns the SVG text.

    Args:
        runs: ``{label: [norm at t=0, norm at t=1, ...]}`` (several runs share the plot, e.g. RNN vs
            LSTM), or one sequence. Zeros and non-finite values are left out (log scale).
        path: also write the SVG there (atomically).
    """
    runs = _series(runs, "gradflow")
    matplotlib, fig, ax = _figure(title, "time step t", ylabel, log_y=True)
    for k, (label, values) in enumerate(runs.items()):
        points = [(t, v) for t, v in enumerate(values) if v > 0 and math.isfinite(v)]
        if not points:
            raise ValueError(f"gradflow: run {label!r} has no positive finite value to draw on a log "
                             f"scale (all {len(values)} are zero or not finite)")
        ts, vs = zip(*points)
        ax.plot(ts, vs, marker="o" if len(values) <= 40 else None, markersize=3, label=label or None,
                gid=f"run-{k}")
    return _finish(matplotlib, fig, ax, path)


def loss_curve(histories, path=None, title="training loss", log_y=False, xlabel="step"):
    """Plot training losses (``{label: [loss per step]}`` or one sequence); returns the SVG text."""
    histories = _series(histories, "loss_curve")
    matplotlib, fig, ax = _figure(title, xlabel, "loss", log_y=log_y)
    for k, (label, values) in enumerate(histories.items()):
        ax.plot(range(len(values)), values, label=label or None, gid=f"run-{k}")
    return _finish(matplotlib, fig, ax, path)


def state_grad_norms(graph, name="h"):
    """``{loop name: [‖∂L/∂h_t‖ for each t]}`` from a graph whose state nodes kept their gradients
    (``retain_all`` before backward): the nodes called ``name`` inside each recorded time step
    (``Graph.steps``), by loop (``"lstm/l0"``) and ``t``. Steps whose state holds no gradient give
    0.0 (nothing flowed back to them)."""
    idx = StepIndex(graph)
    out = {}
    for i, node in enumerate(graph.nodes):
        home = idx.home[i]
        if home is not None and i not in idx.attached and node.name == name:
            out.setdefault(home[0], {})[home[1]] = norm(node.grad) or 0.0
    if not out:
        raise ValueError(f"state_grad_norms: no node named {name!r} inside a recorded time step "
                         f"(Graph.steps) of this graph")
    return {prefix: [by_t[t] for t in sorted(by_t)] for prefix, by_t in out.items()}
