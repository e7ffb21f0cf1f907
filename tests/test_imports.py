"""The dependency direction is part of the architecture: rnn_models -> tinygraph, visualize -> tinygraph.

tinygraph (the engine) imports numpy only; rnn_models never imports visualize; only visualize imports
graphviz. Walks every module's imports with ``ast``, including imports inside functions.
"""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "tinygraph": {"rnn_models", "visualize", "graphviz", "tinygraph_app", "matplotlib"},
    "rnn_models": {"visualize", "graphviz", "tinygraph_app", "matplotlib"},
    "visualize": {"rnn_models", "tinygraph_app"},
}
# `python -m tinygraph` must exist; it is the application entry point (never imported by
# `import tinygraph`) and hands over to tinygraph_app, the layer that may use every package.
ENTRY_POINTS = {ROOT / "tinygraph" / "__main__.py"}


def imported_roots(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0], node.lineno


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_dependency_direction(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"package {package} has no modules"
    bad = [f"{f.relative_to(ROOT)}:{line} imports {name}"
           for f in files if f not in ENTRY_POINTS
           for name, line in imported_roots(f) if name in FORBIDDEN[package]]
    assert not bad, "forbidden imports:\n" + "\n".join(bad)


def test_only_visualize_imports_graphviz():
    bad = [f"{f.relative_to(ROOT)}:{line}"
           for f in sorted(ROOT.rglob("*.py")) if "visualize" not in f.parts and ".git" not in f.parts
           for name, line in imported_roots(f) if name == "graphviz"]
    assert not bad, bad
