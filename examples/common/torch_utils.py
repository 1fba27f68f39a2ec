"""PyTorch pieces the example trainers share: the device flag and the validation accuracy."""

from __future__ import annotations

import math

import torch
from torch import nn

from proxytask import UsageError

__all__ = ["evaluate", "resolve_device"]


def resolve_device(name: str) -> torch.device:
    """The ``--device`` flag as a device: auto (CUDA when present), cpu, cuda, cuda:N."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(
            f"--device must name an available device, got {name!r} but CUDA is not available "
            "here (check CUDA_VISIBLE_DEVICES). Use --device=auto or --device=cpu."
        )
    return torch.device(name)


def evaluate(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Validation accuracy in [0, 1]; NaN when the network outputs non-finite values."""
    net.eval()
    with torch.no_grad():
        logits = net(x)
    net.train()
    if not bool(torch.isfinite(logits).all()):
        return math.nan
    return float((logits.argmax(dim=1) == y).float().mean().item())
