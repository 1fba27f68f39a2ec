"""The MNIST-1D model: a 1-D residual CNN built from a search-space architecture dict.

stem conv (stride 1) → three stages of conv-BN-ReLU blocks (the first of each with stride 2,
a residual connection where the shapes match) → global average pool → linear 10-way
classifier. ``width_multiplier`` and ``depth_multiplier`` scale the model down for proxy
tasks.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from examples.common.arch import scale_depth
from examples.mnist1d.search_space import STRIDE, validate

__all__ = [
    "NUM_CLASSES",
    "ConvBlock",
    "build_model",
    "count_params",
    "estimate_macs",
    "scale_depth",
    "scale_width",
]

NUM_CLASSES = 10
_IN_CHANNELS = 1


def scale_width(channels: int, multiplier: float) -> int:
    """Channels after ``multiplier``: rounded half up, at least 2 (a 4-wide stage stays > 1)."""
    if multiplier <= 0:
        raise ValueError(f"width_multiplier must be > 0, got {multiplier!r}")
    return max(2, math.floor(channels * multiplier + 0.5))


class ConvBlock(nn.Module):
    """conv (kernel k, "same" padding) → BatchNorm → ReLU; adds its input when shapes match."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
            nn.BatchNorm1d(c_out),
            nn.ReLU(inplace=True),
        )
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.body(x)
        return x + y if self.residual else y


def _blocks(
    arch: dict[str, Any], width_multiplier: float, depth_multiplier: float
) -> list[tuple[int, int, int, int]]:
    """Every block's (c_in, c_out, kernel, stride), the stem first."""
    stem = scale_width(arch["stem"], width_multiplier)
    blocks = [(_IN_CHANNELS, stem, arch["stem_kernel"], 1)]
    c_in = stem
    for stage in arch["stages"]:
        c_out = scale_width(stage["width"], width_multiplier)
        for r in range(scale_depth(stage["repeats"], depth_multiplier)):
            blocks.append((c_in, c_out, stage["kernel"], STRIDE if r == 0 else 1))
            c_in = c_out
    return blocks


def build_model(
    arch: dict[str, Any], width_multiplier: float = 1.0, depth_multiplier: float = 1.0
) -> nn.Sequential:
    """Build the classifier for ``arch`` (validated first), scaled by the two multipliers.

    Example::

        net = build_model(baseline(), width_multiplier=0.5)
        logits = net(torch.zeros(8, 1, 40))  # shape (8, 10)
    """
    blocks = _blocks(validate(arch), width_multiplier, depth_multiplier)
    layers: list[nn.Module] = [ConvBlock(*b) for b in blocks]
    layers += [nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(blocks[-1][1], NUM_CLASSES)]
    return nn.Sequential(*layers)


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def estimate_macs(
    arch: dict[str, Any],
    seq_length: int = 40,
    width_multiplier: float = 1.0,
    depth_multiplier: float = 1.0,
) -> int:
    """Multiply-accumulates of one forward pass on one signal (convolutions and the head)."""
    length = seq_length
    macs = 0
    for c_in, c_out, kernel, stride in _blocks(validate(arch), width_multiplier, depth_multiplier):
        length = (length - 1) // stride + 1  # padding k//2 keeps "same" length at stride 1
        macs += length * kernel * c_in * c_out
    last = _blocks(arch, width_multiplier, depth_multiplier)[-1][1]
    return int(macs + last * NUM_CLASSES)
