"""The experiments' claims hold: on the committed full-size runs (docs/experiments), on the scaled-down
(--quick) runs, on a quick run under another BLAS kernel, and — opt-in, minutes —
on a fresh full-size run (``TINYGRAPH_FULL_EXPERIMENTS=1 python -m pytest tests/test_experiments.py -k
full``). Every number the README's "What the pictures show" says is a declared claim or a figure of the
committed runs.

Each quick run is done once per module (fixtures) and its numbers are asserted on: the measurement
helpers are also checked against closed forms and PyTorch.
"""
import json
import math
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygraph as tg
from tinygraph_app import cli
from tinygraph_app.experiments import EXPERIMENTS, adding, clipping, common, gradients, run_experiment

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "docs" / "experiments"
FULL_RUN = os.environ.get("TINYGRAPH_FULL_EXPERIMENTS", "") not in ("", "0")


def quick(name, tmp_path_factory):
    out = tmp_path_factory.mktemp(name)
    report, _ = run_experiment(name, str(out), quick=True, seed=0, log=lambda line: None)
    return report, out


@pytest.fixture(scope="module")
def gradients_run(tmp_path_factory):
    return quick("gradients", tmp_path_factory)


@pytest.fixture(scope="module")
def clipping_run(tmp_path_factory):
    return quick("clipping", tmp_path_factory)


@pytest.fixture(scope="module")
def adding_run(tmp_path_factory):
    return quick("adding", tmp_path_factory)


@pytest.fixture(scope="module")
def chars_run(tmp_path_factory):
    return quick("chars", tmp_path_factory)


def svg_root(path):
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    return root


def markdown_tables(text):
    """The Markdown tables in ``text``: lists of consecutive lines starting with "|"."""
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables, current = tables + [current], []
    return tables


def check_files(report, out):
    """The table and the claims' table are written as Markdown with one cell per column, and as strict
    JSON; every picture named in the report is an SVG."""
    data = json.loads((out / f"{report.name}.json").read_text())
    assert data["rows"] == report.rows and data["numbers"]["config"]["seed"] == 0
    assert data["claims"] == common.jsonable(report.claims)
    text = (out / f"{report.name}.md").read_text()
    table, claims = markdown_tables(text)
    assert len(table) == len(report.rows) + 2 and len(claims) == len(report.claims) + 2
    assert {len(re.findall(r"(?<!\\)\|", line)) for line in table} == {len(report.columns) + 1}
    assert {len(re.findall(r"(?<!\\)\|", line)) for line in claims} == {4}
    assert f"Reproducible: {common.REPRODUCIBLE}." in text
    for name in report.files:
        svg_root(out / name)


# --- 1. vanishing / exploding gradients ------------------------------------------------------------------
def test_gradients_linear_rnn_decays_and_grows_at_rate_rho(gradients_run):
    report, out = gradients_run
    check_files(report, out)
    radii = report.numbers["radii"]
    assert set(radii) == {f"{rho:g}" for rho in gradients.RADII}
    assert radii["0.5"]["linear_rate"] < 1 < radii["3"]["linear_rate"]
    for rho in gradients.RADII:
        assert radii[f"{rho:g}"]["linear_rate"] == pytest.approx(rho, rel=1e-9)
    curves = report.numbers["curves"]
    assert {len(curve) for curve in curves.values()} == {gradients.QUICK["steps"]}
    assert set(curves) >= {"LSTM, forget bias 1", "tanh RNN, PyTorch init"}


def test_state_gradient_norms_match_closed_form_for_linear_rnn():
    rng = np.random.default_rng(3)
    W, U = common.scaled_orthogonal(rng, 5, 0.8), rng.standard_normal((5, 2))
    W = W + 0.3 * rng.standard_normal((5, 5))        # not orthogonal: the norms are not just ρ^k
    xs, v = tg.tensor(rng.standard_normal((7, 3, 2))), rng.standard_normal((3, 5))
    states = gradients.linear_states(tg.tensor(W, requires_grad=True), tg.tensor(U), xs)
    norms = gradients.state_gradient_norms(states, v)
    expected = [np.linalg.norm(v @ np.linalg.matrix_power(W, k)) for k in range(7)]
    np.testing.assert_allclose(norms, expected, rtol=1e-12)


def test_state_gradient_norms_match_torch_for_tanh_rnn():
    torch = pytest.importorskip("torch", reason="PyTorch cross-check of the BPTT gradient norms")
    from rnn_models import Recurrent, RNNCell
    rng = np.random.default_rng(4)
    W, U = common.scaled_orthogonal(rng, 6, 1.5), rng.standard_normal((6, 3))
    xs, v = rng.standard_normal((9, 2, 3)), rng.standard_normal((2, 6))
    outputs, _ = Recurrent(RNNCell.from_parameters(tg.tensor(U), tg.tensor(W, requires_grad=True))).unroll(
        tg.tensor(xs))
    norms = gradients.state_gradient_norms(outputs, v)
    Wt, h, hs = torch.tensor(W, requires_grad=True), torch.zeros(2, 6, dtype=torch.float64), []
    for x in torch.tensor(xs):
        h = torch.tanh(x @ torch.tensor(U).T + h @ Wt.T)
        h.retain_grad()
        hs.append(h)
    (hs[-1] * torch.tensor(v)).sum().backward()
    np.testing.assert_allclose(norms, [float(h.grad.norm()) for h in reversed(hs)], rtol=1e-10)


@given(st.floats(0.2, 5.0), st.floats(1e-3, 1e3), st.integers(3, 80))
def test_fit_rate_recovers_a_geometric_rate(rate, scale, length):
    assert common.fit_rate(scale * rate ** np.arange(length)) == pytest.approx(rate, rel=1e-8)


def test_fit_rate_ignores_zeros_and_overflow():
    norms = 2.0 ** np.arange(10)
    norms[3], norms[7] = 0.0, np.inf
    assert common.fit_rate(norms) == pytest.approx(2.0)
    assert math.isnan(common.fit_rate([0.0, 1.0]))


def test_scaled_orthogonal_has_radius_and_norm_rho():
    matrix = common.scaled_orthogonal(np.random.default_rng(0), 8, 1.7)
    np.testing.assert_allclose(np.abs(np.linalg.eigvals(matrix)), 1.7)
    np.testing.assert_allclose(np.linalg.svd(matrix, compute_uv=False), 1.7)


# --- 2. exploding gradients and clipping ------------------------------------------------------------------
def test_clipping_runs_start_alike_and_record_where_the_unclipped_one_stops(clipping_run):
    report, out = clipping_run
    check_files(report, out)
    unclipped, clipped = report.numbers["unclipped"], report.numbers["clipped"]
    assert unclipped["initial_loss"] == clipped["initial_loss"]      # same weights, same batches
    assert len(clipped["losses"]) == len(clipped["grad_norms"]) == clipping.QUICK["steps"]
    if unclipped["stopped"] is not None:     # the trainer stopped before the step it names
        assert unclipped["stopped"]["step"] == len(unclipped["losses"]) + 1
        assert f"step {unclipped['stopped']['step']}" in report.notes[-1]


# --- 3. long-term dependencies: the adding problem --------------------------------------------------------
def test_adding_records_every_evaluation(adding_run):
    report, out = adding_run
    check_files(report, out)
    for cell in adding.CELLS:
        n = report.numbers[cell]
        assert n["eval_steps"] == list(range(0, adding.QUICK["steps"] + 1, adding.QUICK["eval_every"]))
        assert n["best_mse"] == min(n["eval_mse"]) and n["final_mse"] == n["eval_mse"][-1]


# --- 4. character-level language model --------------------------------------------------------------------
def test_chars_records_losses_and_samples(chars_run):
    report, out = chars_run
    check_files(report, out)
    n = report.numbers
    assert n["ln_vocab"] == pytest.approx(math.log(n["vocab_size"]))
    assert [s["step"] for s in n["samples"]][0] == 0 and len(n["samples"]) >= 2
    assert all(len(s["text"]) == n["config"]["sample_length"] for s in n["samples"])


def test_chars_unrolled_window_has_one_cluster_per_step_with_gradients(chars_run):
    report, out = chars_run
    text = (out / "chars_unrolled.svg").read_text()
    window = report.numbers["config"]["window"]
    steps = set(re.findall(r">t=(\d+)<", text))
    assert steps == {str(t) for t in range(window)}
    assert "(log scale)" in text                      # the gradient legend is drawn


# --- the registry and the command line -----------------------------------------------------------------
def test_quick_runs_are_deterministic(gradients_run, tmp_path):
    report, out = gradients_run
    again, _ = run_experiment("gradients", str(tmp_path), quick=True, seed=0, log=lambda line: None)
    for name in ("gradients.json", "gradients.md", "gradients.svg"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes()


def test_parallel_runs_give_the_serial_results(clipping_run, tmp_path):
    report, out = clipping_run
    run_experiment("clipping", str(tmp_path), quick=True, seed=0, log=lambda line: None, jobs=2)
    assert (tmp_path / "clipping.json").read_bytes() == (out / "clipping.json").read_bytes()


def test_cli_runs_an_experiment(tmp_path, capsys):
    assert cli.main(["experiment", "gradients", "--quick", "--out", str(tmp_path), "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert "linear: fitted rate" in printed and "gradients:" in printed
    assert f"Reproducible: {common.REPRODUCIBLE}." in printed
    for claim in gradients.CLAIMS:     # each claim, its measured value and ✓ (they hold at seed 1 too)
        assert re.search(re.escape(f"| {claim.text(quick=True)} | ") + r"[^|]+ \| ✓ \|", printed)
    assert json.loads((tmp_path / "gradients.json").read_text())["numbers"]["config"]["seed"] == 1


def test_cli_fails_when_a_claim_does_not_hold(tmp_path, capsys, monkeypatch):
    impossible = common.Claim("impossible", "the rate is negative: under {bound:g}",
                              lambda n: n["radii"]["1"]["linear_rate"], "<", 0.0)
    monkeypatch.setattr(gradients, "CLAIMS", gradients.CLAIMS + (impossible,))
    assert cli.main(["experiment", "gradients", "--quick", "--out", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "| the rate is negative: under 0 | 1 | ✗ |" in captured.out
    assert captured.err.splitlines() == [
        "experiment: 1 claim(s) not borne out by this run: gradients: the rate is negative: under 0"]
    assert "| the rate is negative: under 0 | 1 | ✗ |" in (tmp_path / "gradients.md").read_text()


def test_cli_rejects_an_unknown_experiment(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["experiment", "nonsense"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown experiment 'nonsense'"):
        run_experiment("nonsense", "unused")


def test_registry_lists_every_experiment():
    assert list(EXPERIMENTS) == ["gradients", "clipping", "adding", "chars"]


# --- the claims -------------------------------------------------------------------------------------------
def committed(name):
    """The committed full-size run's JSON (docs/experiments/<name>.json)."""
    return json.loads((COMMITTED / f"{name}.json").read_text())


def test_claim_compares_its_measured_value_with_the_bound_of_the_run():
    claim = common.Claim("learns", "loss under {bound:g}", lambda n: n["loss"], "<", 0.2, quick=0.3)
    assert claim.text() == "loss under 0.2" and claim.text(quick=True) == "loss under 0.3"
    assert claim.check({"loss": 0.25}) == (0.25, False)
    assert claim.check({"loss": 0.25}, quick=True) == (0.25, True)
    value, holds = claim.check({"loss": "nan"})            # JSON spells non-finite floats as strings
    assert math.isnan(value) and not holds
    diverges = common.Claim("diverges", "loss over {bound:g}", lambda n: n["loss"], ">", 1e3)
    assert diverges.check({"loss": "inf"}) == (math.inf, True) and diverges.bound(quick=True) == 1e3
    assert common.worst([0.5, 2.0]) == 2.0 and common.worst([0.5, "nan", 2.0]) == math.inf
    with pytest.raises(ValueError, match="Claim 'learns': compare must be one of <, <=, >, >=, got '='"):
        common.Claim("learns", "loss under {bound:g}", lambda n: n["loss"], "=", 0.2)


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_claims_are_declared_once_with_a_bound_in_their_sentence(name):
    claims = EXPERIMENTS[name].CLAIMS
    assert claims and len({claim.name for claim in claims}) == len(claims)
    for claim in claims:
        assert "{bound" in claim.sentence and "|" not in claim.sentence     # "|" would split the table
        assert claim.text() != claim.text(quick=True) or claim.quick is None


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_quick_run_bears_out_every_claim(name, request):
    report, out = request.getfixturevalue(f"{name}_run")
    numbers = json.loads((out / f"{name}.json").read_text())["numbers"]
    for claim, verdict in zip(EXPERIMENTS[name].CLAIMS, report.claims, strict=True):
        value, holds = claim.check(numbers, quick=True)
        assert holds, f"{name}: {claim.text(quick=True)}: measured {value}"
        assert verdict == dict(name=claim.name, claim=claim.text(quick=True), value=value,
                               bound=claim.bound(quick=True), holds=True)


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_committed_full_size_run_bears_out_every_claim(name):
    module, data = EXPERIMENTS[name], committed(name)
    config = data["numbers"]["config"]
    assert {key: config[key] for key in module.FULL} == module.FULL and config["seed"] == 0
    verdicts = common.check_claims(module.CLAIMS, data["numbers"])
    assert [f"{v['claim']}: measured {v['value']}" for v in verdicts if not v["holds"]] == []
    # the files say the same as the code: the JSON's recorded verdicts and the Markdown's claims table
    assert data["claims"] == common.jsonable(verdicts)
    assert markdown_tables((COMMITTED / f"{name}.md").read_text())[1] == common.claims_table(verdicts)


@pytest.mark.skipif(not FULL_RUN, reason="the full-size experiments take minutes: run them with "
                    "TINYGRAPH_FULL_EXPERIMENTS=1 python -m pytest tests/test_experiments.py -k full")
@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_fresh_full_size_run_bears_out_every_claim(name, tmp_path):
    report, _ = run_experiment(name, str(tmp_path), quick=False, seed=0, log=lambda line: None, jobs=2)
    assert [f"{v['claim']}: measured {v['value']}" for v in report.claims if not v["holds"]] == []


CROSS_BUILD_RUN = """
import sys
from tinygraph_app.experiments import run_experiment
from tinygraph_app.train import configure_runtime
configure_runtime(1)
run_experiment("clipping", sys.argv[1], quick=True, seed=0, log=lambda line: None)
"""


def openblas_core(**env):
    """The kernel family numpy's OpenBLAS picks in a fresh process with ``env`` added, or None when
    it does not say (not an OpenBLAS built for several CPUs, DYNAMIC_ARCH)."""
    result = subprocess.run([sys.executable, "-c", "import numpy"], capture_output=True, text=True,
                            env=dict(os.environ, OPENBLAS_VERBOSE="2", **env), timeout=60)
    found = re.search(r"^Core: (\w+)$", result.stderr, flags=re.M)
    return found and found.group(1)


def test_another_blas_kernel_moves_the_chaotic_figures_but_not_the_claims(clipping_run, tmp_path):
    """OpenBLAS's kernels for another CPU round differently, as another BLAS build does (Haswell's move
    the full unclipped run's overflow from step 152 to 239, the step another machine had reported). The
    clipping run is the chaotic one: its losses must differ, its claims must hold."""
    default = openblas_core()
    other = "Prescott" if default == "Nehalem" else "Nehalem"    # SSE kernels: x86-64 CPUs run them
    if default is None or openblas_core(OPENBLAS_CORETYPE=other) in (None, default):
        pytest.skip(f"numpy's BLAS has no OpenBLAS kernel for another CPU to switch to (default {default})")
    result = subprocess.run(
        [sys.executable, "-c", CROSS_BUILD_RUN, str(tmp_path)], capture_output=True, text=True, timeout=300,
        env=dict(os.environ, OPENBLAS_CORETYPE=other, PYTHONPATH=os.pathsep.join(sys.path)))
    assert result.returncode == 0, result.stderr
    theirs = json.loads((tmp_path / "clipping.json").read_text())
    ours = json.loads((clipping_run[1] / "clipping.json").read_text())
    assert theirs["numbers"]["clipped"]["losses"] != ours["numbers"]["clipped"]["losses"]
    verdicts = common.check_claims(clipping.CLAIMS, theirs["numbers"], quick=True)
    assert [f"{v['claim']}: measured {v['value']}" for v in verdicts if not v["holds"]] == []


# --- the README says what the runs show -------------------------------------------------------------------
SECTION = "What the pictures show"
PARAGRAPHS = {"1": "gradients", "2": "clipping", "3": "adding", "4": "chars"}   # "**1. ..." and so on
# a number as written: 0.0988, 4.26e-04, 1/6; not a subscript or index (h_{t-1}, J_{t+1}, x_t)
NUMBER = re.compile(r"(?<![\w.^{+\-−/])([0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)(?:/([0-9]+))?")
RUN_TIME = re.compile(r"The full run took [0-9]+ s .*?\.(?=\s)", flags=re.S)


def readme_section():
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {SECTION}\n")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def by_experiment(section):
    """``{None: the introduction, "gradients": its paragraphs, ...}``: each numbered paragraph and what
    follows it up to the next one."""
    parts = re.split(r"^\*\*([0-9])\. ", section, flags=re.M)
    return {None: parts[0], **{PARAGRAPHS[k]: text for k, text in zip(parts[1::2], parts[2::2])}}


def prose(text):
    """``text`` without what states no figure: code blocks and spans, pictures' links, citations."""
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", " ", text)
    return re.sub(r"[A-Z][a-z]+(?: et al\.| & [A-Z][a-z]+)? (?:19|20)[0-9]{2}\b", " ", text)


def figures(data, verdicts):
    """What a number in the README may be for one committed run: a number token of its table, notes or
    claims as written, or (to the precision the README writes it) a scalar of its numbers — a setting
    or a measurement, lists of per-step values excluded — or a claim's measured value."""
    written = [data["title"], *data["columns"], *(str(cell) for row in data["rows"] for cell in row),
               *data["notes"], *common.claims_table(verdicts)]
    tokens = {found.group(0) for line in written for found in NUMBER.finditer(line)}
    values = [v["value"] for v in verdicts]

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                walk(key)
                walk(value)
        elif isinstance(node, (int, float, str)) and not isinstance(node, bool):
            try:
                values.append(float(node))
            except ValueError:
                pass
    walk(data["numbers"])
    return tokens, [v for v in values if math.isfinite(v)]


def unaccounted(text, data, verdicts):
    """The numbers of ``text`` that are neither written in the run's files nor one of its scalars."""
    tokens, values = figures(data, verdicts)
    missing = []
    for found in NUMBER.finditer(prose(text)):
        number, denominator = found.groups()
        if found.group(0) in tokens:
            continue
        if denominator:
            value = float(number) / float(denominator)
            slack = 1e-9 * value
        else:
            mantissa, _, exponent = number.partition("e")
            value = float(number)
            slack = 0.5 * 10.0 ** (int(exponent or 0) - len(mantissa.partition(".")[2]))
        if not any(abs(v - value) <= slack * (1 + 1e-9) for v in values):
            missing.append(found.group(0))
    return missing


def test_readme_numbers_are_claims_or_figures_of_the_committed_runs():
    section = readme_section()
    assert common.REPRODUCIBLE in " ".join(section.split())
    blocks = by_experiment(section)
    assert list(blocks) == [None, *EXPERIMENTS]
    intro = blocks.pop(None)
    assert len(RUN_TIME.findall(intro)) == 1, "the introduction states the full run's time once"
    assert unaccounted(RUN_TIME.sub(" ", intro), {"title": "", "columns": [], "rows": [], "notes": [],
                                                  "numbers": {}}, []) == []
    for name, text in blocks.items():
        data = committed(name)
        verdicts = common.check_claims(EXPERIMENTS[name].CLAIMS, data["numbers"])
        table = "\n".join(common.claims_table(verdicts))
        assert table in text, f"README, {name}: its claims table, as in docs/experiments/{name}.md"
        assert unaccounted(text.replace(table, " "), data, verdicts) == [], f"README, {name}"


def test_readme_check_catches_a_number_the_run_does_not_show():
    data = committed("clipping")
    verdicts = common.check_claims(clipping.CLAIMS, data["numbers"])
    start, end = (common.sci(data["numbers"]["clipped"][key], 3) for key in ("initial_loss", "final_loss"))
    assert unaccounted(f"its loss falls from {start} to {end}", data, verdicts) == []
    wrong = common.sci(1.1 * data["numbers"]["clipped"]["final_loss"], 3)
    assert unaccounted(f"its loss falls from {start} to {wrong}", data, verdicts) == [wrong]
    formula = "x_{t+1} = J_{t+1} h_t"           # indices are no figures
    assert unaccounted(f"the run overflowed at step 1e+99, {formula}", data, verdicts) == ["1e+99"]
    assert unaccounted("(Pascanu et al. 2013; `tinygraph experiment 7`)", data, verdicts) == []
