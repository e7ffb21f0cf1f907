"""The example notebooks (examples/NN_*.ipynb) run top to bottom in a fresh python3 kernel and show
what they teach; the committed files carry no outputs and are exactly what their sources build.

Each notebook is executed with nbclient in a kernel whose working directory is an empty temporary
directory (it must still be empty afterwards: a notebook writes nothing where it runs) and whose
TMPDIR is another, where the notebooks' own files go. The kernel imports this checkout (PYTHONPATH);
a last cell appended here checks that. Then a few printed numbers and displayed pictures per notebook
are checked, so a changed API or a broken claim fails here rather than in front of a learner.
"""
import os
import re
from pathlib import Path

import pytest

REASON = "the notebook tests need {}: pip install 'tinygraph[docs]'"
nbformat = pytest.importorskip("nbformat", reason=REASON.format("nbformat"))
nbclient = pytest.importorskip("nbclient", reason=REASON.format("nbclient"))
pytest.importorskip("ipykernel", reason=REASON.format("ipykernel (the python3 kernel)"))

from examples import build_notebooks  # noqa: E402  (needs nbformat)

ROOT = Path(__file__).resolve().parents[1]
SOURCES = build_notebooks.sources()
NOTEBOOKS = [build_notebooks.notebook_path(source) for source in SOURCES]
CELL_TIMEOUT = 120   # seconds per cell; every notebook takes a few seconds in all
PROBE = "import tinygraph\nprint('tinygraph imported from', tinygraph.__file__)"
NUMBER = r"([-+]?\d+(?:\.\d*)?(?:e[-+]?\d+)?)"


def test_there_is_a_notebook_per_source():
    assert [p.stem for p in NOTEBOOKS] == [s.stem for s in SOURCES]
    assert len(NOTEBOOKS) == 6, [p.name for p in NOTEBOOKS]
    assert sorted(CHECKS) == [p.stem for p in NOTEBOOKS], "every notebook needs its checks in CHECKS"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_has_no_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "python3"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert notebook.cells[0].cell_type == "markdown" and notebook.cells[0].source.startswith("# ")


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_committed_notebook_is_what_its_source_builds(source):
    built = build_notebooks.build(source)
    assert build_notebooks.notebook_path(source).read_text(encoding="utf-8") == built, \
        f"{source.name} changed: run python -m examples.build_notebooks"
    assert build_notebooks.build(source) == built   # deterministic: same bytes every time


def test_sources_are_read_cell_by_cell():
    text = "# %% [markdown]\n# # Title\n#\n# Some *text*.\n\n# %%\nx = 1\n\n\nprint(x)\n# %%\ny = 2\n"
    assert build_notebooks.cells_of(text) == [
        ("markdown", "# Title\n\nSome *text*."), ("code", "x = 1\n\n\nprint(x)"), ("code", "y = 2")]
    with pytest.raises(ValueError, match=r"nb\.py:1: text before the first cell"):
        build_notebooks.cells_of("import os\n# %%\nx = 1\n", "nb.py")
    with pytest.raises(ValueError, match=r"nb\.py:3: a markdown cell's lines must be comments"):
        build_notebooks.cells_of("# %% [markdown]\n# fine\nnot a comment\n", "nb.py")
    with pytest.raises(ValueError, match=r"cell 1 is empty"):
        build_notebooks.cells_of("# %%\nx = 1\n# %%\n\n", "nb.py")


def test_the_build_check_mode_finds_a_stale_notebook(tmp_path, monkeypatch, capsys):
    source = tmp_path / "notebook_sources" / "01_tiny.py"
    source.parent.mkdir()
    source.write_text("# %% [markdown]\n# # Tiny\n# %%\nprint(1)\n", encoding="utf-8")
    monkeypatch.setattr(build_notebooks, "EXAMPLES", tmp_path)
    monkeypatch.setattr(build_notebooks, "SOURCES", source.parent)
    assert build_notebooks.main(["--check"]) == 1
    assert re.search(r"out of date: \S*01_tiny.ipynb; run python -m examples.build_notebooks", capsys.readouterr().err)
    assert not (tmp_path / "01_tiny.ipynb").exists()       # --check writes nothing
    assert build_notebooks.main([]) == 0
    assert build_notebooks.main(["--check"]) == 0


# --- running them -------------------------------------------------------------------------------
class Run:
    """An executed notebook: the text it printed, its displayed pictures, and its directories."""

    def __init__(self, notebook, cwd, tmp):
        self.notebook, self.cwd, self.tmp = notebook, cwd, tmp
        outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
        self.text = "".join(o.text for o in outputs if o.output_type == "stream" and o.name == "stdout")
        self.data = [o.data for o in outputs if o.output_type in ("display_data", "execute_result")]

    def mime(self, kind):
        return [data[kind] for data in self.data if kind in data]

    def numbers(self, pattern):
        """Every match of ``pattern`` (with NUMBER groups) in the printed text, as tuples of floats."""
        found = re.findall(pattern.replace("{N}", NUMBER), self.text)
        assert found, f"the notebook printed nothing matching {pattern!r}:\n{self.text}"
        return [tuple(map(float, m)) if isinstance(m, tuple) else (float(m),) for m in found]

    def number(self, pattern):
        (values,) = self.numbers(pattern)
        return values[0] if len(values) == 1 else values


def execute(path, tmp_path):
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(PROBE))
    cwd, tmp = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir()
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    # The notebooks' matrices are tiny; on a shared 2-core machine a threaded BLAS only adds
    # contention (notebook 5's training: 6.1 s with OpenBLAS's threads at a load of 3, 1.9 s without).
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    client = nbclient.NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(cwd)}})
    client.execute(env=env)    # raises CellExecutionError naming the cell and the error
    run = Run(notebook, cwd, tmp)
    assert not list(cwd.iterdir()), f"{path.name} wrote into its working directory: {list(cwd.iterdir())}"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code)
    assert f"tinygraph imported from {ROOT / 'tinygraph' / '__init__.py'}" in run.text
    return run


def written(run, suffix):
    """The path a notebook printed after "saved to"/"wrote", checked to lie in its TMPDIR."""
    (path,) = re.findall(rf"(?:wrote|saved to) (\S+{re.escape(suffix)})\n", run.text)
    path = Path(path)
    assert path.is_file() and run.tmp in path.parents, (path, run.tmp)
    return path


def check_autodiff(run):
    assert "same as by hand: True" in run.text              # the hand-written walk = backward()
    assert run.number(r"largest \|analytic - numeric\|: {N}") < 1e-8
    assert "gradcheck: True" in run.text
    assert "GraphError: the graph through op 'pow_const' (scope 'loss') was freed" in run.text
    graph_svg, painted = run.mime("image/svg+xml")
    assert "tanh" in graph_svg and "neuron" in graph_svg
    assert "one neuron, gradients painted" in painted and "legend" in painted


def check_cell(run):
    assert "loop edge: h -> h[t-1]" in run.text
    assert run.number(r"largest difference from the hand loop: {N}") == 0.0
    sizes = run.numbers(r"T = +{N}: +{N} nodes, {N} parameters")
    assert [t for t, _, _ in sizes] == [1, 4, 16, 64]
    nodes = [n for _, n, _ in sizes]
    assert nodes == sorted(nodes) and len(set(nodes)) == 4          # grows with T...
    assert {p for _, _, p in sizes} == {4.0}                        # ...the shared parameters do not
    assert "gradcheck through 5 steps: True" in run.text
    assert "out: (6, 2, 8)   h_n: (4, 2, 4)" in run.text
    folded, unrolled = run.mime("image/svg+xml")
    assert "z⁻¹" in folded and "h[t-1]" in folded
    assert all(f"t={t}" in unrolled for t in range(4))


def check_bptt(run):
    linear = run.numbers(r"rho = {N}: per-step factor {N} to {N}")
    assert [rho for rho, _, _ in linear] == [0.9, 1.0, 1.1]
    for rho, low, high in linear:            # exactly rho per step on the linear RNN
        assert abs(low - rho) < 1e-5 and abs(high - rho) < 1e-5
    assert run.number(r"tanh RNN: \|dL/dh_0\| / \|dL/dh_T-1\| = {N}") < 1e-4
    ratios = dict(re.findall(r"^(rnn|lstm|gru|lstm c, forget bias \+3) +\|dL/d·_0\| / \|dL/d·_T-1\| = "
                             + NUMBER + "$", run.text, flags=re.M))
    assert sorted(ratios) == ["gru", "lstm", "lstm c, forget bias +3", "rnn"]
    assert all(float(ratios[cell]) < 1e-6 for cell in ("rnn", "lstm", "gru"))   # vanishes at init
    assert float(ratios["lstm c, forget bias +3"]) > 1e-2                     # the cell path keeps it
    gradflow, painted = run.mime("image/svg+xml")
    assert 'id="run-3"' in gradflow                   # four runs plotted
    assert "tanh RNN, 12 steps, BPTT gradients" in painted
    page = written(run, ".html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "tanh RNN: BPTT, step by step" in page
    (inline,) = run.mime("text/html")
    assert inline.startswith("<iframe srcdoc=")


def check_property_tests(run):
    assert "softplus: first and second derivatives match on 50 drawn inputs" in run.text
    assert run.number(r"x \* exp\(y\): passed; {N} distinct shape pairs") >= 5
    assert "Softplus op: first and second derivatives match on 50 drawn inputs" in run.text
    assert "gradcheck at x = 0.5: True" in run.text           # the broken rule passes at one point...
    assert "GradcheckError: gradcheck: gradient of input 0" in run.text
    assert run.number(r"drawn=\(array\({N}\),\)") >= 2.5       # ...the property test finds where it is wrong
    assert "AssertionError: input 0 (shape (3,)) was modified in place" in run.text
    assert "test_my_softplus passed" in run.text


def check_char_rnn(run):
    ln_v = run.number(r"ln V = {N}")
    assert abs(run.number(r"held-out loss before training: {N}") - ln_v) < 0.1   # untrained ~ uniform
    first, last = run.number(r"first training loss: {N}"), run.number(r"last smoothed training loss: {N}")
    assert last < first - 1.0, (first, last)
    assert run.number(r"held-out loss after training: {N}") < ln_v - 1.0
    assert "the restored model samples the same text: True" in run.text
    assert written(run, ".npz").stat().st_size > 0
    curve, window = run.mime("image/svg+xml")
    assert 'id="run-1"' in curve and "loss" in window


def check_export(run):
    ours, theirs = run.numbers(r"loss: ours {N}, torch {N}")[0]
    assert abs(ours - theirs) < 1e-12 and ours < 4.0                  # trained, and the same loss
    assert run.number(r"largest forward difference: {N}") < 1e-10
    assert run.number(r"largest gradient difference over 6 parameters: {N}") < 1e-10
    assert "torch module loaded from our file gives the same logits: True" in run.text
    assert "our loader reads it back: True" in run.text
    assert written(run, ".safetensors").stat().st_size > 0
    assert written(run, ".onnx").stat().st_size > 0
    assert "'GRU'" in run.text and "[('input', ['time', 'batch'])]" in run.text
    assert run.number(r"at \(T, B\) = \(25, 5\): logits \(25, 5, 64\), largest difference from "
                      r"tinygraph: {N}") < 1e-5


CHECKS = {"01_autodiff_from_scratch": check_autodiff, "02_your_own_recurrent_cell": check_cell,
          "03_bptt_vanishing_gradient": check_bptt, "04_property_testing_gradients": check_property_tests,
          "05_char_rnn": check_char_rnn, "06_to_pytorch_and_onnx": check_export}


# notebooks that need optional extras: (module, extra) each, skipped with the extra named when absent
NEEDS = {"06_to_pytorch_and_onnx": [("torch", "torch"), ("safetensors", "torch"), ("onnx", "onnx"),
                                    ("onnxruntime", "onnx")]}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_shows_its_point(path, tmp_path):
    for module, extra in NEEDS.get(path.stem, ()):
        pytest.importorskip(module, reason=f"{path.name} needs {module}: pip install 'tinygraph[{extra}]'")
    CHECKS[path.stem](execute(path, tmp_path))
