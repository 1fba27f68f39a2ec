"""Shared pytest fixtures: each plugin module below starts one kind of test service."""

pytest_plugins = [
    "tests.s3_server",
    "tests.gcs_server",
    "tests.ray_cluster",
]
