"""Every sentence `tinygraph gradflow --help` and the README say about the gradient flow is one the
numbers support: each claim below is quoted from both texts and its ordering checked for rnn, lstm
and gru at T=40 and T=100, for two seeds, at the command's defaults (hidden 16, input 4, batch 1)."""
import functools
import pathlib

import pytest

from tinygraph_app import gradflow

README = (pathlib.Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
HELP = " ".join(gradflow.__doc__.split())
TEXTS = {"--help": HELP, "README": " ".join(README.split())}


@functools.lru_cache(maxsize=None)
def norms(cell, steps, seed, bias=0.0):
    return gradflow.state_gradients(cell, steps, hidden=16, input_size=4, seed=seed, forget_bias=bias)


def vanishes_in_every_cell(T, seed):
    for cell in ("rnn", "lstm", "gru"):
        h = norms(cell, T, seed)["h"]
        assert h[0] < 1e-6 * h[-1], (cell, h[0], h[-1])
    c = norms("lstm", T, seed)["c"]
    assert c[0] < 1e-6 * c[-1], (c[0], c[-1])


def grows_with_the_forget_bias(T, seed):
    c0 = [norms("lstm", T, seed, b)["c"][0] for b in (0.0, 1.0, 3.0)]
    assert c0 == sorted(c0) and len(set(c0)) == 3, c0


def bias_1_beats_rnn_and_gru(T, seed):
    lstm = norms("lstm", T, seed, 1.0)["h"][0]
    for cell in ("rnn", "gru"):
        assert lstm > 100 * norms(cell, T, seed)["h"][0], (cell, lstm)


def bias_3_keeps_the_cell_path(T, seed):
    c = norms("lstm", T, seed, 3.0)["c"]
    assert 0.1 < c[0] / c[-1] < 10, (c[0], c[-1])


# (the words both texts use, the check of what they claim)
CLAIMS = [
    ("it vanishes in every cell", vanishes_in_every_cell),
    ("below a millionth of ‖∂L/∂h_{T-1}‖ for rnn, lstm and gru alike", vanishes_in_every_cell),
    ("‖∂L/∂c_0‖ is below a millionth of ‖∂L/∂c_{T-1}‖", vanishes_in_every_cell),
    ("‖∂L/∂c_0‖ grows with --forget-bias", grows_with_the_forget_bias),
    ("‖∂L/∂h_0‖ is over 100 times the RNN's and the GRU's", bias_1_beats_rnn_and_gru),
    ("within a factor of 10 of ‖∂L/∂c_{T-1}‖", bias_3_keeps_the_cell_path),
]


@pytest.mark.parametrize("where", sorted(TEXTS))
def test_the_texts_make_exactly_these_claims(where):
    for words, _ in CLAIMS:
        assert words in TEXTS[where], (where, words)
    for retired in ("cell path keeps it", "an LSTM's cell path keeps"):
        assert retired not in TEXTS[where]


@pytest.mark.parametrize("T", [40, 100])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("words,check", CLAIMS, ids=[w for w, _ in CLAIMS])
def test_each_claim_holds(words, check, T, seed):
    check(T, seed)


def test_the_printed_numbers_are_the_ones_checked(capsys, tmp_path):
    pytest.importorskip("matplotlib", reason="gradflow plots need matplotlib")
    from tinygraph_app import cli
    out = tmp_path / "g.svg"
    assert cli.main(["gradflow", "--cell", "rnn,lstm,gru", "--steps", "40", "--forget-bias", "0,3",
                     "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    c = norms("lstm", 40, 0, 3.0)["c"]
    assert f"lstm c (forget bias +3)  ‖∂L/∂c_t‖ at t=0: {c[0]:.3g}   at t=39: {c[-1]:.3g}" in printed
    assert out.read_text().count('id="run-') == 6        # rnn h, lstm h and c at two biases, gru h
