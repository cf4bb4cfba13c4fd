"""Scripts that measure and print the project's performance figures (``python -m benchmarks``)."""
