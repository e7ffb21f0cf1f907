"""Vanishing and exploding gradients (Bengio et al. 1994; Pascanu et al. 2013).

A loss on the last state only, L = ⟨v, h_{T-1}⟩ with ‖v‖ = 1, sends back ∂L/∂h_t = J_{t+1}ᵀ ⋯ J_{T-1}ᵀ v,
a product of T-1-t step Jacobians. Its norm against the distance k = T-1-t:

- linear RNN, h_t = W h_{t-1} + U x_t: J = W, so with W = ρ·Q (Q orthogonal) the norm is exactly ρ^k —
  pure geometric decay (ρ < 1) or growth (ρ > 1), fitted rate = ρ.
- tanh RNN, h_t = tanh(W h_{t-1} + U x_t): J_t = diag(tanh'(a_t)) W, so ‖J_t‖ ≤ ρ · max tanh'(a_t) ≤ ρ: the
  rate is at most ρ, and saturation (tanh' ≪ 1) pulls it far below.
- LSTM (PyTorch init, except its forget-gate bias b_ih + b_hh set to 1): the cell path
  c_t = f_t c_{t-1} + … multiplies by the forget gate (≈ σ(1) ≈ 0.73) instead of squashing through W
  and tanh', so the gradient decays much more slowly. (With PyTorch's own forget-gate bias the LSTM's
  gradient vanishes too; ``tinygraph gradflow --forget-bias 0,3`` shows both.)

Gradients come from ``tg.grad_of(L, states)`` over the unrolled graph — ordinary BPTT.
"""
import os

import numpy as np

import tinygraph as tg
from rnn_models import LSTMCell, Recurrent, RNNCell

from .common import Claim, Report, figure, fit_rate, save_svg, sci, scaled_orthogonal, spectral_radius

NAME = "gradients"
RADII = (0.5, 0.9, 1.0, 1.5, 3.0)
DISTANCE = 50      # the distance at which RNN and LSTM gradients are compared
SATURATED = 3.0    # the radius at which the tanh units saturate (mean tanh' ≈ 0.28)
FULL = dict(steps=100, hidden=32, input_size=4, batch=8)
QUICK = dict(steps=DISTANCE + 10, hidden=32, input_size=4, batch=8)


def _radii(numbers):
    """``(ρ, that run's numbers)`` for every ρ."""
    return [(float(rho), r) for rho, r in numbers["radii"].items()]


def _tanh_over_linear(curves, rho):
    """The largest ratio, over distances k ≥ 1, of the tanh RNN's gradient norm to the linear RNN's
    ρ^k (at k = 0 both are ‖v‖: the ratio is 1)."""
    tanh, linear = (curves[f"{kind} ρ={rho:g}"][1:] for kind in ("tanh", "linear"))
    return max(float(t) / float(l) for t, l in zip(tanh, linear))


# No training here, so little to amplify rounding: OpenBLAS's kernels for four CPUs moved these numbers
# in the 5th significant digit at most (the ρ = 3 tanh RNN, whose forward pass expands perturbations;
# its fitted rate 1.244475 ± 2e-6). The bounds state the textbook result with wide margins.
CLAIMS = (
    Claim("linear rate is rho",
          "the linear RNN's fitted rate equals ρ to a relative {bound:.0e}, at every ρ",
          lambda n: max(abs(r["linear_rate"] / rho - 1) for rho, r in _radii(n)), "<", 1e-6),
    Claim("tanh under linear",
          "at every ρ and distance k ≥ 1 the tanh RNN's gradient norm is below the linear RNN's ρ^k "
          "(largest ratio, under {bound:g})",
          lambda n: max(_tanh_over_linear(n["curves"], rho) for rho, _ in _radii(n)), "<", 1.0),
    Claim("tanh rate under its bound",
          "at every ρ the tanh RNN's fitted rate is below its bound ρ·max tanh′ "
          "(largest ratio, under {bound:g})",
          lambda n: max(r["tanh_rate"] / r["tanh_bound"] for _, r in _radii(n)), "<", 1.0),
    Claim("saturation",
          f"at ρ = {SATURATED:g}, where the units saturate, the tanh RNN's fitted rate is under "
          "{bound:g}·ρ",
          lambda n: n["radii"][f"{SATURATED:g}"]["tanh_rate"] / SATURATED, "<", 0.5),
    Claim("LSTM reaches further",
          f"at distance {DISTANCE} the LSTM's gradient (forget bias 1) is over {{bound:g}} times the "
          "tanh RNN's (PyTorch init)",
          lambda n: n["lstm_over_rnn_at_distance"], ">", 1e3),
)


def linear_states(weight_hh, weight_ih, xs):
    """The linear recurrence h_t = W h_{t-1} + U x_t from h_{-1} = 0.

    weight_hh W (H, H), weight_ih U (H, I), xs (T, B, I) -> list of T tensors (B, H).
    """
    h = tg.tensor(np.zeros((xs.shape[1], weight_hh.shape[0])), name="h0")
    states = []
    for t in range(xs.shape[0]):
        with tg.scope(f"t={t}"):
            h = h @ weight_hh.T + xs[t] @ weight_ih.T
        states.append(h)
    return states


def state_gradient_norms(states, direction):
    """‖∂L/∂h_t‖ for L = ⟨direction, h_{T-1}⟩, indexed by the distance k = T-1-t (k = 0 first)."""
    loss = (states[-1] * direction).sum()
    grads = tg.grad_of(loss, states)
    return np.array([np.linalg.norm(g.data) for g in grads])[::-1]


def forget_gate_mean(cell, xs, states):
    """Geometric mean over steps, rows and units of the LSTM forget gate f_t (what the cell path
    multiplies the gradient by at each step)."""
    H = cell.hidden_size
    previous = np.concatenate([np.zeros((1,) + states[0].shape), np.stack([s.data for s in states[:-1]])])
    pre = (xs @ cell.weight_ih.data.T + cell.bias_ih.data + previous @ cell.weight_hh.data.T
           + cell.bias_hh.data)[..., H:2 * H]
    return float(np.exp(np.mean(-np.logaddexp(0.0, -pre))))   # exp(mean(log σ(pre)))


def run(out_dir, quick=False, seed=0, log=print, jobs=1):
    """Measure the gradient norms; write ``gradients.svg`` and the table. Returns the ``Report``."""
    cfg = QUICK if quick else FULL
    T, H, I, B = cfg["steps"], cfg["hidden"], cfg["input_size"], cfg["batch"]
    rng = np.random.default_rng(seed)
    xs = tg.tensor(rng.standard_normal((T, B, I)), name="x")
    weight_ih = tg.tensor(rng.standard_normal((H, I)) / np.sqrt(I), name="weight_ih")
    direction = rng.standard_normal((B, H))
    direction /= np.linalg.norm(direction)
    orthogonal = scaled_orthogonal(rng, H, 1.0)       # one Q for every ρ: only the scale changes

    curves, numbers, rows = {}, {"config": dict(cfg, seed=seed, distance=DISTANCE), "radii": {}}, []
    for rho in RADII:
        weight_hh = tg.tensor(rho * orthogonal, requires_grad=True, name="weight_hh")
        linear = state_gradient_norms(linear_states(weight_hh, weight_ih, xs), direction)
        outputs, _ = Recurrent(RNNCell.from_parameters(weight_ih, weight_hh)).unroll(xs)
        tanh = state_gradient_norms(outputs, direction)
        gain = 1 - np.stack([h.data for h in outputs]) ** 2           # tanh'(a_t) = 1 - h_t²
        bound = rho * gain.max()                                      # ‖W‖ · max tanh'
        curves[f"linear ρ={rho:g}"], curves[f"tanh ρ={rho:g}"] = linear, tanh
        numbers["radii"][f"{rho:g}"] = dict(
            linear_rate=fit_rate(linear), tanh_rate=fit_rate(tanh), tanh_bound=float(bound),
            mean_tanh_derivative=float(gain.mean()), linear_norm_at_distance=float(linear[DISTANCE]),
            tanh_norm_at_distance=float(tanh[DISTANCE]))
        r = numbers["radii"][f"{rho:g}"]
        rows.append([f"{rho:g}", f"{r['linear_rate']:.4f}", f"{rho:g}", sci(r["linear_norm_at_distance"]),
                     f"{r['tanh_rate']:.3f}", f"{bound:.3f}", f"{r['mean_tanh_derivative']:.2f}",
                     sci(r["tanh_norm_at_distance"])])

    # what a user gets from the constructors: PyTorch's init (and the usual forget-gate bias of 1)
    tg.manual_seed(seed)
    rnn_cell, lstm_cell = RNNCell(I, H), LSTMCell(I, H)
    lstm_cell.bias_ih.data[H:2 * H], lstm_cell.bias_hh.data[H:2 * H] = 1.0, 0.0
    for key, label, cell in (("rnn_default", "tanh RNN, PyTorch init", rnn_cell),
                             ("lstm", "LSTM, forget bias 1", lstm_cell)):
        outputs, _ = Recurrent(cell).unroll(xs)
        norms = state_gradient_norms(outputs, direction)
        curves[label] = norms
        numbers[key] = dict(rate=fit_rate(norms), norm_at_distance=float(norms[DISTANCE]))
    numbers["rnn_default"]["spectral_radius"] = spectral_radius(rnn_cell.weight_hh.data)
    numbers["lstm"]["forget_gate_mean"] = forget_gate_mean(lstm_cell, xs.data, outputs)
    rnn, lstm = numbers["rnn_default"], numbers["lstm"]
    rows.append([f"{rnn['spectral_radius']:.2f} (PyTorch init)", "", "", "", f"{rnn['rate']:.3f}",
                 "", "", sci(rnn["norm_at_distance"])])
    rows.append(["LSTM, forget bias 1", "", "", "", f"{lstm['rate']:.3f}",
                 f"(mean f = {lstm['forget_gate_mean']:.2f})", "", sci(lstm["norm_at_distance"])])
    numbers["lstm_over_rnn_at_distance"] = lstm["norm_at_distance"] / rnn["norm_at_distance"]
    numbers["curves"] = {label: norms.tolist() for label, norms in curves.items()}

    path = os.path.join(out_dir, f"{NAME}.svg")
    plot(curves, path, T)
    report = Report(
        NAME, f"Vanishing and exploding gradients: ‖∂L/∂h_t‖ against T−t (T={T}, hidden {H}, batch {B})",
        ["ρ", "linear: fitted rate", "linear: theory", f"linear: ‖g‖ at {DISTANCE}",
         "tanh: fitted rate", "tanh: bound ρ·max tanh'", "tanh: mean tanh'", f"tanh: ‖g‖ at {DISTANCE}"],
        rows, numbers=numbers, files=[os.path.basename(path)])
    report.notes = [
        "W_hh = ρ·Q with Q a random orthogonal matrix (spectral radius = spectral norm = ρ); L = ⟨v, h_T⟩, "
        "‖v‖ = 1; the rate is the per-step factor of a least-squares geometric fit over all distances.",
        f"at distance {DISTANCE} the LSTM's gradient is {sci(numbers['lstm_over_rnn_at_distance'])} times "
        f"the tanh RNN's (PyTorch init, the LSTM's forget-gate bias set to 1; seed {seed})."]
    return report


def plot(curves, path, steps):
    """Two panels: the linear RNN against its theory line ρ^k, and the tanh RNN with the LSTM."""
    fig, (left, right) = figure(panels=2)
    distance = np.arange(steps)
    for k, rho in enumerate(RADII):
        colour = f"C{k}"
        left.plot(distance, curves[f"linear ρ={rho:g}"], color=colour, lw=2.2, alpha=0.6,
                  label=f"ρ = {rho:g}")
        left.plot(distance, rho ** distance.astype(float), color="black", lw=0.8, ls="--",
                  label="theory ρ^k" if k == 0 else None)
        right.plot(distance, curves[f"tanh ρ={rho:g}"], color=colour, lw=1.5, label=f"tanh ρ = {rho:g}")
    right.plot(distance, curves["tanh RNN, PyTorch init"], color="grey", lw=2, ls=":",
               label="tanh RNN, PyTorch init")
    right.plot(distance, curves["LSTM, forget bias 1"], color="black", lw=2.5, label="LSTM, forget bias 1")
    for ax, title in ((left, "linear RNN  h_t = W h_{t-1} + U x_t"),
                      (right, "tanh RNN and LSTM")):
        ax.set(yscale="log", xlabel="distance T − t (steps back from the loss)", ylabel="‖∂L_T/∂h_t‖",
               title=title)
    return save_svg(fig, path)
