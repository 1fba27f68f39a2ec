"""The controllers: variance measurement (and, later, model selection and proxy search)."""
