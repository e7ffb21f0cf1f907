"""Optimisers (PyTorch update rules). Being written; see issue 2."""
