"""Benchmarks: `python -m bench NAME`; see docs/PERFORMANCE.md."""
