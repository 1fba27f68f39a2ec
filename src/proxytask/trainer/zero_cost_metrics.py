"""Where zero-cost scores live in a trial dir: ``zero_cost.<name>`` keys of FINAL_METRICS.json.

Torch-free (stdlib + :mod:`proxytask.trainer`), so the search side reads the scores without
PyTorch. The scores themselves are computed by :mod:`proxytask.trainer.zero_cost` (re-exported from
:mod:`proxytask.torch`); a trainer saves them once, on the freshly initialised model::

    from proxytask.torch import save_zero_cost_scores, zero_cost_scores

    save_zero_cost_scores(job_dir, zero_cost_scores(model, images, labels))
    # FINAL_METRICS.json now holds {"zero_cost.params": ..., "zero_cost.synflow": ..., ...}

and the search reads them back with :func:`read_zero_cost_scores`.
"""

from __future__ import annotations

from collections.abc import Mapping

from proxytask.core.errors import UsageError
from proxytask.trainer import contract as _trainer

__all__ = [
    "ZERO_COST_NAMES",
    "ZERO_COST_PREFIX",
    "read_zero_cost_scores",
    "save_zero_cost_scores",
    "zero_cost_metric_name",
]

#: What a zero-cost score's key in FINAL_METRICS.json starts with.
ZERO_COST_PREFIX = "zero_cost."
#: The scores :func:`proxytask.trainer.zero_cost.zero_cost_scores` computes, in its order. Higher is
#: "better" for each of them in the papers that propose them.
ZERO_COST_NAMES: tuple[str, ...] = (
    "params",
    "flops",
    "synflow",
    "grad_norm",
    "naswot",
    "jacob_cov",
)


def zero_cost_metric_name(name: str) -> str:
    """The FINAL_METRICS.json key of the score ``name``: ``"synflow"`` → ``"zero_cost.synflow"``.

    Raises UsageError when ``name`` is empty, not a string, or already carries the prefix.
    """
    if not isinstance(name, str) or not name:
        raise UsageError(f"zero-cost score names must be non-empty strings, got {name!r}.")
    if name.startswith(ZERO_COST_PREFIX):
        raise UsageError(
            f"zero-cost score names must be given without the {ZERO_COST_PREFIX!r} prefix, got "
            f"{name!r}. Pass {name[len(ZERO_COST_PREFIX) :]!r}; the prefix is added on saving."
        )
    return ZERO_COST_PREFIX + name


def save_zero_cost_scores(model_dir: str, scores: Mapping[str, float]) -> None:
    """Merge ``scores`` into the trial's FINAL_METRICS.json as ``zero_cost.<name>`` keys.

    Goes through :func:`proxytask.trainer.save_final_metrics`, so other final metrics stay and
    every value must be a finite number. Raises UsageError for a bad name (see
    :func:`zero_cost_metric_name`) or a value that is not a finite number.

    Example::

        save_zero_cost_scores(job_dir, {"synflow": 3.5e12, "naswot": 231.4})
    """
    if not isinstance(scores, Mapping):
        raise UsageError(
            f"`scores` must be a mapping of score name to number, got {type(scores).__name__}. "
            "Pass the dict zero_cost_scores returns."
        )
    _trainer.save_final_metrics(
        model_dir, {zero_cost_metric_name(name): value for name, value in scores.items()}
    )


def read_zero_cost_scores(model_dir: str) -> dict[str, float]:
    """The zero-cost scores a trial saved, by name without the prefix ({} when none).

    Example: a FINAL_METRICS.json of ``{"accuracy": 0.9, "zero_cost.synflow": 12.0}`` reads as
    ``{"synflow": 12.0}``.
    """
    metrics = _trainer.read_final_metrics(model_dir)
    return {
        key[len(ZERO_COST_PREFIX) :]: value
        for key, value in metrics.items()
        if key.startswith(ZERO_COST_PREFIX) and len(key) > len(ZERO_COST_PREFIX)
    }
