"""Benchmarks of proxytask's statistics (see bench/README.md); run each module as a script."""
