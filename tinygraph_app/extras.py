"""The command line's optional dependencies, checked before a command does any work.

A missing one raises ``MissingDependencyError``, which the CLI prints as one line naming what to
install and exits with code 2::

    tinygraph gradflow: error: the plot needs matplotlib: pip install 'tinygraph[plot]'

- matplotlib (extra ``plot``): ``gradflow``, ``experiment`` (every experiment plots its result);
- Graphviz's ``dot`` program (not a Python package): ``render`` (all but ``.dot`` output),
  ``experiment chars`` (it draws a training window's graph).

``demo`` needs neither: it writes .dot files and skips its plots instead, saying so.
"""
import importlib
import shutil

GRAPHVIZ_INSTALL = ("install Graphviz (`sudo apt-get install graphviz` on Debian/Ubuntu, `brew install "
                    "graphviz` on macOS, `conda install graphviz`, or https://graphviz.org/download/)")


class MissingDependencyError(ImportError):
    """An optional dependency a command needs is not installed; the message says how to get it."""


def require(module, extra, what):
    """Import and return ``module``, or raise ``MissingDependencyError``: ``"<what> needs <module>:
    pip install 'tinygraph[<extra>]'"`` (with the import's own error when the module is there but
    fails to import, e.g. a dependency of its own is missing)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        present = exc.name is not None and exc.name.split(".")[0] != module.split(".")[0]
        broken = f" (it is installed but its import failed: {exc})" if present else ""
        raise MissingDependencyError(f"{what} needs {module}{broken}: pip install 'tinygraph[{extra}]'") \
            from None


def require_dot(what, instead=None):
    """The path of Graphviz's ``dot`` program, or ``MissingDependencyError`` saying ``what`` needs it,
    how to install it and, if given, what to do ``instead`` (``"write -o graph.dot"``)."""
    path = shutil.which("dot")
    if path is None:
        alternative = f", or {instead}" if instead else ""
        raise MissingDependencyError(f"{what} needs Graphviz's `dot` program, which is not on PATH: "
                                     f"{GRAPHVIZ_INSTALL}{alternative}")
    return path
