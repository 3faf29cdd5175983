"""Prefect tasks: thin wrappers that connect the pure functions in `mnist_pipeline` to files."""
