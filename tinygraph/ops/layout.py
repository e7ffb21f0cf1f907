"""Layout primitives beyond ``ops.shape``: copies, flips, rolls and constant padding.

Most layout functions (squeeze, expand_dims, moveaxis, tile, repeat, the stacks, split...) are
composites of ``reshape``, ``transpose``, ``broadcast_to``, ``getitem`` and ``concat`` in
``tinygraph.functional`` and need no rule; the ops here are those whose own rule is cheaper than the
composite's (a flip's gradient is a flip, not a scatter into zeros).
"""
import numpy as np

from .base import Op
