# %% [markdown]
# # 4. Property-testing your gradients
#
# `tg.gradcheck(fn, inputs)` compares a function's gradient with central differences **at one point**.
# A gradient rule can be right at the point you tried and wrong elsewhere — for large inputs, for a
# shape that broadcasts, for a scalar. A *property test* states what must hold for every input and lets
# [hypothesis](https://hypothesis.readthedocs.io) search for a counterexample, then shrink it to the
# simplest one it can find.
#
# `tinygraph.testing` packages this: strategies that draw arrays and shapes (`arrays`, `shapes`,
# `broadcastable_pairs`, ...) and `check_grads(fn, *strategies)`, which asserts, for every drawn input,
# that `fn` leaves its inputs unmodified and that its gradients (optionally second derivatives too)
# match float64 central differences. tinygraph's own ops are tested this way.

# %%
import os
import tempfile

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st

import tinygraph as tg
from tinygraph.ops import Op, apply
from tinygraph.testing import arrays, assert_not_mutated, broadcastable_pairs, check_grads, shapes

# Derandomized: the same examples (and so the same output) on every run; no example database, and
# hypothesis's own cache in a temporary directory instead of ./.hypothesis. Fifty examples per property.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", tempfile.mkdtemp(prefix="tinygraph-hypothesis-"))
settings.register_profile("notebook", derandomize=True, database=None, deadline=None, max_examples=50)
settings.load_profile("notebook")

# %% [markdown]
# ## One line per function
#
# `arrays(shapes())` draws float64 arrays of any shape with up to three dimensions — including the 0-d
# scalar — with values in [−3, 3]. Nothing is printed when every example passes; `check_grads`
# raises when one fails.

# %%
def softplus(x):
    return tg.log(1 + tg.exp(x))


check_grads(softplus, arrays(shapes()), second_order=True)
print("softplus: first and second derivatives match on 50 drawn inputs")

# %% [markdown]
# Arguments whose shapes depend on each other share one drawn value: `st.shared(...)` with a key.
# Here `x` and `y` get shapes that broadcast together, and the function records what it was called
# with, to show what hypothesis tried:

# %%
pair = st.shared(broadcastable_pairs(2), key="xy shapes")
tried = set()


def scaled_exp(x, y):
    tried.add((x.shape, y.shape))
    return x * tg.exp(y)


check_grads(scaled_exp, arrays(pair.map(lambda s: s[0])), arrays(pair.map(lambda s: s[1])))
print(f"x * exp(y): passed; {len(tried)} distinct shape pairs, e.g. {sorted(tried, key=str)[:6]}")

# %% [markdown]
# ## Your own op, and a bug that one point misses
#
# A primitive op is a class with `forward` (arrays in, array out) and its gradient rule `vjp` side by
# side; `saves` names what the rule reads, so everything else may be freed. `register=False` keeps a
# notebook's op out of tinygraph's registry, and `apply(op, tensor)` runs it as a graph node.
#
# Softplus computed stably as `logaddexp(0, x)`; its derivative is σ(x) = 1 − e^(−softplus(x)),
# written from the output. `B` is the array namespace the rule computes with (numpy for a first
# derivative, tinygraph itself when a second derivative is wanted), so the same rule serves both.

# %%
class Softplus(Op, register=False):
    name = "softplus"
    saves = ("out",)

    def forward(self, x):
        return np.logaddexp(0.0, x)

    def vjp(self, B, g, out, x):
        return (g * (1 - B.exp(-out)),)


def my_softplus(x):
    return apply(Softplus(), tg.as_tensor(x))


check_grads(my_softplus, arrays(shapes()), second_order=True)
print("Softplus op: first and second derivatives match on 50 drawn inputs")

# %% [markdown]
# Now a rule with a mistake: it drops the gradient for inputs at or above 2.5 (as if copied from a
# clipped variant). At the point most of us would try, it is right:

# %%
class BrokenSoftplus(Softplus, register=False):
    name = "broken_softplus"
    saves = ("out", "x")                          # this rule also reads x

    def vjp(self, B, g, out, x):
        return (g * (1 - B.exp(-out)) * (x < 2.5),)


def broken_softplus(x):
    return apply(BrokenSoftplus(), tg.as_tensor(x))


print("gradcheck at x = 0.5:", tg.gradcheck(broken_softplus, [tg.tensor([0.5], requires_grad=True)]))

# %% [markdown]
# The property test finds it, and hypothesis shrinks the failing input to the simplest one it can:
# a scalar, and the simplest number at or above 2.5. (The gradient check projects the output on a
# random vector, so the numeric value it prints is that projection's derivative, not σ(3) itself.)

# %%
try:
    check_grads(broken_softplus, arrays(shapes()))
except tg.GradcheckError as error:
    print("GradcheckError:", error)
    print(*(note for note in getattr(error, "__notes__", []) if note.startswith("Falsifying")))

# %% [markdown]
# ## Inputs must stay as they were
#
# A function that writes into its argument makes every later use of that argument wrong.
# `check_grads` runs `assert_not_mutated` on every example; here it is on its own:

# %%
def normalise_in_place(x):
    x.data[...] = x.data / np.abs(x.data).max()     # overwrites the caller's array
    return x.sum()


try:
    assert_not_mutated(normalise_in_place, [np.array([1.0, -4.0, 2.0])])
except AssertionError as error:
    print("AssertionError:", error)

# %% [markdown]
# ## In your test suite
#
# As a decorator, `check_grads` turns the function into a zero-argument test that pytest collects by
# its name; put this in `tests/test_my_ops.py`:

# %%
@check_grads(arrays(shapes(min_dims=1)), second_order=True)
def test_my_softplus(x):
    return my_softplus(x)


test_my_softplus()                      # what pytest would run
print(test_my_softplus.__name__, "passed")

# %% [markdown]
# ## What next
#
# - `tinygraph.testing.op_samples(op_class)` draws inputs for any registered op from the family its
#   `sample` attribute names; tinygraph's test suite walks the whole registry with it.
# - Notebook 5 trains a character-level language model built from these checked pieces.
