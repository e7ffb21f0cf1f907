"""tg.optim: PyTorch's update rules step by step, dtype, state_dict round trips and bad input."""
import io

import numpy as np
import pytest

import tinygraph as tg
from tinygraph.optim import SGD, Adagrad, Adam, RMSprop

# Every option combination that changes the arithmetic; alpha/betas below 0.5 take torch.lerp's other
# rounding branch.
CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.1, weight_decay=0.05)),
    ("SGD", dict(lr=0.1, momentum=0.8, nesterov=True, weight_decay=0.05)),
    ("Adagrad", dict()),
    ("Adagrad", dict(lr=0.3, lr_decay=0.2)),
    ("Adagrad", dict(lr=0.3, weight_decay=0.1, initial_accumulator_value=0.5)),
    ("Adagrad", dict(lr=0.3, lr_decay=0.1, weight_decay=0.1, initial_accumulator_value=0.2, eps=1e-3)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.05, centered=True)),
    ("RMSprop", dict(lr=0.05, momentum=0.9)),
    ("RMSprop", dict(lr=0.05, alpha=0.3, eps=1e-4, centered=True, momentum=0.5, weight_decay=0.1)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.05, amsgrad=True)),
    ("Adam", dict(lr=0.05, weight_decay=0.1)),
    ("Adam", dict(lr=0.05, betas=(0.3, 0.4), eps=1e-3, amsgrad=True, weight_decay=0.1)),
]
OPTIMIZERS = {"SGD": SGD, "Adagrad": Adagrad, "RMSprop": RMSprop, "Adam": Adam}
CASE_IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'defaults'}" for name, kw in CASES]
SHAPES = [(3, 4), (3,), (2,)]  # weight, bias, and a parameter the loss never uses (its grad stays None)


def initial_values(dtype=np.float64):
    rng = np.random.default_rng(7)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def batch():
    rng = np.random.default_rng(8)
    return rng.standard_normal((5, 4)), rng.standard_normal((5, 3))


def tg_loss(params, x, y):
    """A tiny linear regression whose gradients change with the parameters (so AMSGrad's max matters)."""
    weight, bias, _unused = params
    pred = tg.tensor(x.astype(weight.dtype)) @ weight.T + bias
    return ((pred - tg.tensor(y.astype(weight.dtype))) ** 2).sum()


def run_tg(opt, params, steps):
    x, y = batch()
    trajectory = []
    for _ in range(steps):
        opt.zero_grad()
        tg_loss(params, x, y).backward()
        opt.step()
        trajectory.append([p.data.copy() for p in params])
    return trajectory


def make(name, kwargs, dtype=np.float64):
    params = [tg.nn.Parameter(v) for v in initial_values(dtype)]
    return OPTIMIZERS[name](params, **kwargs), params


@pytest.mark.parametrize("name, kwargs", CASES, ids=CASE_IDS)
def test_matches_torch_step_by_step(name, kwargs):
    torch = pytest.importorskip("torch", reason="PyTorch cross-check")
    opt, params = make(name, kwargs)
    ours = run_tg(opt, params, steps=5)

    t_params = [torch.tensor(v, requires_grad=True) for v in initial_values()]
    t_opt = getattr(torch.optim, name)(t_params, foreach=False, **kwargs)
    x, y = (torch.tensor(a) for a in batch())
    for step, expected in enumerate(ours):
        t_opt.zero_grad()
        weight, bias, _ = t_params
        ((x @ weight.T + bias - y) ** 2).sum().backward()
        t_opt.step()
        for i, (t, ours_i) in enumerate(zip(t_params, expected)):
            np.testing.assert_allclose(ours_i, t.detach().numpy(), rtol=0, atol=1e-12,
                                       err_msg=f"{name} {kwargs}: parameter {i} after step {step + 1}")
    assert not np.array_equal(ours[-1][0], initial_values()[0]), "the optimiser did not move"
    np.testing.assert_array_equal(ours[-1][2], initial_values()[2])  # grad None: skipped


@pytest.mark.parametrize("name, kwargs", CASES, ids=CASE_IDS)
def test_float32_stays_float32(name, kwargs):
    opt, params = make(name, kwargs, np.float32)
    arrays = [p._data for p in params]
    ours32 = run_tg(opt, params, steps=3)[-1]
    assert all(p.dtype == np.float32 for p in params)
    assert all(p._data is a for p, a in zip(params, arrays)), "updates must be in place on p.data"
    assert all(v.dtype == np.float32 for s in opt.state for v in s.values() if isinstance(v, np.ndarray))
    assert all(p.is_leaf and p.grad.dtype == np.float32 for p in params[:2])
    ours64 = run_tg(*make(name, kwargs), steps=3)[-1]
    for a32, a64 in zip(ours32, ours64):
        np.testing.assert_allclose(a32, a64, rtol=1e-4, atol=1e-5)


def save_and_load(state):
    """Through an .npz file without pickle: the state dict holds only arrays and numbers."""
    assert all(isinstance(k, str) for k in state)
    assert all(isinstance(v, (np.ndarray, int, float, bool)) for v in state.values()), state
    buffer = io.BytesIO()
    np.savez(buffer, **state)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as npz:
        return dict(npz)


@pytest.mark.parametrize("name, kwargs", CASES, ids=CASE_IDS)
def test_state_dict_round_trip_resumes_exactly(name, kwargs):
    straight = run_tg(*make(name, kwargs), steps=5)[-1]

    opt, params = make(name, kwargs)
    run_tg(opt, params, steps=3)
    saved = save_and_load(opt.state_dict())
    weights = [p.data.copy() for p in params]

    # A fresh optimiser built with another lr: the saved hyper-parameters win, as in PyTorch.
    resumed_params = [tg.nn.Parameter(w) for w in weights]
    resumed = OPTIMIZERS[name](resumed_params, lr=123.0)
    assert resumed.load_state_dict(saved) is resumed
    assert resumed.defaults == opt.defaults
    resumed_last = run_tg(resumed, resumed_params, steps=2)[-1]
    for a, b in zip(resumed_last, straight):
        np.testing.assert_array_equal(a, b)


def test_state_dict_is_a_copy():
    opt, params = make("Adam", {})
    run_tg(opt, params, steps=1)
    state = opt.state_dict()
    state["state.0.exp_avg"][...] = 99.0
    assert not np.any(opt.state[0]["exp_avg"] == 99.0)


def adam_state(steps=2):
    opt, params = make("Adam", dict(lr=0.05))
    run_tg(opt, params, steps)
    return opt.state_dict()


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.update({"state.0.exp_avg": np.zeros((4, 3))}),
     r"state\.0\.exp_avg: expected shape \(3, 4\) \(parameter 0\), got shape \(4, 3\)"),
    (lambda s: s.pop("state.1.exp_avg_sq"), r"state of parameter 1 lacks \['state\.1\.exp_avg_sq'\]"),
    (lambda s: s.update({"state.5.exp_avg": np.zeros(3)}), r"unexpected key 'state\.5\.exp_avg'"),
    (lambda s: s.update({"state.0.momentum_buffer": np.zeros((3, 4))}),
     r"unexpected key 'state\.0\.momentum_buffer'"),
    (lambda s: s.update({"num_params": 2}), r"saved for 2 parameters but this optimiser has 3"),
    (lambda s: s.pop("betas"), r"missing keys \['betas'\]"),
    (lambda s: s.update({"betas": np.array([0.9, 1.5])}), r"betas\[1\] must be in \[0, 1\)"),
    (lambda s: s.update({"state.0.step": 2.5}), r"state\.0\.step: step must be a non-negative integer"),
])
def test_load_state_dict_errors_name_the_entry_and_change_nothing(edit, message):
    state = adam_state()
    edit(state)
    opt, params = make("Adam", dict(lr=0.01))
    run_tg(opt, params, steps=1)
    before = opt.state_dict()
    with pytest.raises(tg.StateDictError, match=message):
        opt.load_state_dict(state)
    after = opt.state_dict()
    assert before.keys() == after.keys() and opt.lr == 0.01
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_load_state_dict_of_another_optimiser_names_the_keys():
    opt, _ = make("SGD", dict(lr=0.1, momentum=0.9))
    with pytest.raises(tg.StateDictError, match=r"missing keys \['momentum'.*unexpected keys \['betas'"):
        opt.load_state_dict(adam_state())
    with pytest.raises(tg.StateDictError, match="expected a mapping"):
        opt.load_state_dict([1, 2])


@pytest.mark.parametrize("cls, kwargs, message", [
    (SGD, dict(lr=-0.1), r"SGD: lr must be >= 0, got -0.1"),
    (SGD, dict(lr=float("nan")), r"SGD: lr must be >= 0, got nan"),
    (SGD, dict(lr="0.1"), r"SGD: lr must be a number, got '0.1'"),
    (SGD, dict(momentum=-0.5), r"SGD: momentum must be >= 0"),
    (SGD, dict(weight_decay=-1), r"SGD: weight_decay must be >= 0"),
    (SGD, dict(nesterov=True), r"SGD: nesterov=True needs momentum > 0 and dampening = 0, got momentum=0"),
    (SGD, dict(nesterov=True, momentum=0.9, dampening=0.1), r"nesterov=True needs .* dampening=0.1"),
    (Adagrad, dict(lr_decay=-1), r"Adagrad: lr_decay must be >= 0"),
    (Adagrad, dict(initial_accumulator_value=-1), r"Adagrad: initial_accumulator_value must be >= 0"),
    (Adagrad, dict(eps=-1e-10), r"Adagrad: eps must be >= 0"),
    (RMSprop, dict(alpha=-0.1), r"RMSprop: alpha must be >= 0"),
    (RMSprop, dict(momentum=-0.1), r"RMSprop: momentum must be >= 0"),
    (Adam, dict(betas=(1.0, 0.999)), r"Adam: betas\[0\] must be in \[0, 1\), got 1.0"),
    (Adam, dict(betas=(0.9, -0.1)), r"Adam: betas\[1\] must be in \[0, 1\), got -0.1"),
    (Adam, dict(betas=(0.9,)), r"Adam: betas must be a pair"),
    (Adam, dict(eps=-1.0), r"Adam: eps must be >= 0"),
])
def test_bad_hyperparameters_raise_clear_errors(cls, kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        cls([tg.nn.Parameter(np.zeros(2))], **kwargs)


@pytest.mark.parametrize("params, error, message", [
    ([], ValueError, "empty parameter list"),
    (tg.nn.Parameter(np.zeros(2)), TypeError, "got a single Tensor"),
    (tg.nn.Linear(2, 2, rng=np.random.default_rng(0)), TypeError, r"pass model.parameters\(\)"),
    (tg.nn.Linear(2, 2, rng=np.random.default_rng(0)).named_parameters(), TypeError, r"params\[0\] is a tuple"),
    (3, TypeError, "must be an iterable of Parameters"),
    ([tg.tensor([1, 2])], ValueError, "dtype int64"),
    ([tg.tensor([1.0], requires_grad=True) * 2], ValueError, "computed by op mul; only leaf"),
])
def test_bad_parameter_lists(params, error, message):
    with pytest.raises(error, match=message):
        SGD(params, lr=0.1)


def test_duplicate_parameter_rejected_but_shared_module_parameters_are_listed_once():
    p = tg.nn.Parameter(np.zeros(2))
    with pytest.raises(ValueError, match=r"params\[1\] .* appears twice"):
        Adam([p, p])
    a, b = tg.nn.Linear(2, 2), tg.nn.Linear(2, 2)
    b.weight = a.weight
    assert len(Adam(tg.nn.Sequential(a, b).parameters()).params) == 3


def test_defaults_match_pytorch():
    p = [tg.nn.Parameter(np.zeros(2))]
    assert SGD(p).defaults == dict(lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False)
    assert Adagrad(p).defaults == dict(lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                                       eps=1e-10)
    assert RMSprop(p).defaults == dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                                       centered=False)
    assert Adam(p).defaults == dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False)


def test_step_skips_missing_grads_builds_no_graph_and_honours_lr_changes():
    w, unused = tg.nn.Parameter(np.array([1.0, 2.0])), tg.nn.Parameter(np.array([5.0]))
    opt = SGD([w, unused], lr=0.5)
    w.grad = np.array([1.0, -1.0])
    opt.step()
    np.testing.assert_array_equal(w.data, [0.5, 2.5])
    np.testing.assert_array_equal(unused.data, [5.0])
    assert w.is_leaf and w.inputs == () and opt.state == [{}, {}]
    opt.lr = 0.1
    opt.step()
    np.testing.assert_allclose(w.data, [0.4, 2.6], rtol=0, atol=1e-15)
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(w.grad, [0.0, 0.0])
    assert unused.grad is None
    opt.zero_grad()
    assert w.grad is None


def test_step_rejects_a_mis_shaped_grad_and_runs_a_closure():
    w = tg.nn.Parameter(np.ones(3))
    opt = Adam([w], lr=0.1)
    w.grad = np.ones(4)
    with pytest.raises(tg.ShapeError, match=r"params\[0\] has shape \(3,\) but its grad has shape \(4,\)"):
        opt.step()

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 3.0
    np.testing.assert_allclose(w.data, 0.9, rtol=1e-8)  # Adam's first step: lr * sign(grad), up to eps
