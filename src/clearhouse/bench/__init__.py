"""Benchmarks: figures of this machine, not tests (``clearhouse bench ...``)."""
