"""Runnable examples of proxytask trainers, search spaces and proxy-task generators."""
