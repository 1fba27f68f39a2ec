"""The digits model: a MnasNet-style CNN built from a search-space architecture dict.

stem conv 3×3 → three stages of inverted-residual MBConv blocks (expand 1×1, depthwise k×k,
optional squeeze-excite, project 1×1, residual when shapes match) → global average pool →
linear 10-way classifier. ``width_multiplier`` and ``depth_multiplier`` scale the model down
for proxy tasks.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from examples.common.arch import scale_depth
from examples.digits.search_space import STRIDES, validate

__all__ = [
    "NUM_CLASSES",
    "MBConv",
    "SqueezeExcite",
    "build_model",
    "count_params",
    "estimate_macs",
    "scale_depth",
    "scale_width",
]

NUM_CLASSES = 10
_IN_CHANNELS = 1


def scale_width(channels: int, multiplier: float) -> int:
    """Channels after ``multiplier``: rounded to a multiple of 4, at least 4."""
    if multiplier <= 0:
        raise ValueError(f"width_multiplier must be > 0, got {multiplier!r}")
    return max(4, 4 * math.floor(channels * multiplier / 4 + 0.5))


def _se_channels(channels: int) -> int:
    return max(4, channels // 4)


class SqueezeExcite(nn.Module):
    """Channel attention: global pool → 1×1 reduce → ReLU → 1×1 expand → sigmoid gate."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = _se_channels(channels)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.expand = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)
        s = torch.sigmoid(self.expand(torch.relu(self.reduce(s))))
        return x * s


def _conv_bn(
    c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1
) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]


class MBConv(nn.Module):
    """Inverted-residual block; adds its input back when stride is 1 and channels match."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, expand: int, stride: int, se: bool
    ) -> None:
        super().__init__()
        hidden = c_in * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [*_conv_bn(c_in, hidden, 1), nn.ReLU(inplace=True)]
        layers += [*_conv_bn(hidden, hidden, kernel, stride, groups=hidden), nn.ReLU(inplace=True)]
        if se:
            layers.append(SqueezeExcite(hidden))
        layers += _conv_bn(hidden, c_out, 1)
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.body(x)
        return x + y if self.residual else y


def _blocks(
    arch: dict[str, Any], width_multiplier: float, depth_multiplier: float
) -> tuple[int, list[tuple[int, int, int, int, int, bool]]]:
    """The stem width and each block's (c_in, c_out, kernel, expand, stride, se)."""
    stem = scale_width(arch["stem"], width_multiplier)
    blocks = []
    c_in = stem
    for stage, stride in zip(arch["stages"], STRIDES, strict=True):
        c_out = scale_width(stage["width"], width_multiplier)
        for r in range(scale_depth(stage["repeats"], depth_multiplier)):
            blocks.append(
                (
                    c_in,
                    c_out,
                    stage["kernel"],
                    stage["expand"],
                    stride if r == 0 else 1,
                    stage["se"],
                )
            )
            c_in = c_out
    return stem, blocks


def build_model(
    arch: dict[str, Any], width_multiplier: float = 1.0, depth_multiplier: float = 1.0
) -> nn.Sequential:
    """Build the classifier for ``arch`` (validated first), scaled by the two multipliers.

    Example::

        net = build_model(baseline(), width_multiplier=0.5)
        logits = net(torch.zeros(8, 1, 16, 16))  # shape (8, 10)
    """
    arch = validate(arch)
    stem, blocks = _blocks(arch, width_multiplier, depth_multiplier)
    layers: list[nn.Module] = [*_conv_bn(_IN_CHANNELS, stem, 3), nn.ReLU(inplace=True)]
    layers += [MBConv(*b) for b in blocks]
    last = blocks[-1][1]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(last, NUM_CLASSES)]
    return nn.Sequential(*layers)


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def estimate_macs(
    arch: dict[str, Any],
    image_size: int = 16,
    width_multiplier: float = 1.0,
    depth_multiplier: float = 1.0,
) -> int:
    """Multiply-accumulates of one forward pass on one image (convolutions and the head).

    Batch norm, activations and pooling are left out; they are small next to the convs.
    """
    arch = validate(arch)
    stem, blocks = _blocks(arch, width_multiplier, depth_multiplier)
    size = image_size
    macs = size * size * 9 * _IN_CHANNELS * stem
    for c_in, c_out, kernel, expand, stride, se in blocks:
        hidden = c_in * expand
        if expand != 1:
            macs += size * size * c_in * hidden
        size = (size - 1) // stride + 1  # padding k//2 keeps "same" size at stride 1
        macs += size * size * kernel * kernel * hidden
        if se:
            macs += 2 * hidden * _se_channels(hidden)
        macs += size * size * hidden * c_out
    macs += blocks[-1][1] * NUM_CLASSES
    return int(macs)
