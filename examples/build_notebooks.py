"""Build the notebooks ``examples/NN_name.ipynb`` from their readable sources ``examples/notebook_sources/NN_name.py``.

A source is a Python file in the "percent" format that VS Code, Spyder and jupytext read as cells: each
cell starts with a line ``# %%`` (code) or ``# %% [markdown]`` (markdown, every line a comment whose
``# `` is stripped). The notebooks are written without outputs (``execution_count`` null, ``outputs``
empty), with the kernel ``python3`` and cell ids numbered in order, so the same source always gives the
same bytes and a diff shows only what the source changed::

    python -m examples.build_notebooks           # rewrite every notebook from its source
    python -m examples.build_notebooks --check   # exit 1 naming each notebook that is out of date

Needs nbformat (``pip install 'tinygraph[docs]'``).
"""
import argparse
import sys
from pathlib import Path

from tinygraph.io import write_bytes_atomic

EXAMPLES = Path(__file__).resolve().parent
SOURCES = EXAMPLES / "notebook_sources"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
CODE, MARKDOWN = "# %%", "# %% [markdown]"


def sources():
    """The notebook sources, in order of their number."""
    return sorted(SOURCES.glob("[0-9][0-9]_*.py"))


def notebook_path(source):
    """Where the notebook built from ``source`` lives: ``examples/<source's stem>.ipynb``."""
    return EXAMPLES / f"{Path(source).stem}.ipynb"


def cells_of(text, name="<source>"):
    """``[(kind, text)]`` for the cells of a percent-format source, kind ``"code"`` or ``"markdown"``;
    ValueError naming the file and line for text before the first cell marker or an uncommented line
    in a markdown cell."""
    cells = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip() in (CODE, MARKDOWN):
            cells.append(("markdown" if line.strip() == MARKDOWN else "code", []))
        elif not cells:
            if line.strip():
                raise ValueError(f"{name}:{number}: text before the first cell; start the file with "
                                 f"{CODE!r} or {MARKDOWN!r}")
        elif cells[-1][0] == "markdown":
            if line and not line.startswith("#"):
                raise ValueError(f"{name}:{number}: a markdown cell's lines must be comments ('# text'), "
                                 f"got {line[:40]!r}; start a code cell with {CODE!r} first")
            cells[-1][1].append(line[2:] if line.startswith("# ") else line[1:])
        else:
            cells[-1][1].append(line)
    out = [(kind, "\n".join(lines).strip("\n")) for kind, lines in cells]
    empty = [k for k, (_, body) in enumerate(out) if not body.strip()]
    if empty:
        raise ValueError(f"{name}: cell {empty[0]} is empty; remove its marker")
    return out


def _nbformat():
    try:
        import nbformat
    except ImportError:
        raise SystemExit("building the notebooks needs nbformat: pip install 'tinygraph[docs]'") from None
    return nbformat


def build(source):
    """The notebook text (JSON, no outputs) for ``source``."""
    nbformat = _nbformat()
    v4 = nbformat.v4
    source = Path(source)
    notebook = v4.new_notebook(metadata={"kernelspec": dict(KERNELSPEC),
                                         "language_info": {"name": "python"}})
    for k, (kind, body) in enumerate(cells_of(source.read_text(encoding="utf-8"), source.name)):
        make = v4.new_markdown_cell if kind == "markdown" else v4.new_code_cell
        notebook.cells.append(make(body, id=f"cell-{k:02d}"))
    nbformat.validate(notebook)
    return nbformat.writes(notebook) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m examples.build_notebooks", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a notebook differs from what its source builds")
    args = parser.parse_args(argv)
    stale = []
    for source in sources():
        target, text = notebook_path(source), build(source)
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current == text:
            continue
        stale.append(target)
        if not args.check:
            write_bytes_atomic(target, text.encode("utf-8"))
            print(f"wrote {target.relative_to(EXAMPLES.parent)}")
    if args.check and stale:
        names = ", ".join(str(t.relative_to(EXAMPLES.parent)) for t in stale)
        print(f"out of date: {names}; run python -m examples.build_notebooks", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
