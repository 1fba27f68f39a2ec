"""Zero-training baselines for PyTorch models: size, FLOPs and zero-cost proxies.

A trained proxy task is only worth its cost if it ranks models better than what needs no
training at all. This module computes those baselines on a model at initialisation, from one
batch: the parameter count, the FLOPs of a forward pass, and four zero-cost proxies from the
literature (synflow, grad_norm, NASWOT and jacob_cov). A trainer saves them next to its
final metrics, so the search compares each proxy task's Kendall tau with theirs::

    from proxytask.torch import save_zero_cost_scores, zero_cost_scores

    torch.manual_seed(seed)
    model = build_model(arch)
    save_zero_cost_scores(job_dir, zero_cost_scores(model, images[:64], labels[:64]))

Every function leaves the model as it found it: the proxies run on a ``copy.deepcopy`` (so
the model needs to support deepcopy, and its memory is held twice for a moment), and
:func:`count_flops` only switches the modules to eval mode for its forward pass and back.
Inputs must be floating-point tensors on the model's device, with the batch first, and the
model's forward must return one tensor (the logits). As in the reference implementations,
"layers" below means the ``nn.Linear`` and ``nn.Conv1d/2d/3d`` modules, and each proxy scores
their weights only (not biases, not normalisation parameters).

This module imports PyTorch; the names for reading saved scores without it are in
:mod:`proxytask.trainer.zero_cost_metrics`.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from proxytask.core.errors import UsageError
from proxytask.trainer.zero_cost_metrics import (
    ZERO_COST_NAMES,
    ZERO_COST_PREFIX,
    read_zero_cost_scores,
    save_zero_cost_scores,
)

__all__ = [
    "JACOB_COV_K",
    "ZERO_COST_NAMES",
    "ZERO_COST_PREFIX",
    "count_flops",
    "count_parameters",
    "grad_norm",
    "jacob_cov",
    "naswot",
    "read_zero_cost_scores",
    "save_zero_cost_scores",
    "synflow",
    "zero_cost_scores",
]

#: A loss: ``loss_fn(outputs, targets)`` returns a scalar tensor (e.g. ``F.cross_entropy``).
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: The constant ``k`` of :func:`jacob_cov`'s score, as in Mellor et al. (2020, v1).
JACOB_COV_K = 1e-5

# The layers whose weights synflow and grad_norm score (the reference implementations score
# Conv2d and Linear; Conv1d/3d are the same operation in another dimension).
_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
# NASWOT's reference hooks every module whose class name contains "ReLU".
_RELUS: tuple[type[nn.Module], ...] = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU)
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_AVG_POOLS = {nn.AvgPool1d: 1, nn.AvgPool2d: 2, nn.AvgPool3d: 3}
_ADAPTIVE_AVG_POOLS = {nn.AdaptiveAvgPool1d: 1, nn.AdaptiveAvgPool2d: 2, nn.AdaptiveAvgPool3d: 3}
_FLOP_MODULES: tuple[type[nn.Module], ...] = (
    *_CONVS,
    nn.Linear,
    nn.modules.batchnorm._BatchNorm,
    *_AVG_POOLS,
    *_ADAPTIVE_AVG_POOLS,
)


# --------------------------------------------------------------------------------------------
# Argument checks and small helpers
# --------------------------------------------------------------------------------------------


def _check_model(model: object) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise UsageError(
            f"`model` must be a torch.nn.Module, got {type(model).__name__}. Pass the network "
            "itself, freshly initialised."
        )
    return model


def _model_device(model: nn.Module) -> torch.device | None:
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        return tensor.device
    return None


def _check_inputs(what: str, inputs: object, model: nn.Module, min_batch: int = 1) -> torch.Tensor:
    if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point():
        shown = inputs.dtype if isinstance(inputs, torch.Tensor) else type(inputs).__name__
        raise UsageError(
            f"`{what}` must be a floating-point tensor with the batch first, got {shown}. Pass "
            "a batch of training inputs, e.g. images of shape (N, C, H, W)."
        )
    if inputs.dim() < 1 or inputs.shape[0] < min_batch:
        raise UsageError(
            f"`{what}` must hold a batch of at least {min_batch} inputs (batch first), got "
            f"shape {tuple(inputs.shape)}. The proxies compare inputs: the papers use 64-128."
        )
    device = _model_device(model)
    if device is not None and inputs.device != device:
        raise UsageError(
            f"`{what}` must be on the model's device ({device}), got {inputs.device}. Move them "
            f"with `{what}.to({str(device)!r})`."
        )
    return inputs


def _check_targets(targets: object, batch: int) -> torch.Tensor:
    if not isinstance(targets, torch.Tensor) or targets.dim() < 1 or targets.shape[0] != batch:
        shown = (
            f"shape {tuple(targets.shape)}" if isinstance(targets, torch.Tensor) else repr(targets)
        )
        raise UsageError(
            f"`targets` must be a tensor with one target per input ({batch}), got {shown}. Pass "
            "the labels of the same batch."
        )
    return targets


def _copy(model: nn.Module) -> nn.Module:
    try:
        net = copy.deepcopy(model)
    except torch.OutOfMemoryError:
        raise
    except (RuntimeError, TypeError) as exc:
        raise UsageError(
            f"`model` must support copy.deepcopy (the scores are computed on a copy so the "
            f"model is left unchanged), got {type(exc).__name__}: {exc}. Drop non-leaf tensors "
            "kept as attributes, or score a model built the same way."
        ) from exc
    for p in net.parameters():
        p.grad = None
        p.requires_grad_(False)
    return net


def _forward(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    try:
        out = net(x)
    except torch.OutOfMemoryError:
        raise
    except RuntimeError as exc:
        raise UsageError(
            f"the model's forward pass must accept a batch of shape {tuple(x.shape)} "
            f"({x.dtype}, {x.device}), got {type(exc).__name__}: {exc}. Pass inputs shaped "
            "and typed like a training batch, on the model's device."
        ) from exc
    if not isinstance(out, torch.Tensor):
        raise UsageError(
            f"the model's forward pass must return one tensor (the logits), got "
            f"{type(out).__name__}. Wrap the model in a module that returns the logits."
        )
    return out


def _layer_weights(net: nn.Module, what: str) -> list[torch.Tensor]:
    """The weights of ``net``'s Linear/Conv layers, set to require gradients (net is a copy)."""
    weights = [m.weight for m in net.modules() if isinstance(m, _LAYERS)]
    if not weights:
        raise UsageError(
            f"{what} must find nn.Linear or nn.Conv1d/2d/3d layers in the model, got none. It "
            f"scores those layers' weights; drop {what!r} from the names for this model."
        )
    tensors = [w for w in weights if isinstance(w, torch.Tensor)]
    for weight in tensors:
        weight.requires_grad_(True)
    return tensors


def _finite(what: str, value: float, advice: str) -> float:
    if not math.isfinite(value):
        raise UsageError(f"{what} must come out finite, got {value!r}. {advice}")
    return value


@contextlib.contextmanager
def _modes_kept(model: nn.Module) -> Iterator[None]:
    """Restore every module's train/eval flag on exit (a top-level .train() would not)."""
    modes = [(m, m.training) for m in model.modules()]
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


@contextlib.contextmanager
def _seeded(device: torch.device, seed: int) -> Iterator[None]:
    """Seed the CPU (and ``device``'s CUDA) generator; restore their states on exit."""
    if device.type != "cuda":
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            yield
        return
    index = device.index if device.index is not None else torch.cuda.current_device()
    with torch.random.fork_rng(devices=[index]), torch.cuda.device(index):
        torch.default_generator.manual_seed(seed)
        torch.cuda.manual_seed(seed)
        yield


# --------------------------------------------------------------------------------------------
# Size
# --------------------------------------------------------------------------------------------


def count_parameters(model: nn.Module) -> int:
    """The number of trainable parameters: elements of ``model.parameters()`` with
    ``requires_grad``, a parameter shared between modules counted once.

    Example::

        >>> count_parameters(nn.Linear(3, 2))  # 3 × 2 weights + 2 biases
        8
    """
    net = _check_model(model)
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def _as_tuple(value: int | Sequence[int], dims: int) -> tuple[int, ...]:
    return (value,) * dims if isinstance(value, int) else tuple(value)


def _adaptive_window_total(size_in: int, size_out: int) -> int:
    """Input elements summed over all output positions of an adaptive pool along one dim."""
    return sum(
        -((-(i + 1) * size_in) // size_out) - (i * size_in) // size_out for i in range(size_out)
    )


def _module_macs(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    """Multiply-accumulates of one call of ``module`` (one of the counted types)."""
    if isinstance(module, _CONVS):
        fan_in = module.in_channels // module.groups * math.prod(_as_tuple(module.kernel_size, 1))
        return out.numel() * fan_in
    if isinstance(module, nn.Linear):
        return out.numel() * module.in_features
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return out.numel()  # folded into a scale and a shift at inference
    for pool, dims in _AVG_POOLS.items():
        if isinstance(module, pool):
            kernel = module.kernel_size
            return out.numel() * math.prod(_as_tuple(kernel, dims))  # type: ignore[arg-type]
    for pool, dims in _ADAPTIVE_AVG_POOLS.items():
        if isinstance(module, pool):
            sizes_in, sizes_out = inp.shape[-dims:], out.shape[-dims:]
            lead = out.numel() // max(1, math.prod(sizes_out))
            windows = (
                _adaptive_window_total(a, b) for a, b in zip(sizes_in, sizes_out, strict=True)
            )
            return lead * math.prod(windows)
    return 0


def count_flops(model: nn.Module, example_input: torch.Tensor) -> int:
    """FLOPs of one forward pass of ``model`` on ``example_input``, counted with forward hooks.

    FLOPs = 2 × multiply-accumulates (MACs). Counted per call of these modules, over the
    whole ``example_input`` (pass a batch of one for per-example FLOPs):

    - ``nn.Conv1d/2d/3d``: output elements × ``in_channels / groups`` × kernel elements, so
      a grouped or depthwise conv costs ``1 / groups`` of the dense one;
    - ``nn.Linear``: output elements × ``in_features``;
    - BatchNorm (any ``_BatchNorm``): one MAC per output element (the scale and shift it folds
      into at inference);
    - ``nn.AvgPool1d/2d/3d``: output elements × kernel elements (padding included);
      ``nn.AdaptiveAvgPool1d/2d/3d``: the exact number of inputs each output averages.

    A bias is not counted: its add is the one a dot product of ``fan_in`` products lacks, so
    2 × MACs is exact with a bias and one add per output too high without. Not counted:
    activations, max pooling (comparisons), element-wise ops (residual adds, gates), other
    normalisations, transposed convs, and anything computed by ``torch``/``F`` calls inside a
    ``forward`` rather than by a module (e.g. attention's matmuls). For an operator-level
    count use ``torch.utils.flop_counter.FlopCounterMode``.

    Runs under ``torch.no_grad`` with every module in eval mode, then restores each module's
    mode. Raises UsageError for a non-module, a non-float input, or a forward pass that
    fails on ``example_input``.

    Example::

        >>> count_flops(nn.Conv2d(4, 8, 3, padding=1, groups=2), torch.zeros(1, 4, 5, 5))
        7200
    """
    net = _check_model(model)
    x = _check_inputs("example_input", example_input, net)
    total = 0

    def hook(module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        nonlocal total
        first = args[0] if args and isinstance(args[0], torch.Tensor) else out
        if isinstance(out, torch.Tensor):
            total += _module_macs(module, first, out)

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, _FLOP_MODULES)]
    try:
        with _modes_kept(net), torch.no_grad():
            net.eval()
            _forward(net, x)
    finally:
        for handle in handles:
            handle.remove()
    return 2 * total


# --------------------------------------------------------------------------------------------
# Zero-cost proxies
# --------------------------------------------------------------------------------------------


def _check_shape(input_shape: object) -> tuple[int, ...]:
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list, torch.Size)) else ()
    if not shape or not all(
        isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape
    ):
        raise UsageError(
            f"`input_shape` must be the shape of one input without the batch dimension, a "
            f"tuple of positive integers, got {input_shape!r}. E.g. (1, 16, 16) for 16×16 "
            "grey images (inputs.shape[1:])."
        )
    return tuple(int(n) for n in shape)


def synflow(model: nn.Module, input_shape: Sequence[int]) -> float:
    """SynFlow: the total synaptic-flow saliency of the model's layer weights, from no data.

    Tanaka, Kunin, Yamins & Ganguli, "Pruning neural networks without any data by iteratively
    conserving synaptic flow", NeurIPS 2020; used as a NAS proxy by Abdelfattah et al., "Zero-Cost
    Proxies for Lightweight NAS", ICLR 2021.

    On a float64 deepcopy of ``model`` in eval mode with every floating-point parameter and
    buffer replaced by its absolute value (as Tanaka et al.'s code does: ``abs`` of the whole
    ``state_dict``, scored in eval mode, so BatchNorm applies its absolute running statistics;
    at initialisation that is ``x / sqrt(1 + eps)``, i.e. nearly the BatchNorm-free copy
    Abdelfattah et al. score), ``R = sum(model(ones(1, *input_shape)))`` is back-propagated
    and the score is ``sum over layers l of sum |W_l ⊙ ∂R/∂W_l|`` (layers: ``nn.Linear``/
    ``nn.Conv1d/2d/3d``; biases and normalisation parameters get no score but do flow into
    R). For a bias-free ReLU network of L layers (linear in each layer's weights) this is
    ``L × R``. The values are large (they grow as a product of the layers' weight sums):
    compare them by rank, or by log.

    ``input_shape`` is one input's shape without the batch dimension (``inputs.shape[1:]``).
    The model is not changed. Raises UsageError for a model without such layers, a bad
    shape, or a score that overflows float64.

    Example::

        >>> net = nn.Linear(2, 1, bias=False)
        >>> with torch.no_grad():
        ...     _ = net.weight.copy_(torch.tensor([[2.0, -3.0]]))
        >>> synflow(net, (2,))  # R = |2| + |-3|
        5.0
    """
    _check_model(model)
    shape = _check_shape(input_shape)
    device = _model_device(model) or torch.device("cpu")
    net = _copy(model).double().eval()
    with torch.no_grad():
        for tensor in net.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    weights = _layer_weights(net, "synflow")
    ones = torch.ones((1, *shape), dtype=torch.float64, device=device)
    with torch.enable_grad():
        _forward(net, ones).sum().backward()  # type: ignore[no-untyped-call]
    total = torch.zeros((), dtype=torch.float64, device=device)
    for weight in weights:
        if weight.grad is not None:
            total += (weight * weight.grad).abs().sum()
    return _finite(
        "synflow",
        float(total.item()),
        "The model's weights hold NaN/inf, or the product of its absolute weights overflowed "
        "float64 (too deep, or initial weights too large): check the initialisation, or drop "
        "'synflow' for this model.",
    )


def grad_norm(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    loss_fn: LossFn | None = None,
) -> float:
    """grad_norm: the sum over layers of the L2 norm of the loss gradient of their weights.

    Abdelfattah, Mehrotra, Dudziak & Lane, "Zero-Cost Proxies for Lightweight NAS", ICLR 2021.

    On a deepcopy of ``model`` in train mode (BatchNorm uses the batch's statistics, as in
    the reference code), ``L = loss_fn(model(inputs), targets)`` (default
    ``F.cross_entropy``, mean over the batch) is back-propagated once and the score is
    ``sum over layers l of ||∂L/∂W_l||_2`` (Frobenius norm of each ``nn.Linear``/
    ``nn.Conv1d/2d/3d`` weight's gradient; a layer the loss does not reach adds 0). The
    model, its gradients and its BatchNorm statistics are not changed. Dropout draws from
    torch's generator: seed it (as :func:`zero_cost_scores` does) for a repeatable score.

    Raises UsageError for bad inputs or targets, a loss that is not a scalar, a model
    without such layers, or a non-finite gradient.
    """
    net = _check_model(model)
    x = _check_inputs("inputs", inputs, net)
    y = _check_targets(targets, x.shape[0])
    copy_ = _copy(net).train()
    weights = _layer_weights(copy_, "grad_norm")
    loss_of: LossFn = F.cross_entropy if loss_fn is None else loss_fn
    with torch.enable_grad():
        loss = loss_of(_forward(copy_, x), y)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise UsageError(
                f"`loss_fn` must return a scalar tensor, got "
                f"{tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__}"
                ". Reduce over the batch (reduction='mean')."
            )
        if loss.requires_grad:
            loss.backward()  # type: ignore[no-untyped-call]
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    for weight in weights:
        if weight.grad is not None:
            total += weight.grad.double().norm()
    return _finite(
        "grad_norm",
        float(total.item()),
        "The loss or its gradient is NaN/inf at initialisation: check the model's "
        "initialisation and that the loss suits its outputs.",
    )


def naswot(model: nn.Module, inputs: torch.Tensor) -> float:
    """NASWOT: log|det K| of the inputs' ReLU activation-pattern kernel.

    Mellor, Turner, Storkey & Crowley, "Neural Architecture Search without Training", ICML
    2021.

    One forward pass of ``inputs`` (N of them) through a deepcopy of ``model`` in train mode,
    as the reference code runs it, without gradients. Every call of an ``nn.ReLU`` (also
    ``nn.ReLU6``, ``nn.LeakyReLU``, ``nn.PReLU``, ``nn.RReLU``: the reference hooks every
    module whose class name contains "ReLU") gives each input a binary code, 1 where the
    activation's input is > 0. With ``N_A`` the total code length per input,
    ``K[i, j] = N_A - Hamming(code_i, code_j)`` (the number of units on which inputs i and j
    agree), and the score is ``log|det K|`` (``torch.linalg.slogdet``).

    Only modules are seen: a ``F.relu``/``torch.relu`` call inside ``forward`` cannot be
    hooked and adds nothing. Raises UsageError when the model has none of those modules,
    when an activation's input does not keep the batch first, or when ``K`` is singular
    (two inputs share every code, e.g. duplicated inputs or a dead network).

    Example::

        >>> x = torch.tensor([[1.0, -1.0], [1.0, 1.0], [-1.0, -1.0]])
        >>> round(naswot(nn.ReLU(), x), 4)  # K = [[2, 1, 1], [1, 2, 0], [1, 0, 2]], det 4
        1.3863
    """
    net = _check_model(model)
    x = _check_inputs("inputs", inputs, net, min_batch=2)
    n = x.shape[0]
    copy_ = _copy(net).train()
    relus = [m for m in copy_.modules() if isinstance(m, _RELUS)]
    if not relus:
        raise UsageError(
            f"naswot must find nn.ReLU modules in the model, got none in "
            f"{type(net).__name__}. It hooks ReLU modules only (F.relu calls cannot be "
            "hooked): use nn.ReLU modules, or drop 'naswot' from the names for this model."
        )
    agree = torch.zeros((n, n), dtype=torch.float64, device=x.device)

    def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
        pre = args[0]
        if not isinstance(pre, torch.Tensor) or pre.dim() < 1 or pre.shape[0] != n:
            shape = tuple(pre.shape) if isinstance(pre, torch.Tensor) else type(pre).__name__
            raise UsageError(
                f"naswot must see each ReLU input with the batch ({n}) first, got {shape} at "
                f"{type(module).__name__}. Drop 'naswot' for this model."
            )
        signs = (pre.reshape(n, -1) > 0).to(torch.float32) * 2 - 1  # ±1: one matmul
        # agreements = (units + signs·signsᵀ) / 2, exact in float32 below 2^24 units
        agree.add_((signs @ signs.T).double().add_(signs.shape[1]).div_(2))

    handles = [m.register_forward_pre_hook(hook) for m in relus]
    try:
        with torch.no_grad():
            _forward(copy_, x)
    finally:
        for handle in handles:
            handle.remove()
    sign, logdet = torch.linalg.slogdet(agree)
    value = float(logdet.item()) if float(sign.item()) > 0 else -math.inf
    return _finite(
        "naswot",
        value,
        "Its kernel K is singular: two inputs share every ReLU activation code (duplicated "
        "inputs, or dead ReLUs). Score a batch of distinct inputs.",
    )


def jacob_cov(model: nn.Module, inputs: torch.Tensor) -> float:
    """jacob_cov: how decorrelated the inputs' Jacobians are, from the eigenvalues of their
    correlation matrix.

    Mellor, Turner, Storkey & Crowley, "Neural Architecture Search without Training",
    arXiv:2006.04647 v1 (2020); the version in Abdelfattah et al.'s zero-cost-nas code.

    On a deepcopy of ``model`` in train mode, ``model(inputs)`` is back-propagated with a
    gradient of ones, so row i of ``J`` is the gradient of the summed outputs with respect
    to input i, flattened (with BatchNorm in train mode inputs interact, as in the
    reference). ``C = corrcoef(J)`` (N×N, float64), ``λ`` its eigenvalues (clamped at 0
    against round-off) and the score is ``-sum(log(λ + k) + 1 / (λ + k))`` with
    ``k = 1e-5`` (:data:`JACOB_COV_K`). Higher means less correlated Jacobians.

    Raises UsageError for bad inputs, an output that does not depend on the inputs, or an
    input whose Jacobian is constant (its correlation is undefined).
    """
    net = _check_model(model)
    x = _check_inputs("inputs", inputs, net, min_batch=2)
    n = x.shape[0]
    copy_ = _copy(net).train()
    leaf = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = _forward(copy_, leaf)
        if out.requires_grad:  # the gradient of a sum: ones (and cold-starts faster)
            out.sum().backward()  # type: ignore[no-untyped-call]
    if leaf.grad is None:
        raise UsageError(
            "jacob_cov must back-propagate to the inputs, got no gradient: the model's output "
            "does not depend on them (or its forward detaches them). Drop 'jacob_cov' for it."
        )
    correlations = torch.corrcoef(leaf.grad.reshape(n, -1).double())
    value = math.nan
    if bool(torch.isfinite(correlations).all()):
        eigenvalues = torch.linalg.eigvalsh(correlations).clamp(min=0.0)
        shifted = eigenvalues + JACOB_COV_K
        value = float(-(torch.log(shifted) + 1.0 / shifted).sum().item())
    return _finite(
        "jacob_cov",
        value,
        "An input's Jacobian is constant (zero variance: e.g. dead ReLUs everywhere or a "
        "constant input), so its correlation is undefined. Score a batch of real inputs.",
    )


# --------------------------------------------------------------------------------------------
# All of them
# --------------------------------------------------------------------------------------------


def _check_names(names: object) -> tuple[str, ...]:
    valid = ", ".join(ZERO_COST_NAMES)
    if isinstance(names, str) or not isinstance(names, (tuple, list)) or not names:
        raise UsageError(
            f"`names` must be a non-empty tuple of score names ({valid}), got {names!r}. "
            "E.g. names=('synflow',)."
        )
    for name in names:
        if name not in ZERO_COST_NAMES:
            raise UsageError(f"`names` must hold only {valid}, got {name!r}.")
    if len(set(names)) != len(names):
        raise UsageError(f"`names` must not repeat a score, got {list(names)!r}.")
    return tuple(names)


def _score(
    name: str,
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor | None,
    loss_fn: LossFn | None,
) -> float:
    if name == "params":
        return float(count_parameters(model))
    if name == "flops":
        return float(count_flops(model, inputs[:1]))
    if name == "synflow":
        return synflow(model, tuple(inputs.shape[1:]))
    if name == "grad_norm":
        if targets is None:
            raise UsageError(
                "`targets` must be given for grad_norm, got None. Pass the batch's labels, "
                "or leave 'grad_norm' out of the names."
            )
        return grad_norm(model, inputs, targets, loss_fn)
    if name == "naswot":
        return naswot(model, inputs)
    return jacob_cov(model, inputs)


def zero_cost_scores(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor | None,
    loss_fn: LossFn | None = None,
    names: Sequence[str] = ZERO_COST_NAMES,
    *,
    seed: int = 0,
) -> dict[str, float]:
    """The zero-training baselines of ``model`` on one batch, by name (in ``names``' order).

    - ``params``: :func:`count_parameters`;
    - ``flops``: :func:`count_flops` of one input (``inputs[:1]``);
    - ``synflow``: :func:`synflow` with ``input_shape = inputs.shape[1:]``;
    - ``grad_norm``: :func:`grad_norm` on ``(inputs, targets)`` with ``loss_fn`` (default
      cross-entropy);
    - ``naswot``: :func:`naswot` on ``inputs``;
    - ``jacob_cov``: :func:`jacob_cov` on ``inputs``.

    Call it on the freshly initialised model, with a fixed batch (the papers use 64-128
    training inputs; every reference model should get the same one). Each score starts from
    torch's generators seeded with ``seed`` (CPU, and the inputs' CUDA device), which are
    restored afterwards, so the call is repeatable and leaves the caller's random stream as
    it was. The model's weights, buffers, gradients and train/eval modes are not changed.
    Every value is finite: a score that comes out NaN/inf raises UsageError naming it (leave
    that name out for this model). Save the result with :func:`save_zero_cost_scores`.

    Example::

        scores = zero_cost_scores(model, images[:64], labels[:64])
        save_zero_cost_scores(job_dir, scores)  # FINAL_METRICS.json: zero_cost.synflow, ...
    """
    net = _check_model(model)
    chosen = _check_names(names)
    x = _check_inputs("inputs", inputs, net, min_batch=2)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UsageError(f"`seed` must be an integer >= 0, got {seed!r}.")
    scores: dict[str, float] = {}
    for name in chosen:
        with _seeded(x.device, seed):
            scores[name] = _score(name, net, x, targets, loss_fn)
    return scores
