"""PyTorch pieces the example trainers share: the device flag, the validation accuracy and
the warm-up of a warm worker."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from proxytask import UsageError

__all__ = ["evaluate", "resolve_device", "warm_up"]


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


def warm_up(net: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> None:
    """Pay PyTorch's first-use costs once, in a warm worker before it forks the trials: one
    forward pass, one optimizer step and one evaluation of ``net``, on the CPU and one thread.

    The optimizer step is the costly one (its first call imports about a second of PyTorch);
    it runs on zero gradients set by hand, since nothing here may run backward or touch CUDA:
    autograd's per-device worker threads (started by the first backward pass on any CUDA build
    of PyTorch) and an initialised CUDA driver do not survive ``fork``, and every forked trial
    would fail ("Unable to handle autograd's threading in combination with fork-based
    multiprocessing"; a CUDA initialisation error). Seen on an H200 with torch 2.11, where one
    backward pass in the warm-up failed every trial.
    """
    torch.set_num_threads(1)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    with torch.no_grad():
        F.cross_entropy(net(inputs), labels)
    for param in net.parameters():
        param.grad = torch.zeros_like(param)
    optimizer.step()
    evaluate(net, inputs, labels)


def evaluate(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Validation accuracy in [0, 1]; NaN when the network outputs non-finite values."""
    net.eval()
    with torch.no_grad():
        logits = net(x)
    net.train()
    if not bool(torch.isfinite(logits).all()):
        return math.nan
    return float((logits.argmax(dim=1) == y).float().mean().item())
