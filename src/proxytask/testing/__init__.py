"""Test helpers shipped with proxytask: executor contract tests, a fake trainer, replay tables.

Import the submodules directly (``proxytask.testing.contract`` needs pytest; the fake trainer
needs only the standard library and proxytask).
"""
