"""Worked examples: your own recurrent cells, written from tinygraph ops, run by ``rnn_models``."""
