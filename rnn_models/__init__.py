"""Recurrent networks as one recurrent node (a cell plus a delayed state edge) unrolled into a Graph."""
