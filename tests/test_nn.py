"""tg.nn: layers against PyTorch and gradcheck, the Module tree, state dicts, Dropout, gradient clipping."""
import contextlib
import math

import numpy as np
import pytest

import tinygraph as tg
from tinygraph import nn


@contextlib.contextmanager
def swapped(module, **tensors):
    """Temporarily replace parameters by plain tensors so gradcheck can perturb them through forward()."""
    saved = {name: getattr(module, name) for name in tensors}
    for name, t in tensors.items():
        object.__setattr__(module, name, t)  # bypass registration: the module tree is left untouched
    try:
        yield module
    finally:
        for name, p in saved.items():
            object.__setattr__(module, name, p)


# --- Linear and Embedding ------------------------------------------------------------------------
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch_forward_and_backward(bias):
    torch = pytest.importorskip("torch", reason="PyTorch cross-check")
    layer = nn.Linear(4, 3, bias=bias, rng=np.random.default_rng(0))
    t_layer = torch.nn.Linear(4, 3, bias=bias, dtype=torch.float64)
    t_layer.load_state_dict({k: torch.tensor(v) for k, v in layer.state_dict().items()})
    x_np = np.random.default_rng(1).standard_normal((2, 5, 4))
    x, t_x = tg.tensor(x_np, requires_grad=True), torch.tensor(x_np, requires_grad=True)
    upstream = np.random.default_rng(2).standard_normal((2, 5, 3))

    y, t_y = layer(x), t_layer(t_x)
    np.testing.assert_allclose(y.data, t_y.detach().numpy(), rtol=0, atol=1e-12)
    y.backward(upstream)
    t_y.backward(torch.tensor(upstream))
    np.testing.assert_allclose(x.grad, t_x.grad.numpy(), rtol=0, atol=1e-12)
    for name, p in layer.named_parameters():
        np.testing.assert_allclose(p.grad, getattr(t_layer, name).grad.numpy(), rtol=0, atol=1e-12)
    assert [n for n, _ in layer.named_parameters()] == [n for n, _ in t_layer.named_parameters()]


def test_linear_gradcheck_and_init():
    layer = nn.Linear(3, 2, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((4, 3))

    def through_layer(x, weight, bias):
        with swapped(layer, weight=weight, bias=bias):
            return layer(x)

    assert tg.gradcheck(through_layer, [x, layer.weight.data, layer.bias.data])
    wide = nn.Linear(100, 50)
    bound = 1 / math.sqrt(100)  # PyTorch's default: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias
    assert np.abs(wide.weight.data).max() <= bound and np.abs(wide.weight.data).max() > 0.9 * bound
    assert np.abs(wide.bias.data).max() <= bound
    tg.manual_seed(3)
    first = nn.Linear(5, 4).weight.data
    tg.manual_seed(3)
    np.testing.assert_array_equal(nn.Linear(5, 4).weight.data, first)


def test_linear_keeps_float32_and_rejects_bad_input():
    layer = nn.Linear(3, 2, dtype=np.float32)
    assert layer(tg.tensor(np.ones((4, 3), np.float32))).dtype == np.float32
    assert layer(np.ones((4, 3))).dtype == np.float32  # raw data adopts the module's dtype
    with pytest.raises(tg.DTypeError, match=r"Linear: input dtype float64 does not match the weight dtype "
                                            r"float32.*astype\(np.float32\)"):
        layer(tg.tensor(np.ones((4, 3))))
    with pytest.raises(tg.ShapeError, match=r"Linear: expected input of shape \(\.\.\., 3\), got \(4, 5\)"):
        layer(np.ones((4, 5), np.float32))
    with pytest.raises(ValueError, match="Linear: in_features must be a positive integer, got 0"):
        nn.Linear(0, 2)
    with pytest.raises(ValueError, match="Embedding: embedding_dim must be a positive integer, got 2.5"):
        nn.Embedding(3, 2.5)


def test_embedding_matches_torch_and_gradcheck():
    torch = pytest.importorskip("torch", reason="PyTorch cross-check")
    emb = nn.Embedding(6, 3, rng=np.random.default_rng(0))
    t_emb = torch.nn.Embedding(6, 3, dtype=torch.float64)
    t_emb.load_state_dict({"weight": torch.tensor(emb.weight.data)})
    idx = np.array([[0, 2, 2], [5, 0, 2]])  # repeated rows: their gradients must add up
    upstream = np.random.default_rng(1).standard_normal((2, 3, 3))
    out, t_out = emb(idx), t_emb(torch.tensor(idx))
    np.testing.assert_array_equal(out.data, t_out.detach().numpy())
    out.backward(upstream)
    t_out.backward(torch.tensor(upstream))
    np.testing.assert_allclose(emb.weight.grad, t_emb.weight.grad.numpy(), rtol=0, atol=1e-12)

    def through_embedding(weight):
        with swapped(emb, weight=weight):
            return emb(idx)

    assert tg.gradcheck(through_embedding, [emb.weight.data])
    with pytest.raises(tg.ShapeError, match=r"embedding: indices must lie in \[0, 6\)"):
        emb(np.array([6]))


# --- the Module tree -----------------------------------------------------------------------------
class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 3)
        self.scale = nn.Parameter(np.ones(3))

    def forward(self, x):
        return self.proj(x) * self.scale


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(5, 4)
        self.encoder = Encoder()
        self.head = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5), nn.Linear(3, 2, bias=False))

    def forward(self, idx):
        return self.head(self.encoder(self.embed(idx)))


# As in PyTorch: module by module (depth first), each module's own parameters before its children's.
MODEL_NAMES = ["embed.weight", "encoder.scale", "encoder.proj.weight", "encoder.proj.bias",
               "head.0.weight", "head.0.bias", "head.2.weight"]


def test_registration_order_and_dotted_names():
    model = Model()
    assert [n for n, _ in model.named_parameters()] == MODEL_NAMES
    assert list(model.state_dict()) == MODEL_NAMES
    assert [n for n, _ in model.named_modules()] == ["", "embed", "encoder", "encoder.proj", "head",
                                                     "head.0", "head.1", "head.2"]
    assert model.num_parameters() == 5 * 4 + 4 * 3 + 3 + 3 + 3 * 3 + 3 + 3 * 2
    assert len(model.head) == 3 and isinstance(model.head[1], nn.Dropout)
    assert [n for n, _ in model.head[::2].named_parameters()] == ["0.weight", "0.bias", "1.weight"]
    del model.encoder.scale
    assert "encoder.scale" not in dict(model.named_parameters())
    model.encoder.proj = nn.Linear(4, 3, bias=False)  # reassigning replaces the registration in place
    assert [n for n, _ in model.encoder.named_parameters()] == ["proj.weight"]


def test_shared_parameter_and_module_listed_once():
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    b.weight = a.weight
    model = nn.Sequential(a, b, a)
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "1.bias"]
    assert [n for n, _ in model.named_modules()] == ["", "0", "1"]
    model(np.ones((1, 2))).sum().backward()
    assert model[0].weight.grad is model[1].weight.grad  # one leaf, gradients from all three uses


def test_module_misuse_is_explained():
    class Forgot(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.zeros(2))

    with pytest.raises(AttributeError, match=r"super\(\).__init__\(\)"):
        Forgot()
    with pytest.raises(TypeError, match="Sequential: argument 1 is a function, not a Module"):
        nn.Sequential(nn.Linear(2, 2), lambda x: x)
    with pytest.raises(NotImplementedError, match="Module must define forward"):
        nn.Module()(1)


def test_train_eval_propagate():
    model = Model()
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.head.train()
    assert model.head[1].training and not model.training and not model.encoder.training
    model.train()
    assert all(m.training for m in model.modules())


# --- state dicts ---------------------------------------------------------------------------------
def test_state_dict_round_trip_and_copy_semantics():
    source, target = Model().eval(), Model().eval()
    idx = np.array([[1, 2], [3, 4]])
    state = source.state_dict()
    state["embed.weight"] += 0  # the dict holds copies...
    state["embed.weight"][0, 0] = 42.0
    assert source.embed.weight.data[0, 0] != 42.0  # ...so editing it does not touch the model
    target.load_state_dict(source.state_dict())
    np.testing.assert_array_equal(target(idx).data, source(idx).data)

    float32 = Model().to(np.float32)
    float32.load_state_dict(source.state_dict())
    assert all(p.dtype == np.float32 for p in float32.parameters())
    np.testing.assert_allclose(float32.eval()(idx).data, source(idx).data, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("edit, messages", [
    (lambda s: s.pop("encoder.scale"), ["missing keys ['encoder.scale']"]),
    (lambda s: s.update({"encoder.extra": np.zeros(2)}), ["unexpected keys ['encoder.extra']"]),
    (lambda s: s.update({"head.0.weight": np.zeros((2, 3))}),
     ["'head.0.weight'", "the model has shape (3, 3)", "the state dict has shape (2, 3)"]),
    (lambda s: s.update({"head.2.weight": np.full((2, 3), "x")}), ["'head.2.weight' has dtype <U1"]),
    (lambda s: s.update({"head.0.bias": [[1.0], [2.0, 3.0]]}), ["'head.0.bias' is not an array"]),
])
def test_load_state_dict_errors_name_the_key_and_load_nothing(edit, messages):
    model = Model()
    before = model.state_dict()
    state = {k: v + 1.0 for k, v in Model().state_dict().items()}  # every entry different from `before`
    edit(state)
    with pytest.raises(tg.StateDictError) as info:
        model.load_state_dict(state)
    for message in messages:
        assert message in str(info.value)
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before), "a failed load changed the model"


def test_load_state_dict_non_strict_still_checks_shapes():
    model = Model()
    partial = {"encoder.scale": np.full(3, 2.0), "not.a.parameter": np.zeros(1)}
    model.load_state_dict(partial, strict=False)
    np.testing.assert_array_equal(model.encoder.scale.data, 2.0)
    with pytest.raises(tg.StateDictError, match=r"'encoder.scale'.*\(3,\).*\(4,\)"):
        model.load_state_dict({"encoder.scale": np.zeros(4)}, strict=False)


# --- Dropout -------------------------------------------------------------------------------------
def test_dropout_eval_is_identity_and_train_scales_a_mask():
    drop = nn.Dropout(0.3)
    x = tg.tensor(np.full((200, 200), 2.0, np.float32), requires_grad=True)
    assert drop.eval()(x) is x
    tg.manual_seed(0)
    y = drop.train()(x)
    assert y.dtype == np.float32
    kept = y.data != 0
    np.testing.assert_allclose(y.data[kept], 2.0 / 0.7, rtol=1e-6)
    assert abs(1 - kept.mean() - 0.3) < 0.015  # 40000 draws: ~6 standard deviations
    assert abs(y.data.mean() - 2.0) < 0.05     # the mean is preserved
    y.sum().backward()
    np.testing.assert_allclose(x.grad, kept / 0.7, rtol=1e-6)  # gradient flows through the same mask


def test_dropout_is_deterministic_under_a_seed():
    drop, x = nn.Dropout(0.5), np.ones((8, 8))
    tg.manual_seed(11)
    first = drop(x).data
    tg.manual_seed(11)
    np.testing.assert_array_equal(drop(x).data, first)
    assert not np.array_equal(drop(x).data, first)  # the generator moved on
    explicit = nn.Dropout(0.5, rng=np.random.default_rng(11))
    np.testing.assert_array_equal(explicit(x).data, first)  # manual_seed(n) == default_rng(n)


def test_dropout_extremes_and_bad_p():
    x = np.ones(5)
    np.testing.assert_array_equal(nn.Dropout(0.0)(x).data, x)
    np.testing.assert_array_equal(nn.Dropout(1.0)(x).data, np.zeros(5))
    for p in (-0.1, 1.5, "0.5"):
        with pytest.raises(ValueError, match=r"Dropout: p must be a probability in \[0, 1\]"):
            nn.Dropout(p)


# --- gradient clipping ---------------------------------------------------------------------------
def grads_pair(torch):
    rng = np.random.default_rng(5)
    arrays = [rng.standard_normal(s) for s in [(3, 4), (4,), (2, 2)]]
    ours = [nn.Parameter(np.zeros_like(a)) for a in arrays]
    theirs = [torch.zeros(a.shape, dtype=torch.float64, requires_grad=True) for a in arrays]
    for p, t, a in zip(ours, theirs, arrays):
        p.grad, t.grad = a.copy(), torch.tensor(a)
    ours.append(nn.Parameter(np.zeros(3)))  # no grad: ignored by both
    theirs.append(torch.zeros(3, dtype=torch.float64, requires_grad=True))
    return ours, theirs


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    torch = pytest.importorskip("torch", reason="PyTorch cross-check")
    ours, theirs = grads_pair(torch)
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type, foreach=False)
    assert isinstance(total, float)
    assert total == pytest.approx(expected.item(), rel=1e-12)
    for p, t in zip(ours, theirs):
        if t.grad is None:
            assert p.grad is None
        else:
            np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-12, atol=1e-15)
    clipped_norm = nn.utils.clip_grad_norm_(ours, max_norm, norm_type)
    assert clipped_norm == pytest.approx(min(total, max_norm), rel=1e-5)


def test_clip_grad_norm_edge_cases():
    p = nn.Parameter(np.zeros(2, np.float32))
    p.grad = np.array([3.0, 4.0], np.float32)
    assert nn.utils.clip_grad_norm_(p, 1.0) == pytest.approx(5.0)  # a single tensor is accepted
    assert p.grad.dtype == np.float32
    np.testing.assert_allclose(p.grad, [0.6, 0.8], rtol=1e-5)
    assert nn.utils.clip_grad_norm_([nn.Parameter(np.zeros(2))], 1.0) == 0.0  # no grads at all
    p.grad = np.array([np.nan, 1.0], np.float32)
    with pytest.raises(FloatingPointError, match="total 2.0-norm .* is nan"):
        nn.utils.clip_grad_norm_(p, 1.0, error_if_nonfinite=True)
    with pytest.raises(ValueError, match="clip_grad_norm_: max_norm must be a number >= 0, got -1"):
        nn.utils.clip_grad_norm_(p, -1)
    with pytest.raises(ValueError, match=r"norm_type must be a number > 0 or float\('inf'\), got 0"):
        nn.utils.clip_grad_norm_(p, 1.0, norm_type=0)


def test_clip_grad_value():
    torch = pytest.importorskip("torch", reason="PyTorch cross-check")
    ours, theirs = grads_pair(torch)
    ours[0].grad = ours[0].grad.astype(np.float32)
    nn.utils.clip_grad_value_(ours, 0.5)
    torch.nn.utils.clip_grad_value_(theirs, 0.5, foreach=False)
    assert ours[0].grad.dtype == np.float32 and ours[3].grad is None
    for p, t in zip(ours[:3], theirs):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-7)
    assert max(np.abs(p.grad).max() for p in ours[:3]) == 0.5
    with pytest.raises(ValueError, match="clip_grad_value_: clip_value must be a number >= 0"):
        nn.utils.clip_grad_value_(ours, -0.5)
