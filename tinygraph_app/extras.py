"""The command line's optional dependencies, checked before a command does any work.

A missing one raises ``MissingDependencyError``, which the CLI prints as one line naming what to
install and exits with code 2::

    tinygraph gradflow: error: the plot needs matplotlib: pip install 'tinygraph[plot]'

- matplotlib (extra ``plot``): ``gradflow``, ``experiment`` (every experiment plots its result);
- Graphviz's ``dot`` program (not a Python package): ``render`` (all but ``.dot`` output),
  ``experiment chars`` (it draws a training window's graph).

``demo`` needs neither: it writes .dot files and skips its plots instead, saying so.
"""
import shutil

from tinygraph.extras import MissingDependencyError, require  # noqa: F401  (the one definition)

GRAPHVIZ_INSTALL = ("install Graphviz (`sudo apt-get install graphviz` on Debian/Ubuntu, `brew install "
                    "graphviz` on macOS, `conda install graphviz`, or https://graphviz.org/download/)")


def require_dot(what, instead=None):
    """The path of Graphviz's ``dot`` program, or ``MissingDependencyError`` saying ``what`` needs it,
    how to install it and, if given, what to do ``instead`` (``"write -o graph.dot"``)."""
    path = shutil.which("dot")
    if path is None:
        alternative = f", or {instead}" if instead else ""
        raise MissingDependencyError(f"{what} needs Graphviz's `dot` program, which is not on PATH: "
                                     f"{GRAPHVIZ_INSTALL}{alternative}")
    return path
