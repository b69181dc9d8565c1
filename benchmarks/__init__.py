"""Benchmarks for derive: run ``python -m benchmarks --help``."""
