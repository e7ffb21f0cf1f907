"""The application layer: the `tinygraph` command line, demos and experiments (uses every package)."""
