"""Benchmarks for tinygraph (baseline implementations live in ``baselines``)."""
