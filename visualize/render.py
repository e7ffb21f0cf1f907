"""DOT -> SVG/PNG/PDF with Graphviz's ``dot``: a timeout, clear errors, atomic writes, Jupyter display.

``dot`` is looked up on ``PATH`` when a picture is made, never at import: building DOT text needs no
Graphviz install, only laying it out does.
"""
import math
import os
import shutil
import subprocess

import tinygraph as tg
from tinygraph.errors import TinygraphError
from tinygraph.io import write_bytes_atomic as write_atomic  # noqa: F401  (re-exported)

from .dot import to_dot

FORMATS = ("svg", "png", "pdf")
"""The image formats ``render`` and ``layout`` ask Graphviz's ``dot`` for."""
SUFFIXES = (".svg", ".png", ".pdf", ".dot", ".gv", ".html")   # what ``render`` reads the format from
"""The file suffixes ``render`` writes: an image, the DOT text (``.dot``, ``.gv``) or the explorer page
(``.html``)."""
DEFAULT_TIMEOUT = 120.0
INSTALL_HINT = ("install Graphviz so that `dot` is on PATH: `sudo apt-get install graphviz` "
                "(Debian/Ubuntu), `brew install graphviz` (macOS), `conda install graphviz`, or see "
                "https://graphviz.org/download/ — the DOT text (to_dot(...).source) works without it")


class RenderError(TinygraphError, RuntimeError):
    """``dot`` failed or took longer than its timeout."""


class GraphvizNotFoundError(RenderError, FileNotFoundError):
    """Graphviz's ``dot`` executable is not installed (or not on PATH)."""


def dot_executable():
    """Path of ``dot``; raises ``GraphvizNotFoundError`` saying how to install it."""
    path = shutil.which("dot")
    if path is None:
        raise GraphvizNotFoundError(f"Graphviz's `dot` executable was not found on PATH; {INSTALL_HINT}")
    return path


def check_timeout(timeout):
    """``timeout`` if it is a positive finite number of seconds or None (no limit), else ValueError."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or \
            not (math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"render: timeout must be a positive finite number of seconds (or None for "
                         f"no limit), got {timeout!r}")
    return timeout


def format_of(path):
    """The picture format a file name asks for by its suffix: ``"svg"``, ``"png"``, ``"pdf"``,
    ``"dot"`` (``.dot``/``.gv``: the DOT text) or ``"html"`` (the interactive explorer,
    ``visualize.explore``); ValueError naming the suffixes for any other."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"render: cannot tell the picture format from {os.fspath(path)!r}: end the "
                         f"file name in {', '.join(SUFFIXES[:-1])} or {SUFFIXES[-1]}, or pass format=")
    return "dot" if suffix in (".dot", ".gv") else suffix[1:]


def render_html(graph, path, timeout=DEFAULT_TIMEOUT, link=None, **options):
    """``render`` into an ``.html`` file: the explorer of ``graph`` (``visualize.explore``)."""
    if link is not None:
        raise ValueError("render: link= joins separate SVG files; an .html explorer holds the folded and "
                         "the unrolled picture itself: drop link (or write .svg files)")
    from .explore import explore   # explore builds on this module
    return explore(graph, path, timeout=timeout, **options).path


def layout(source, format="svg", timeout=DEFAULT_TIMEOUT):
    """Run ``dot -T<format>`` on DOT ``source`` (str or Digraph); returns the output bytes.
    ``timeout``: seconds (a positive finite number), or None for no limit."""
    if format not in FORMATS:
        raise ValueError(f"render: format must be one of {FORMATS}, got {format!r}")
    check_timeout(timeout)
    source = getattr(source, "source", source)
    try:
        done = subprocess.run([dot_executable(), f"-T{format}"], input=source.encode("utf-8"),
                              capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        nodes = source.count("\n\t") + source.count("\n    ")
        raise RenderError(
            f"dot did not finish laying out this graph (~{nodes} statements) within {timeout:g} s; draw "
            f"less of it: steps='0:3,-2:' (a window of time steps), level='cell' or 'layer', a smaller "
            f"max_nodes, or pass a larger timeout") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip() or f"exit code {done.returncode}"
        raise RenderError(f"dot failed to lay out the graph: {message}")
    return done.stdout


def svg(graph, timeout=DEFAULT_TIMEOUT, **options):
    """The SVG text of ``to_dot(graph, **options)``."""
    return layout(to_dot(graph, **options), "svg", timeout).decode("utf-8")


def render(graph, path, format=None, timeout=DEFAULT_TIMEOUT, **options):
    """Draw ``graph`` (see ``to_dot`` for the options) into ``path``, written atomically.

    ``format``: ``"svg"``, ``"png"``, ``"pdf"``, ``"dot"`` for the DOT text (needs no Graphviz), or
    ``"html"`` for the interactive explorer (``visualize.explore``: ``view`` is the picture it shows
    first); when omitted it is read from the file suffix (``.svg``, ``.png``, ``.pdf``,
    ``.dot``/``.gv``, ``.html``), and any other suffix is refused before anything is drawn.
    Returns ``path``.
    """
    path = os.fspath(path)
    format = format_of(path) if format is None else format
    if format == "html":
        return render_html(graph, path, timeout, **options)
    if format not in FORMATS + ("dot", "gv"):
        raise ValueError(f"render: format must be one of {FORMATS + ('dot',)}, got {format!r}")
    if format not in ("dot", "gv"):
        check_timeout(timeout)
    dot = to_dot(graph, **options)
    data = dot.source.encode("utf-8") if format in ("dot", "gv") else layout(dot, format, timeout)
    write_atomic(path, data)
    return path


def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
    """Jupyter display of a Graph: SVG when ``dot`` works, else the DOT text."""
    view = "folded" if self.loop_edges else "unrolled"
    dot = to_dot(self, view=view, legend=False)
    try:
        return {"image/svg+xml": layout(dot, "svg", timeout=30).decode("utf-8")}
    except RenderError:
        return {"text/plain": dot.source}


def install_display_hook():
    """Give ``tg.Graph`` a ``_repr_mimebundle_`` (tinygraph cannot import visualize: the hook is
    installed from this side when visualize is imported)."""
    tg.Graph._repr_mimebundle_ = _repr_mimebundle_
