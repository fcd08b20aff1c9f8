"""Benchmarks: scripts that print figures, each next to a baseline measured in the same run."""
