"""The controllers you ``step()``: variance, model selection, search, final checks, workflow."""
