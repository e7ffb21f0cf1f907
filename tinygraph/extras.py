"""Optional dependencies, imported when a feature needs them: a missing one is one clear error.

``require(module, extra, what)`` imports ``module`` or raises ``MissingDependencyError`` naming the
extra that installs it::

    to_torch needs torch: pip install 'tinygraph[torch]'

The command line prints that as its one error line and exits with code 2 (``tinygraph_app.extras``
adds the check for Graphviz's ``dot`` program).
"""
import importlib

from .errors import TinygraphError


class MissingDependencyError(TinygraphError, ImportError):
    """An optional dependency a feature needs is not installed; the message says how to get it."""


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
