"""Tests of proxytask.trainer.zero_cost: parameter and FLOP counts, zero-cost proxies, saving."""

from __future__ import annotations

import copy
import doctest
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from proxytask.core.errors import UsageError  # noqa: E402
from proxytask.trainer import contract as pt  # noqa: E402
from proxytask.trainer import torch as ptt  # noqa: E402
from proxytask.trainer import zero_cost as zc  # noqa: E402
from proxytask.trainer import zero_cost_metrics as zcm  # noqa: E402

K = zc.JACOB_COV_K


def _set(module: Any, **tensors: list[Any]) -> Any:
    """Set ``module``'s parameters (weight=..., bias=...) to the given values."""
    with torch.no_grad():
        for name, value in tensors.items():
            getattr(module, name).copy_(torch.tensor(value, dtype=torch.float32))
    return module


def _small_cnn(dropout: float = 0.0) -> Any:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(inplace=True),
        nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(4, 3),
    )


def _batch(n: int = 8, seed: int = 1) -> tuple[Any, Any]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 6, 6, generator=g), torch.randint(0, 3, (n,), generator=g)


# --------------------------------------------------------------------------------------------
# Import hygiene and re-exports
# --------------------------------------------------------------------------------------------


def test_the_metrics_module_is_torch_free_and_proxytask_torch_re_exports() -> None:
    code = (
        "import sys, proxytask, proxytask.trainer.zero_cost_metrics\nprint('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    for name in zc.__all__:
        assert getattr(ptt, name) is getattr(zc, name)
        assert name in ptt.__all__
    assert zc.save_zero_cost_scores is zcm.save_zero_cost_scores


def test_docstring_examples() -> None:
    result = doctest.testmod(zc, extraglobs={"torch": torch, "nn": nn})
    assert result.attempted >= 4 and result.failed == 0


# --------------------------------------------------------------------------------------------
# Parameters and FLOPs
# --------------------------------------------------------------------------------------------


def test_count_parameters_counts_trainable_ones_once() -> None:
    assert zc.count_parameters(nn.Linear(3, 2)) == 8
    net = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2, bias=False))
    assert zc.count_parameters(net) == 8 + 4
    shared = nn.Linear(2, 2)
    assert zc.count_parameters(nn.Sequential(shared, shared)) == 6
    net[0].weight.requires_grad_(False)
    assert zc.count_parameters(net) == 2 + 4
    conv = nn.Conv2d(4, 8, 3, groups=2)  # 8 × (4/2) × 9 weights + 8 biases
    assert zc.count_parameters(conv) == 8 * 2 * 9 + 8


@pytest.mark.parametrize(
    ("module", "shape", "flops"),
    [
        (nn.Linear(3, 2), (1, 3), 2 * (2 * 3)),
        (nn.Linear(3, 2), (4, 3), 2 * (4 * 2 * 3)),  # the whole batch
        (nn.Linear(3, 2), (1, 5, 3), 2 * (5 * 2 * 3)),  # extra dims
        (nn.Conv2d(4, 8, 3, padding=1), (1, 4, 5, 5), 2 * (8 * 25 * 4 * 9)),
        (nn.Conv2d(4, 8, 3, padding=1, groups=2), (1, 4, 5, 5), 2 * (8 * 25 * 2 * 9)),
        (nn.Conv2d(4, 4, 3, padding=1, groups=4), (1, 4, 5, 5), 2 * (4 * 25 * 1 * 9)),
        (nn.Conv2d(1, 2, 3, stride=2), (1, 1, 7, 7), 2 * (2 * 9 * 9)),  # 3×3 outputs
        (nn.Conv2d(2, 2, (1, 3)), (1, 2, 4, 4), 2 * (2 * 4 * 2 * 2 * 3)),  # 4×2 outputs
        (nn.Conv1d(2, 3, 4), (1, 2, 10), 2 * (3 * 7 * 2 * 4)),
        (nn.BatchNorm2d(8), (2, 8, 3, 3), 2 * 144),
        (nn.AvgPool2d(2), (1, 3, 4, 4), 2 * (12 * 4)),
        (nn.AdaptiveAvgPool2d(1), (1, 3, 4, 4), 2 * 48),
        (nn.AdaptiveAvgPool1d(2), (1, 1, 5), 2 * (3 + 3)),  # windows [0, 3) and [2, 5)
        (nn.MaxPool2d(2), (1, 3, 4, 4), 0),
        (nn.ReLU(), (1, 3), 0),
    ],
)
def test_count_flops_of_single_modules(module: Any, shape: tuple[int, ...], flops: int) -> None:
    assert zc.count_flops(module, torch.zeros(shape)) == flops


def test_count_flops_ignores_biases_and_adds_up_a_network() -> None:
    for bias in (True, False):
        assert (
            zc.count_flops(nn.Conv2d(4, 8, 3, bias=bias), torch.zeros(1, 4, 5, 5)) == 2 * 8 * 9 * 36
        )
        assert zc.count_flops(nn.Linear(3, 2, bias=bias), torch.zeros(1, 3)) == 12
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),  # 4 × 64 outputs × 9
        nn.BatchNorm2d(4),  # 256
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1),  # 4 × 16
        nn.Flatten(),
        nn.Linear(4, 10),  # 10 × 4
    )
    assert zc.count_flops(net, torch.zeros(1, 1, 8, 8)) == 2 * (2304 + 256 + 64 + 40)


def test_count_flops_counts_each_call_and_not_functional_ops() -> None:
    shared = nn.Linear(4, 4)

    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = shared
            self.extra = nn.Linear(4, 4)  # called through F.linear: not counted

        def forward(self, x: Any) -> Any:
            x = self.layer(self.layer(x))
            return nn.functional.linear(x, self.extra.weight)

    assert zc.count_flops(Twice(), torch.zeros(1, 4)) == 2 * (2 * 16)


def test_count_flops_restores_every_module_mode() -> None:
    net = _small_cnn()
    net.train()
    net[1].eval()
    before = [m.training for m in net.modules()]
    stats = net[1].running_mean.clone()
    zc.count_flops(net, torch.randn(2, 1, 6, 6))
    assert [m.training for m in net.modules()] == before
    assert torch.equal(net[1].running_mean, stats)


# --------------------------------------------------------------------------------------------
# synflow
# --------------------------------------------------------------------------------------------


def test_synflow_matches_a_hand_calculation() -> None:
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    _set(net[0], weight=[[1, -2], [0.5, 0], [-1, 3]], bias=[0.25, -0.5, 0.125])
    _set(net[2], weight=[[2, -1, 0.5]], bias=[-4])
    # |W|, |b|, input of ones: hidden h = |W1|·1 + |b1| = (3.25, 1, 4.125).
    # Layer 2: sum_j |W2_j| h_j = 6.5 + 1 + 2.0625; layer 1: sum_jk |W2_j| |W1_jk| = 6 + 0.5 + 2.
    assert zc.synflow(net, (2,)) == 9.5625 + 8.5
    # the model is untouched: signs, dtype
    assert net[0].weight[0, 1].item() == -2.0 and net[0].weight.dtype == torch.float32


def test_synflow_of_a_bias_free_network_is_depth_times_r() -> None:
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(4, 5, bias=False), nn.Linear(5, 3, bias=False))
    a, b = net[0].weight.abs().double(), net[1].weight.abs().double()
    r = (b @ a @ torch.ones(4, dtype=torch.float64)).sum().item()
    assert zc.synflow(net, (4,)) == pytest.approx(2 * r, rel=1e-12)


def test_synflow_uses_batchnorm_in_eval_mode() -> None:
    # train-mode BatchNorm1d would refuse a batch of one; eval mode (init statistics 0 and 1)
    # divides by sqrt(1 + eps)
    net = nn.Sequential(_set(nn.Linear(2, 1, bias=False), weight=[[2, -3]]), nn.BatchNorm1d(1))
    assert zc.synflow(net, [2]) == pytest.approx(5 / math.sqrt(1 + 1e-5), rel=1e-12)
    assert net.training and net[1].num_batches_tracked.item() == 0


def test_synflow_input_shape_is_one_input_without_the_batch() -> None:
    net = _small_cnn()
    assert zc.synflow(net, (1, 6, 6)) == zc.synflow(net, torch.Size([1, 6, 6])) > 0
    for bad in [(), (0, 6, 6), (1.0, 6, 6), "1,6,6", None, (True, 6)]:
        with pytest.raises(UsageError, match="`input_shape` must be the shape of one input"):
            zc.synflow(net, bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# grad_norm
# --------------------------------------------------------------------------------------------


def test_grad_norm_matches_a_hand_calculation() -> None:
    net = _set(nn.Linear(2, 1, bias=False), weight=[[1, 2]])
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    y = torch.tensor([[0.0], [1.0], [1.0]])
    # predictions (1, 2, 3), residuals (1, 1, 2): dL/dw = 2/3 · sum r_i x_i = (2, 2)
    value = zc.grad_norm(net, x, y, nn.functional.mse_loss)
    assert value == pytest.approx(2 * math.sqrt(2), rel=1e-6)
    assert net.weight.grad is None


def test_grad_norm_matches_manual_autograd_in_train_mode() -> None:
    net = _small_cnn()
    x, y = _batch()
    manual = _small_cnn().train()
    nn.functional.cross_entropy(manual(x), y).backward()
    layers = [manual[0], manual[3], manual[8]]
    expected = sum(float(m.weight.grad.norm()) for m in layers)
    net.eval()  # the score is taken in train mode whatever the model's mode
    assert zc.grad_norm(net, x, y) == pytest.approx(expected, rel=1e-5)
    assert not net.training


def test_grad_norm_refuses_a_loss_that_is_not_a_scalar() -> None:
    x, y = _batch()
    loss = nn.CrossEntropyLoss(reduction="none")
    with pytest.raises(UsageError, match=r"`loss_fn` must return a scalar tensor, got \(8,\)"):
        zc.grad_norm(_small_cnn(), x, y, loss)
    with pytest.raises(UsageError, match=r"one target per input \(8\), got shape \(7,\)"):
        zc.grad_norm(_small_cnn(), x, y[:7])


# --------------------------------------------------------------------------------------------
# NASWOT
# --------------------------------------------------------------------------------------------


def test_naswot_kernel_by_hand() -> None:
    x = torch.tensor([[1.0, -1.0], [1.0, 1.0], [-1.0, -1.0]])
    # codes 10, 11, 00: K = 2 - Hamming = [[2, 1, 1], [1, 2, 0], [1, 0, 2]], det = 4
    assert zc.naswot(nn.ReLU(), x) == pytest.approx(math.log(4), rel=1e-12)
    # two ReLUs double the codes: K doubles, det × 2³
    assert zc.naswot(nn.Sequential(nn.ReLU(), nn.ReLU()), x) == pytest.approx(math.log(32))
    # in-place ReLUs are read before they overwrite their input; so are LeakyReLU and ReLU6
    assert zc.naswot(nn.Sequential(nn.ReLU(inplace=True)), x) == pytest.approx(math.log(4))
    assert zc.naswot(nn.LeakyReLU(0.1), x) == pytest.approx(math.log(4))
    assert zc.naswot(nn.ReLU6(), x) == pytest.approx(math.log(4))


def test_naswot_codes_come_from_the_pre_activations() -> None:
    linear = _set(nn.Linear(2, 3, bias=False), weight=[[1, 0], [0, 1], [1, 1]])
    x = torch.tensor([[1.0, -2.0], [-1.0, 2.0], [2.0, 1.0]])  # pre-activation codes 100, 011, 111
    # K = 3 - Hamming = [[3, 0, 1], [0, 3, 2], [1, 2, 3]], det = 3·5 - 0 + 1·(0 - 3) = 12
    assert zc.naswot(nn.Sequential(linear, nn.ReLU()), x) == pytest.approx(math.log(12))


def test_naswot_errors_teach() -> None:
    x = torch.tensor([[1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]])
    with pytest.raises(UsageError, match=r"naswot must come out finite, got -inf.*singular"):
        zc.naswot(nn.ReLU(), x)

    class Functional(nn.Module):
        def forward(self, x: Any) -> Any:
            return torch.relu(x)

    with pytest.raises(UsageError, match=r"naswot must find nn\.ReLU modules.*F\.relu calls"):
        zc.naswot(Functional(), x)
    with pytest.raises(UsageError, match="batch of at least 2 inputs"):
        zc.naswot(nn.ReLU(), x[:1])


# --------------------------------------------------------------------------------------------
# jacob_cov
# --------------------------------------------------------------------------------------------


def _jacob_cov_by_numpy(jacobians: np.ndarray) -> float:
    """The reference code's eval_score: np.corrcoef, np.linalg.eig, k = 1e-5."""
    v, _ = np.linalg.eig(np.corrcoef(jacobians))
    return float(-np.sum(np.log(v.real + K) + 1.0 / (v.real + K)))


def test_jacob_cov_of_a_linear_model_by_hand() -> None:
    # every input has the same Jacobian (the column sums of W): C is all ones, eigenvalues
    # N = 4 and 0 (three times)
    net = _set(nn.Linear(3, 2), weight=[[1, 2, 3], [0, -1, 5]], bias=[0, 0])
    x = torch.randn(4, 3)
    expected = -(math.log(4 + K) + 1 / (4 + K)) - 3 * (math.log(K) + 1 / K)
    assert zc.jacob_cov(net, x) == pytest.approx(expected, rel=1e-9)


def test_jacob_cov_matches_the_reference_formula() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3))
    x = torch.randn(6, 5)
    leaf = x.clone().requires_grad_(True)
    copy.deepcopy(net)(leaf).backward(torch.ones(6, 3))
    expected = _jacob_cov_by_numpy(leaf.grad.double().numpy())
    assert zc.jacob_cov(net, x) == pytest.approx(expected, rel=1e-6)
    assert all(p.grad is None for p in net.parameters())


def test_jacob_cov_errors_teach() -> None:
    x = torch.randn(4, 3)
    constant = _set(nn.Linear(3, 1), weight=[[1, 1, 1]], bias=[0])  # each row (1, 1, 1)
    with pytest.raises(UsageError, match="jacob_cov must come out finite, got nan"):
        zc.jacob_cov(constant, x)

    class Ignores(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bias = nn.Parameter(torch.ones(2))

        def forward(self, x: Any) -> Any:
            return self.bias.expand(x.shape[0], 2)

    with pytest.raises(UsageError, match="jacob_cov must back-propagate to the inputs"):
        zc.jacob_cov(Ignores(), x)


# --------------------------------------------------------------------------------------------
# zero_cost_scores
# --------------------------------------------------------------------------------------------


def _snapshot(net: Any) -> dict[str, Any]:
    return {
        "state": {k: v.clone() for k, v in net.state_dict().items()},
        "grads": [None if p.grad is None else p.grad.clone() for p in net.parameters()],
        "requires_grad": [p.requires_grad for p in net.parameters()],
        "modes": [m.training for m in net.modules()],
        "dtypes": [p.dtype for p in net.parameters()],
    }


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    states = a["state"].keys() == b["state"].keys() and all(
        torch.equal(a["state"][k], b["state"][k]) for k in a["state"]
    )
    grads = all(
        (x is None and y is None) or (x is not None and y is not None and torch.equal(x, y))
        for x, y in zip(a["grads"], b["grads"], strict=True)
    )
    rest = all(a[k] == b[k] for k in ("requires_grad", "modes", "dtypes"))
    return states and grads and rest


def test_zero_cost_scores_computes_every_score_of_its_function() -> None:
    net = _small_cnn()
    x, y = _batch()
    scores = zc.zero_cost_scores(net, x, y)
    assert tuple(scores) == zc.ZERO_COST_NAMES
    assert all(math.isfinite(v) and isinstance(v, float) for v in scores.values())
    assert scores["params"] == zc.count_parameters(net) == (9 + 1) * 4 + 8 + 9 * 4 + 15
    assert scores["flops"] == zc.count_flops(net, x[:1])
    assert scores["synflow"] == zc.synflow(net, (1, 6, 6))
    assert scores["grad_norm"] == zc.grad_norm(net, x, y)
    assert scores["naswot"] == zc.naswot(net, x)
    assert scores["jacob_cov"] == zc.jacob_cov(net, x)
    assert zc.zero_cost_scores(net, x, None, names=["naswot", "params"]) == {
        "naswot": scores["naswot"],
        "params": scores["params"],
    }


def test_zero_cost_scores_leave_the_model_and_the_random_state_alone() -> None:
    net = _small_cnn(dropout=0.5)
    x, y = _batch()
    nn.functional.cross_entropy(net(x), y).backward()  # grads and BN statistics to keep
    net[1].eval()  # mixed modes
    net[0].bias.requires_grad_(False)
    before = _snapshot(net)
    rng = torch.get_rng_state()
    zc.zero_cost_scores(net, x, y)
    assert _same(before, _snapshot(net))
    assert torch.equal(torch.get_rng_state(), rng)
    net[0].weight.data[0, 0, 0, 0] += 1  # the snapshot does tell a change
    assert not _same(before, _snapshot(net))


def test_zero_cost_scores_are_repeatable_and_seeded() -> None:
    net = _small_cnn(dropout=0.5)  # dropout in train mode: grad_norm draws random masks
    x, y = _batch()
    first = zc.zero_cost_scores(net, x, y)
    torch.rand(3)  # another random state: the seed decides, not the caller's stream
    assert zc.zero_cost_scores(net, x, y) == first
    other = zc.zero_cost_scores(net, x, y, names=("grad_norm",), seed=1)
    assert other["grad_norm"] != first["grad_norm"]


def test_zero_cost_scores_raise_for_a_non_finite_score() -> None:
    net = _small_cnn()
    with torch.no_grad():
        net[8].weight[0, 0] = math.nan
    x, y = _batch()
    with pytest.raises(UsageError, match="synflow must come out finite, got nan"):
        zc.zero_cost_scores(net, x, y)
    with pytest.raises(UsageError, match="grad_norm must come out finite, got nan"):
        zc.zero_cost_scores(net, x, y, names=("params", "grad_norm"))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda n, x, y: zc.zero_cost_scores("net", x, y), "`model` must be a torch.nn.Module"),
        (lambda n, x, y: zc.zero_cost_scores(n, x.long(), y), "must be a floating-point tensor"),
        (lambda n, x, y: zc.zero_cost_scores(n, [1.0], y), "got list"),
        (lambda n, x, y: zc.zero_cost_scores(n, x[:1], y[:1]), "batch of at least 2 inputs"),
        (lambda n, x, y: zc.zero_cost_scores(n, x, y, names="synflow"), "non-empty tuple"),
        (lambda n, x, y: zc.zero_cost_scores(n, x, y, names=()), "non-empty tuple"),
        (lambda n, x, y: zc.zero_cost_scores(n, x, y, names=("snip",)), "got 'snip'"),
        (lambda n, x, y: zc.zero_cost_scores(n, x, y, names=("params",) * 2), "not repeat"),
        (lambda n, x, y: zc.zero_cost_scores(n, x, None), "`targets` must be given"),
        (lambda n, x, y: zc.zero_cost_scores(n, x, y, seed=-1), "`seed` must be an integer"),
        (lambda n, x, y: zc.zero_cost_scores(n, torch.cat([x, x], 1), y), "forward pass must"),
        (lambda n, x, y: zc.zero_cost_scores(nn.Identity(), x, y), "synflow must find"),
        (lambda n, x, y: zc.count_flops(n, x[:, 0]), "forward pass must accept"),
        (lambda n, x, y: zc.synflow(nn.ReLU(), (3,)), "synflow must find nn.Linear"),
    ],
)
def test_bad_input_errors(call: Any, message: str) -> None:
    x, y = _batch()
    with pytest.raises(UsageError, match=message):
        call(_small_cnn(), x, y)


def test_a_model_that_does_not_return_a_tensor_is_refused() -> None:
    class Pair(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x: Any) -> Any:
            return x, self.fc(x)

    with pytest.raises(UsageError, match=r"must return one tensor \(the logits\), got tuple"):
        zc.jacob_cov(Pair(), torch.randn(4, 3))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_zero_cost_scores_on_cuda_match_the_cpu_and_keep_both_random_states() -> None:
    net = _small_cnn()
    x, y = _batch()
    on_cpu = zc.zero_cost_scores(net, x, y)
    gpu_net = _small_cnn().cuda()
    cpu_rng, cuda_rng = torch.get_rng_state(), torch.cuda.get_rng_state()
    on_gpu = zc.zero_cost_scores(gpu_net, x.cuda(), y.cuda())
    assert torch.equal(torch.get_rng_state(), cpu_rng)
    assert torch.equal(torch.cuda.get_rng_state(), cuda_rng)
    assert on_gpu == pytest.approx(on_cpu, rel=1e-4)
    with pytest.raises(UsageError, match="must be on the model's device"):
        zc.zero_cost_scores(gpu_net, x, y)


# --------------------------------------------------------------------------------------------
# Saving and reading
# --------------------------------------------------------------------------------------------


def test_save_and_read_round_trip(tmp_path: Path) -> None:
    job = str(tmp_path / "trial")
    assert zc.read_zero_cost_scores(job) == {}
    pt.save_final_metrics(job, {"accuracy": 0.9})
    zc.save_zero_cost_scores(job, {"synflow": 1.5e12, "naswot": 231.25, "params": 8})
    saved = json.loads((tmp_path / "trial" / "FINAL_METRICS.json").read_text())
    assert saved == {
        "accuracy": 0.9,
        "zero_cost.synflow": 1.5e12,
        "zero_cost.naswot": 231.25,
        "zero_cost.params": 8.0,
    }
    assert zcm.read_zero_cost_scores(job) == {"synflow": 1.5e12, "naswot": 231.25, "params": 8.0}
    pt.save_final_metrics(job, {"latency_ms": 2.0})  # later final metrics keep them
    assert zcm.read_zero_cost_scores(job)["naswot"] == 231.25


def test_computed_scores_round_trip(tmp_path: Path) -> None:
    x, y = _batch()
    scores = zc.zero_cost_scores(_small_cnn(), x, y)
    zc.save_zero_cost_scores(str(tmp_path), scores)
    assert zc.read_zero_cost_scores(str(tmp_path)) == scores


@pytest.mark.parametrize(
    ("scores", "message"),
    [
        ({"zero_cost.synflow": 1.0}, "without the 'zero_cost.' prefix, got 'zero_cost.synflow'"),
        ({"": 1.0}, "non-empty strings"),
        ({"synflow": math.nan}, "must be finite"),
        ({"synflow": "big"}, "must be a number"),
        ([("synflow", 1.0)], "must be a mapping"),
    ],
)
def test_save_refuses_bad_scores(tmp_path: Path, scores: Any, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        zcm.save_zero_cost_scores(str(tmp_path), scores)
    assert zcm.read_zero_cost_scores(str(tmp_path)) == {}


def test_metric_names() -> None:
    assert zcm.zero_cost_metric_name("synflow") == "zero_cost.synflow"
    assert zcm.ZERO_COST_PREFIX == "zero_cost."
    assert zcm.ZERO_COST_NAMES == ("params", "flops", "synflow", "grad_norm", "naswot", "jacob_cov")
