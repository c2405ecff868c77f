"""Benchmarks: `uv run python -m bench [--observations N] [--quick]` (see docs/benchmarks.md)."""
