"""Lazy first-order gradients, and the one accumulator the backward walk adds gradients up with.

A first-order rule may return, instead of an ndarray, a form that stands for one:

- ``Scatter``: zeros except ``values`` at ``index`` (the gradient of indexing). Slicing every step out
  of one (T, ...) tensor would otherwise allocate a full-size zero array per step (quadratic in T);
  the accumulator instead adds each ``Scatter`` into one buffer it owns.
- ``Product``: ``left @ right`` not yet multiplied out. A head over a whole sequence produces the
  input gradient of a (T, B, H) stack at once; kept as ``dlogits (T, B, V) @ W (V, H)``, an op that
  only slices its upstream gradient hands each step ``Product(dlogits[t], W)``, and each (B, H) block
  is multiplied out only when that step is processed, so the full (T, B, H) array never exists.
  ``product(left, right)`` makes one, or multiplies out at once a result under ``DENSE_BELOW`` bytes:
  there one matmul costs less than T small ones, and the memory saved is not worth it.
- ``ProductSum``: a sum of ``Product``s of one shape, ``sum_i left_i @ right_i``, multiplied out as
  one matmul of the concatenated factors, ``[left_1 ... left_n] @ [right_1; ...; right_n]``. A recurrent
  weight's gradient is one ``dgates_t.T @ h_t`` per step; T small matmuls and T full-size additions
  become a few large matmuls, as hand-written BPTT batches them. It multiplies out what it holds
  whenever the factors it holds outgrow the result (or ``GROUP_BYTES``, for a small result), so it
  never keeps much more than that besides its running sum.
- ``Buffer``: an array the accumulator allocated itself, so further contributions add in place.

The walk sees none of these types; it uses three functions:

- ``accumulate(total, g)``: the running total of a node's gradient plus one more contribution;
- ``materialize(g)``: the plain ndarray (what users, anomaly checks and ``grad_of`` get);
- ``for_rule(g, op)``: what ``op``'s first-order rule receives, dense unless the op declares
  ``lazy_grad`` (it only indexes g along leading axes) and g is a ``Product``.
"""
import math

import numpy as np

DENSE_BELOW = 1 << 20  # bytes: ``product`` multiplies out a result smaller than this at once
GROUP_BYTES = 1 << 16  # bytes of factors a ``ProductSum`` may hold beyond its result's size


class Scatter:
    """A gradient of ``shape`` that is zero except ``values`` added at ``index`` (``np.add.at`` when
    ``accumulate``: the index holds arrays, so positions can repeat)."""
    __slots__ = ("shape", "index", "values", "accumulate")

    def __init__(self, shape, index, values, accumulate):
        self.shape, self.index, self.values, self.accumulate = shape, index, values, accumulate

    def add_into(self, out):
        """Add the values into the array ``out`` (of ``shape``) at ``index``, in place."""
        if self.accumulate:
            np.add.at(out, self.index, self.values)
        else:
            out[self.index] += self.values

    def dense(self):
        """The gradient as a new ndarray: zeros of ``shape`` with the values added."""
        out = np.zeros(self.shape, dtype=self.values.dtype)
        self.add_into(out)
        return out


def index_add(shape, index, g, accumulate):
    """Zeros of ``shape`` with ``g`` added at ``index``: a ``Scatter`` multiplied out."""
    return Scatter(shape, index, g, accumulate).dense()


class Product:
    """A gradient ``left @ right`` not yet multiplied out.  left (..., K), right (K, M) -> shape
    left.shape[:-1] + (M,). Indexing the leading axes stays lazy (see the module docstring)."""
    __slots__ = ("left", "right")

    def __init__(self, left, right):
        self.left, self.right = left, right

    @property
    def shape(self):
        """``left.shape[:-1] + (M,)``: the shape of the product."""
        return self.left.shape[:-1] + self.right.shape[-1:]

    @property
    def dtype(self):
        """The product's dtype, numpy's ``result_type`` of the two factors."""
        left = self.left.dtype  # one native dtype on both sides (every step of a layer): no result_type
        return left if left is self.right.dtype and left.isnative else np.result_type(self.left, self.right)

    def dense(self):
        """``left @ right`` multiplied out, as an ndarray of ``shape``."""
        left = self.left
        if left.ndim == 2:  # a step's (B, V) slice: the common case, no reshapes
            return _dot(left, self.right)
        # one 2-D matmul: BLAS on (rows, K) @ (K, M) beats numpy's stacked matmul over leading dims
        return _dot(left.reshape(-1, left.shape[-1]), self.right).reshape(self.shape)

    def add_into(self, out):
        """Add the product into the array ``out`` (of ``shape``), in place."""
        out += self.dense()

    def __getitem__(self, index):
        """``self.dense()[index]``, still lazy when ``index`` only selects along the leading axes."""
        parts = index if isinstance(index, tuple) else (index,)
        leading = len(parts) < len(self.shape) and all(
            isinstance(p, slice) or (isinstance(p, (int, np.integer)) and not isinstance(p, bool))
            for p in parts)
        return Product(self.left[index], self.right) if leading else self.dense()[index]


def _dot(left, right):
    """``left @ right``.  For 2-D factors, each C- or F-contiguous, np.dot: the same product at under
    half of matmul's call time on the small blocks of a B=1 step (1.0 vs 2.5 us for (1, 16) @ (16, 16),
    the benchmark's machines). Matmul for the rest: np.dot copies a factor that is neither (a layer's
    (T, B, H) hidden states viewed in a slab of [h, c] rows: a 62.5 MB copy at (32, 128) over 2000
    steps), where matmul hands BLAS its row stride; and for 1-D factors. Both promote dtypes alike."""
    if left.ndim == 2 and right.ndim == 2 and left.flags.forc and right.flags.forc:
        return np.dot(left, right)
    return left @ right


def product(left, right):
    """``left @ right`` as a ``Product``, or multiplied out now when the result is smaller than
    ``DENSE_BELOW`` bytes. left (..., K), right (K, M)."""
    dtype = left.dtype   # one dtype on both sides (a model's): no result_type call
    itemsize = (dtype if dtype is right.dtype else np.result_type(left, right)).itemsize
    if math.prod(left.shape[:-1]) * right.shape[-1] * itemsize >= DENSE_BELOW:
        return Product(left, right)
    if left.ndim == 2:   # the common case, as Product.dense multiplies it, without the object
        return _dot(left, right)
    return _dot(left.reshape(-1, left.shape[-1]), right).reshape(left.shape[:-1] + right.shape[-1:])


class ProductSum:
    """``base + sum_i lefts[i] @ rights[i]`` (``base`` None: 0): Products with 2-D factors, lefts
    (M, K_i) and rights (K_i, N), of one result shape (M, N) and dtype. ``add`` takes one more; the
    factors held are multiplied out, as one matmul of the concatenated factors, once the lefts hold as
    many elements as the result (sum K_i >= N) or, for a small result, ``GROUP_BYTES`` of factors
    (``flush_at``), and at the end (``dense``)."""
    __slots__ = ("lefts", "rights", "inner", "base", "shape", "dtype", "flush_at")

    def __init__(self, first):
        self.lefts, self.rights, self.inner, self.base = [first.left], [first.right], first.left.shape[1], None
        self.shape, self.dtype = first.shape, first.dtype
        self.flush_at = flush_at(self.shape, self.dtype)

    def takes(self, g):
        """Whether the Product ``g`` adds to this sum: 2-D factors, the same result shape and dtype."""
        left, right = g.left, g.right
        return (left.ndim == 2 and right.ndim == 2 and left.shape[0] == self.shape[0]
                and right.shape[1] == self.shape[1] and g.dtype == self.dtype)

    def add(self, g):
        """Add the Product ``g`` (``takes(g)``); returns self."""
        self.lefts.append(g.left)
        self.rights.append(g.right)
        self.inner += g.left.shape[1]
        if self.inner >= self.flush_at:   # the factors outgrow the result: multiply them out
            self._flush()
        return self

    def _flush(self):
        if self.lefts:
            self.base = add_group(self.base, self.lefts, self.rights)
            self.lefts, self.rights, self.inner = [], [], 0

    def dense(self):
        """The sum as an ndarray (it owns it: later ``add``s would add into it)."""
        self._flush()
        return self.base

    def add_into(self, out):
        """Add the sum into the array ``out`` of its shape."""
        out += self.dense()


def add_group(base, lefts, rights):
    """``base + [lefts...] @ [rights...]`` (``base`` None: 0), the concatenated factors multiplied out
    in one matmul and added into ``base`` in place: a ``ProductSum``'s flush, in one function that the
    eager accumulator and a compiled plan (``sum_group``) share, so both sum in the same order."""
    left = lefts[0] if len(lefts) == 1 else np.concatenate(lefts, axis=1)
    right = rights[0] if len(rights) == 1 else np.concatenate(rights, axis=0)
    total = _dot(left, right)
    if base is None:
        return total
    base += total
    return base


def flush_at(shape, dtype):
    """How many inner columns a ``ProductSum`` of result ``shape`` (M, N) holds before multiplying
    them out: N (the lefts then hold as many elements as the result), or more while the held factors
    stay under ``GROUP_BYTES``: for a small result (a B = 1 step's (H, H) weight gradient) one matmul
    over many steps costs less than one per N steps, and the memory is negligible."""
    M, N = shape
    return max(N, GROUP_BYTES // max(1, (M + N) * np.dtype(dtype).itemsize))


def group_flushes(inners, threshold):
    """For Products with 2-D factors of inner sizes ``inners`` (K_i), accumulated in this order, which
    ones close a group that ``ProductSum`` multiplies out: its ``add`` flushes once the held factors
    reach ``threshold`` (``flush_at``) inner columns; the first never does alone."""
    closes, inner = [], 0
    for i, k in enumerate(inners):
        inner += k
        closes.append(i > 0 and inner >= threshold)
        if closes[-1]:
            inner = 0
    return closes


def sum_group(base, products):
    """``base`` (None: 0) plus the Products of one group, as the eager accumulator sums them: a
    compiled plan collects a gradient's Products in lists at the trace's group boundaries
    (``group_flushes``) and sums each list in one call, instead of one ``accumulate`` per
    contribution. Anything else among them (a rule that returned another form at this replay) is
    added one by one, as ``accumulate`` would."""
    if all(p.__class__ is Product and p.left.ndim == 2 and p.right.ndim == 2 for p in products):
        return add_group(base, [p.left for p in products], [p.right for p in products])
    total = None if base is None else Buffer(base)
    for g in products:
        total = g if total is None else accumulate(total, g)
    # owned, since a later group adds into it in place (a rule's array may be a view of another's)
    return total.array if total.__class__ is Buffer else np.array(materialize(total))


class Buffer:
    """A gradient array the accumulator allocated itself, so further contributions may add in place."""
    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array


LAZY = (Scatter, Product, ProductSum)  # gradients that stand for an array and can add themselves into one


def accumulate(total, g):
    """``total + g`` for first-order gradients (ndarray, ``Scatter``, ``Product``, ``ProductSum`` or
    ``Buffer``), in place when the accumulator owns the buffer; 2-D Products of one shape are summed
    as a ``ProductSum``. ``g`` is what a rule returned: never a ``Buffer`` or a ``ProductSum``."""
    kind, total_kind = type(g), type(total)
    if kind is np.ndarray:          # the common cases first: this runs several times per time step
        if total_kind is Buffer:
            total.array += g
            return total
        if total_kind is np.ndarray:
            return Buffer(total + g)
    elif kind is Scatter and total_kind is Buffer:   # a step's slice of a sequence's gradient
        g.add_into(total.array)
        return total
    elif kind is Product and g.left.ndim == 2 and g.right.ndim == 2:
        if total_kind is Product and total.left.ndim == 2 and total.right.ndim == 2:
            total = ProductSum(total)
            total_kind = ProductSum
        if total_kind is ProductSum and total.takes(g):
            return total.add(g)
    if total_kind is not Buffer:
        if total_kind in LAZY:
            total = Buffer(total.dense())
        elif kind in LAZY:
            total, g = Buffer(g.dense()), total
        else:
            return Buffer(total + g)
    if type(g) in LAZY:
        g.add_into(total.array)
    else:
        total.array += g
    return total


def materialize(g):
    """The plain ndarray of a first-order gradient."""
    kind = type(g)
    return g.array if kind is Buffer else g.dense() if kind in LAZY else g


def for_rule(g, op):
    """What ``op``'s first-order rule receives for the accumulated gradient ``g`` (``op`` None: a
    leaf, which has no rule): a ``Product`` as it is when the op declares ``lazy_grad``, otherwise
    the dense array."""
    kind = type(g)
    if kind is Buffer:
        return g.array
    if kind is Scatter or kind is ProductSum or (kind is Product and (op is None or not op.lazy_grad)):
        return g.dense()
    return g  # ndarray, numpy scalar, or a Product the op takes as it is
