"""The Tensor API in PyTorch's and numpy's spellings, and the creation functions.

Each method is checked against numpy (values, shape, dtype) over drawn inputs; where PyTorch's
meaning is the one we follow (``transpose(dim0, dim1)``, ``expand``, ``flatten``...), a cross-check
against torch runs when torch is installed.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygraph as tg
from tinygraph.testing import arrays, shapes

at_least_2d = arrays(shapes(min_dims=2, max_dims=4, max_side=3))
any_array = arrays(shapes(max_dims=4, max_side=3))


def _same(got, expected):
    assert isinstance(got, tg.Tensor)
    assert got.shape == expected.shape and got.dtype == expected.dtype, (got.shape, expected.shape)
    np.testing.assert_array_equal(got.data, expected)


# --- methods against numpy -------------------------------------------------------------------------
# name: (method call, numpy reference); both take the array (x) and a Tensor of it (t)
METHODS = {
    "view(-1)": (lambda t: t.view(-1), lambda x: x.reshape(-1)),
    "view(*shape)": (lambda t: t.view(*reversed(t.shape)), lambda x: x.reshape(x.shape[::-1])),
    "view(shape)": (lambda t: t.view(tuple(reversed(t.shape))), lambda x: x.reshape(x.shape[::-1])),
    "reshape(*shape)": (lambda t: t.reshape(1, *t.shape), lambda x: x.reshape((1,) + x.shape)),
    "reshape(shape)": (lambda t: t.reshape((t.size,)), lambda x: x.reshape(x.size)),
    "unsqueeze(0)": (lambda t: t.unsqueeze(0), lambda x: x[None]),
    "unsqueeze(-1)": (lambda t: t.unsqueeze(-1), lambda x: x[..., None]),
    "squeeze()": (lambda t: t.squeeze(), lambda x: x.squeeze()),
    "squeeze(dim=0)": (lambda t: t.unsqueeze(0).squeeze(dim=0), lambda x: x),
    "squeeze(axis)": (lambda t: t.unsqueeze(1).squeeze(1), lambda x: x),
    "permute(*dims)": (lambda t: t.permute(*range(t.ndim)[::-1]), lambda x: x.transpose()),
    "permute(dims)": (lambda t: t.permute(tuple(range(1, t.ndim)) + (0,)),
                      lambda x: x.transpose(tuple(range(1, x.ndim)) + (0,))),
    "transpose()": (lambda t: t.transpose(), lambda x: x.transpose()),
    "transpose(dim0, dim1)": (lambda t: t.transpose(0, -1), lambda x: np.swapaxes(x, 0, -1)),
    "transpose(0, 1) swaps": (lambda t: t.transpose(0, 1), lambda x: np.swapaxes(x, 0, 1)),
    "transpose(axes)": (lambda t: t.transpose(tuple(range(t.ndim))), lambda x: x.transpose(tuple(range(x.ndim)))),
    "T": (lambda t: t.T, lambda x: x.T),
    "mT": (lambda t: t.mT, lambda x: np.swapaxes(x, -1, -2)),
    "movedim": (lambda t: t.movedim(0, -1), lambda x: np.moveaxis(x, 0, -1)),
    "flatten()": (lambda t: t.flatten(), lambda x: x.flatten()),
    "flatten(1)": (lambda t: t.flatten(1), lambda x: x.reshape(x.shape[0], -1)),
    "flatten(0, -2)": (lambda t: t.flatten(0, -2), lambda x: x.reshape(-1, x.shape[-1])),
    "ravel": (lambda t: t.ravel(), lambda x: x.ravel()),
    "flip()": (lambda t: t.flip(), lambda x: np.flip(x)),
    "flip(0, 1)": (lambda t: t.flip(0, 1), lambda x: x[::-1, ::-1]),
    "flip(dims=)": (lambda t: t.flip(dims=(-1,)), lambda x: x[..., ::-1]),
    "roll(shift, axis)": (lambda t: t.roll(1, 0), lambda x: np.roll(x, 1, 0)),
    "roll(shifts=, dims=)": (lambda t: t.roll(shifts=(1, -2), dims=(0, 1)), lambda x: np.roll(x, (1, -2), (0, 1))),
    "roll(shift)": (lambda t: t.roll(-3), lambda x: np.roll(x, -3)),
    "repeat(2) (numpy's)": (lambda t: t.repeat(2), lambda x: x.repeat(2)),
    "repeat(2, axis=1)": (lambda t: t.repeat(2, axis=1), lambda x: x.repeat(2, axis=1)),
    "repeat(counts, dim=0)": (lambda t: t.repeat(list(range(len(t))), dim=0),
                              lambda x: x.repeat(list(range(len(x))), axis=0)),
    "tile(*reps)": (lambda t: t.tile(2, 1, 3), lambda x: np.tile(x, (2, 1, 3))),
    "tile(reps)": (lambda t: t.tile((2,)), lambda x: np.tile(x, 2)),
    "expand": (lambda t: t.unsqueeze(0).expand(3, *t.shape), lambda x: np.broadcast_to(x, (3,) + x.shape)),
    "expand(-1)": (lambda t: t[:, :1].expand(-1, 2, *([-1] * (t.ndim - 2))),
                   lambda x: np.broadcast_to(x[:, :1], (x.shape[0], 2) + x.shape[2:])),
    "expand_as": (lambda t: t[:1].expand_as(t), lambda x: np.broadcast_to(x[:1], x.shape)),
    "clone": (lambda t: t.clone(), lambda x: x.copy()),
    "pow": (lambda t: t.pow(2), lambda x: x ** 2),
    "double": (lambda t: t.float().double(), lambda x: x.astype(np.float32).astype(np.float64)),
    "float": (lambda t: t.float(), lambda x: x.astype(np.float32)),
    "long": (lambda t: t.long(), lambda x: x.astype(np.int64)),
    "int": (lambda t: t.int(), lambda x: x.astype(np.int32)),
    "bool": (lambda t: t.bool(), lambda x: x.astype(bool)),
}


@pytest.mark.parametrize("name", sorted(METHODS))
@given(x=at_least_2d)
def test_method_matches_numpy(name, x):
    method, reference = METHODS[name]
    _same(method(tg.tensor(x)), reference(x))


@pytest.mark.parametrize("name", ["view(-1)", "transpose(dim0, dim1)", "permute(*dims)", "flip(dims=)",
                                  "repeat(2) (numpy's)", "tile(*reps)", "expand", "clone", "roll(shift)"])
@given(x=at_least_2d)
def test_method_gradients_reach_the_input(name, x):
    """The same seed gradient sent back through the method and through numpy's meaning of it."""
    method, _ = METHODS[name]
    t = tg.tensor(x, requires_grad=True)
    out = method(t)
    seed = np.random.default_rng(0).standard_normal(out.shape)
    (out * seed).sum().backward()
    assert t.grad.shape == x.shape
    assert tg.gradcheck(lambda a: method(a), [x])


@given(x=any_array)
def test_sizes_numpy_and_torch_spellings(x):
    t = tg.tensor(x)
    assert t.size == x.size == t.numel()  # numpy's size property stays: the element count
    assert t.dim() == t.ndim == x.ndim
    assert t.shape == x.shape  # PyTorch's t.size() is t.shape here
    assert t.tolist() == x.tolist()


def test_float_of_a_tensor_is_a_python_float_while_the_method_casts():
    t = tg.tensor([2.5])
    assert type(float(t)) is float and float(t) == 2.5
    assert type(float(tg.tensor(3))) is float
    assert t.float().dtype == np.float32 and t.double().dtype == np.float64
    with pytest.raises(tg.ShapeError, match="item: only a single-element tensor"):
        float(tg.tensor([1.0, 2.0]))


def test_casts_to_integers_cut_the_gradient_and_float_casts_keep_it():
    t = tg.tensor([1.0, 2.0], requires_grad=True)
    assert not t.long().requires_grad and not t.bool().requires_grad
    (t.float() * t.float()).sum().backward()
    np.testing.assert_allclose(t.grad, [2.0, 4.0])
    assert t.grad.dtype == np.float64


def test_clone_is_a_copy_in_the_graph_and_detach_cuts_it():
    t = tg.tensor([1.0, 2.0], requires_grad=True)
    c = t.clone()
    assert c.data is not t.data and not np.shares_memory(c.data, t.data)
    assert c.requires_grad and c.op.name == "clone"
    (c * 3.0 + t.detach()).sum().backward()
    np.testing.assert_allclose(t.grad, [3.0, 3.0])
    assert not t.detach().requires_grad


def test_transpose_two_ints_swaps_even_when_numpy_would_read_a_permutation():
    x = np.arange(24.0).reshape(2, 3, 4)
    _same(tg.tensor(x).transpose(0, 2), np.swapaxes(x, 0, 2))
    _same(tg.tensor(x).transpose(2, 0, 1), x.transpose(2, 0, 1))
    _same(tg.tensor(x).transpose((2, 0, 1)), x.transpose(2, 0, 1))
    _same(tg.tensor(x[0]).transpose((0, 1)), x[0])


# --- cross-check against PyTorch where its meaning is the one we follow ---------------------------------
TORCH_SPELLINGS = {
    "transpose(0, 2)": lambda t: t.transpose(0, 2),
    "permute(2, 0, 1)": lambda t: t.permute(2, 0, 1),
    "flatten(1)": lambda t: t.flatten(1),
    "flatten(0, 1)": lambda t: t.flatten(0, 1),
    "unsqueeze(1)": lambda t: t.unsqueeze(1),
    "squeeze(dim=1)": lambda t: t[:, :1].squeeze(dim=1),
    "view(-1)": lambda t: t.view(-1),
    "view(3, -1)": lambda t: t.view(3, -1),
    "expand(2, -1, -1, -1)": lambda t: t.expand(2, -1, -1, -1),
    "roll(shifts, dims)": lambda t: t.roll(shifts=(1, 2), dims=(0, 2)),
    "flip(dims)": lambda t: t.flip(dims=(0, 2)),
    "movedim": lambda t: t.movedim(0, 2),
    "mT": lambda t: t.mT,
    "clone": lambda t: t.clone(),
}


@pytest.mark.parametrize("name", sorted(TORCH_SPELLINGS))
def test_torch_spellings_mean_what_they_mean_in_torch(name):
    torch = pytest.importorskip("torch", reason="cross-check against PyTorch needs torch")
    x = np.arange(24.0).reshape(3, 2, 4)
    call = TORCH_SPELLINGS[name]
    _same(call(tg.tensor(x)), call(torch.tensor(x)).numpy())


def test_tile_is_torchs_repeat_and_chunk_cat_are_torchs():
    torch = pytest.importorskip("torch", reason="cross-check against PyTorch needs torch")
    x = np.arange(6.0).reshape(2, 3)
    _same(tg.tensor(x).tile(2, 1, 2), torch.tensor(x).repeat(2, 1, 2).numpy())
    for n, chunks in [(5, 3), (6, 4), (0, 2), (1, 3)]:
        y = np.arange(float(n))
        mine, theirs = tg.chunk(tg.tensor(y), chunks), torch.chunk(torch.tensor(y), chunks)
        assert [m.tolist() for m in mine] == [t.tolist() for t in theirs]
    _same(tg.cat([tg.tensor(x), tg.tensor(x)], dim=1), torch.cat([torch.tensor(x)] * 2, dim=1).numpy())


# --- creation functions --------------------------------------------------------------------------------
def test_shapes_as_varargs_or_a_tuple_default_float64():
    for make, fill in [(tg.zeros, 0.0), (tg.ones, 1.0)]:
        for t in (make(2, 3), make((2, 3)), make([2, 3])):
            _same(t, np.full((2, 3), fill))
        assert make().shape == () and make(0).shape == (0,)
        assert make(2, dtype=np.float32).dtype == np.float32
        assert make(2, dtype="int64").dtype == np.int64
    _same(tg.full((2, 3), 2.5), np.full((2, 3), 2.5))
    _same(tg.full(3, 7), np.full(3, 7, dtype=np.int64))  # the dtype follows the value, as numpy/torch
    _same(tg.full(2, True), np.full(2, True))
    _same(tg.full(2, 7, dtype=np.float32), np.full(2, 7, dtype=np.float32))


def test_requires_grad_and_name():
    t = tg.zeros(2, 3, requires_grad=True, name="w")
    assert t.requires_grad and t.is_leaf and t.name == "w"
    (t * 2.0).sum().backward()
    np.testing.assert_array_equal(t.grad, np.full((2, 3), 2.0))
    for make in (lambda **k: tg.ones(2, **k), lambda **k: tg.full(2, 1.0, **k), lambda **k: tg.eye(2, **k),
                 lambda **k: tg.arange(3.0, **k), lambda **k: tg.linspace(0, 1, 3, **k),
                 lambda **k: tg.zeros_like(t, **k), lambda **k: tg.ones_like(t, **k),
                 lambda **k: tg.full_like(t, 3.0, **k), lambda **k: tg.rand(2, **k),
                 lambda **k: tg.randn(2, **k)):
        made = make(requires_grad=True, name="p")
        assert made.requires_grad and made.name == "p" and made.dtype == np.float64
        assert not make().requires_grad


def test_eye_arange_linspace_match_numpy():
    _same(tg.eye(3), np.eye(3))
    _same(tg.eye(2, 4, k=1), np.eye(2, 4, k=1))
    _same(tg.eye(3, dtype=np.float32), np.eye(3, dtype=np.float32))
    _same(tg.arange(5), np.arange(5, dtype=np.int64))  # ints give int64, as numpy and torch
    _same(tg.arange(1, 7, 2), np.arange(1, 7, 2, dtype=np.int64))
    _same(tg.arange(0.0, 1.0, 0.25), np.arange(0.0, 1.0, 0.25))
    _same(tg.arange(5, 0, -1), np.arange(5, 0, -1))
    _same(tg.arange(4, dtype=np.float32), np.arange(4, dtype=np.float32))
    _same(tg.linspace(0, 1, 5), np.linspace(0, 1, 5))
    _same(tg.linspace(0, 1, steps=4), np.linspace(0, 1, 4))
    _same(tg.linspace(-1, 1), np.linspace(-1, 1))
    _same(tg.linspace(0, 1, 4, endpoint=False), np.linspace(0, 1, 4, endpoint=False))


@given(x=any_array)
def test_like_functions_keep_shape_and_dtype(x):
    for dtype in (np.float64, np.float32, np.int64):
        t = tg.tensor(x.astype(dtype))
        _same(tg.zeros_like(t), np.zeros_like(t.data))
        _same(tg.ones_like(t), np.ones_like(t.data))
        _same(tg.full_like(t, 2), np.full_like(t.data, 2))
    _same(tg.zeros_like(x, dtype=np.float32), np.zeros_like(x, dtype=np.float32))
    _same(tg.ones_like(x.tolist()), np.ones_like(x))


def test_rand_and_randn_follow_manual_seed():
    tg.manual_seed(7)
    a, b = tg.rand(2, 3), tg.randn((4,))
    tg.manual_seed(7)
    _same(tg.rand(2, 3), a.data)
    _same(tg.randn(4), b.data)
    assert not np.array_equal(tg.rand(2, 3).data, a.data)  # the generator moves on
    assert a.dtype == np.float64 and ((a.data >= 0) & (a.data < 1)).all()
    assert tg.rand(3, dtype=np.float32).dtype == np.float32
    assert tg.randn(3, dtype=np.float32).dtype == np.float32
    x = tg.randn(20000).data
    assert abs(x.mean()) < 0.05 and abs(x.std() - 1) < 0.05


def test_cat_concat_concatenate_are_one_function():
    assert tg.cat is tg.concat is tg.concatenate
    assert tg.functional.cat is tg.functional.concat


CREATION_ERRORS = [
    ("complex dtype", lambda: tg.zeros(2, dtype=complex), tg.DTypeError,
     r"zeros: dtype complex128 is not supported; allowed: float32/float64 \(and other floats\), integers, bool"),
    ("object dtype", lambda: tg.ones_like(tg.zeros(2), dtype=object), tg.DTypeError,
     r"ones_like: dtype object is not supported"),
    ("string dtype", lambda: tg.full(2, 1.0, dtype=str), tg.DTypeError, r"full: dtype <U0 is not supported"),
    ("negative size", lambda: tg.ones(2, -1), tg.ShapeError, r"ones: shape must be >= 0, got -1"),
    ("float size", lambda: tg.zeros(2.0), tg.DTypeError, r"zeros: shape must be an int, got 2.0"),
    ("rand of integers", lambda: tg.rand(2, dtype=np.int64), tg.DTypeError,
     r"rand: dtype int64 is not supported; allowed: float32, float64"),
    ("randn of a bad shape", lambda: tg.randn((2, -3)), tg.ShapeError, r"randn: shape must be >= 0"),
    ("arange step 0", lambda: tg.arange(0, 5, 0), tg.ShapeError, r"arange: step must not be 0"),
    ("arange of a string", lambda: tg.arange("5"), tg.DTypeError, r"arange: stop must be a real number"),
    ("full of a string", lambda: tg.full(2, "a"), tg.DTypeError,
     r"full: fill_value must be a real number or a bool, got 'a'"),
    ("full_like of None", lambda: tg.full_like(tg.zeros(2), None), tg.DTypeError,
     r"full_like: fill_value must be a real number"),
    ("eye negative", lambda: tg.eye(-1), tg.ShapeError, r"eye: n must be >= 0, got -1"),
    ("eye float k", lambda: tg.eye(2, k=0.5), tg.DTypeError, r"eye: k must be an int"),
    ("linspace negative", lambda: tg.linspace(0, 1, -2), tg.ShapeError, r"linspace: num must be >= 0, got -2"),
    ("linspace num and steps", lambda: tg.linspace(0, 1, 3, steps=3), tg.ShapeError,
     r"linspace: give num= or steps="),
    ("zeros_like of strings", lambda: tg.zeros_like(["a"]), tg.DTypeError,
     r"zeros_like: argument x: dtype <U1 is not supported"),
    ("integer tensor requiring grad", lambda: tg.arange(3, requires_grad=True), tg.DTypeError,
     r"requires_grad: only floating-point tensors can require grad"),
]


@pytest.mark.parametrize("call, error, message", [case[1:] for case in CREATION_ERRORS],
                         ids=[case[0] for case in CREATION_ERRORS])
def test_bad_creation_arguments_are_tinygraph_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()
