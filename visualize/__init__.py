"""Graphviz pictures of tinygraph Graphs: folded and unrolled recurrent nets, with gradients painted on."""
