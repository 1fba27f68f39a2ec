"""Pieces the example trainers share: data order and subsets, flag parsing, checkpoints."""
