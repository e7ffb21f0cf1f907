"""The application layer: the `tinygraph` command line, demos and experiments (uses every package)."""

__all__ = []  # the command line is the interface: `tinygraph --help`
