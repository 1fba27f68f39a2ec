"""Proxy-task configurations and the generators that produce them."""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from proxytask.core.errors import ConfigError
from proxytask.core.imports import import_callable

__all__ = [
    "ProxyTaskConfig",
    "ProxyTaskConfigGenerator",
    "data_and_scale",
    "data_pct_generator",
    "load_proxy_task_configs",
    "model_scale",
    "model_scale_generator",
    "product_generator",
    "select_shards",
    "shard_fraction_arg",
    "training_data_pct",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=+-]{0,99}$")


@dataclasses.dataclass(frozen=True)
class ProxyTaskConfig:
    """One candidate proxy task: a readable name and the trainer flags it overrides.

    Example::

        ProxyTaskConfig("data50", {"train_data_pct": 50})
    """

    name: str
    trainer_args: Mapping[str, Any]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ConfigError(
                f"ProxyTaskConfig.name must be 1-100 letters, digits or _.=+- , got "
                f"{self.name!r}. Use names like 'data50_img12'."
            )
        if not isinstance(self.trainer_args, Mapping):
            raise ConfigError(
                f"ProxyTaskConfig.trainer_args must be a dict of trainer flags, got "
                f"{self.trainer_args!r}."
            )
        object.__setattr__(self, "trainer_args", dict(self.trainer_args))

    @property
    def docker_args_map(self) -> Mapping[str, Any]:
        """The reference tools' name for :attr:`trainer_args`."""
        return self.trainer_args


def _only_configs(items: Iterable[object], who: str, hint: str = "") -> list[ProxyTaskConfig]:
    """The items as a list, each checked to be a ProxyTaskConfig (``who`` returned them)."""
    out: list[ProxyTaskConfig] = []
    for item in items:
        if not isinstance(item, ProxyTaskConfig):
            converted = _from_reference_config(item)
            if converted is None:
                raise ConfigError(
                    f"{who} must return ProxyTaskConfig items{hint}, got {item!r:.80}."
                )
            item = converted
        out.append(item)
    return out


def _from_reference_config(item: object) -> ProxyTaskConfig | None:
    """A reference-tools config (``name`` and ``docker_args_map`` attributes, e.g.
    ``proxytask.vertex.proxy_task_utils.ProxyTaskConfig``) as a ProxyTaskConfig; None for
    anything else."""
    name = getattr(item, "name", None)
    args = getattr(item, "docker_args_map", None)
    if not isinstance(name, str) or not isinstance(args, Mapping):
        return None
    return ProxyTaskConfig(name, args)


def load_proxy_task_configs(ref: str, baseline_args: Mapping[str, Any]) -> list[ProxyTaskConfig]:
    """Call the generator ``pkg.module:function(baseline_args)`` and check what it returns."""
    fn = import_callable(ref, "--proxy-task-config-generator", ConfigError)
    try:
        configs = fn(dict(baseline_args))
    except Exception as exc:
        raise ConfigError(
            f"--proxy-task-config-generator {ref} must return configs, got "
            f"{type(exc).__name__}: {exc}. Fix the generator."
        ) from exc
    if not isinstance(configs, Sequence) or isinstance(configs, (str, bytes)) or not configs:
        raise ConfigError(
            f"--proxy-task-config-generator {ref} must return a non-empty list of "
            f"ProxyTaskConfig, got {configs!r:.80}."
        )
    out = _only_configs(
        configs,
        f"--proxy-task-config-generator {ref}",
        " (from proxytask import ProxyTaskConfig)",
    )
    names = [c.name for c in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(
            f"proxy-task config names must be unique, got {', '.join(dupes)} more than once."
        )
    return out


# --------------------------------------------------------------------------------------------
# Built-in generators (SPEC §4.1): training-data %, model scale and their combinations.
# --------------------------------------------------------------------------------------------

ProxyTaskConfigGenerator = Callable[[Mapping[str, Any]], list[ProxyTaskConfig]]
"""What ``--proxy-task-config-generator`` names: ``baseline_args -> [ProxyTaskConfig]``."""


def _is_number(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _check_arg_name(what: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{what} must be a non-empty trainer flag name, got {value!r}.")
    return value


def _check_unique(what: str, values: Sequence[Any]) -> None:
    dupes = sorted({v for v in values if list(values).count(v) > 1})
    if dupes:
        raise ConfigError(
            f"{what} must not repeat a value, got {tuple(values)!r} ({dupes!r} repeated). "
            "Give each value once."
        )


def _as_tuple(what: str, values: object) -> tuple[Any, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ConfigError(f"{what} must be a sequence of numbers, got {values!r}. E.g. (25, 50).")
    return tuple(values)


def _with(baseline_args: Mapping[str, Any], **overrides: Any) -> dict[str, Any]:
    args = dict(baseline_args)
    args.update(overrides)
    return args


def data_pct_generator(
    pcts: Sequence[float] = (25, 50, 75, 95), arg: str = "train_data_pct"
) -> ProxyTaskConfigGenerator:
    """Return a generator of one proxy task per training-data percentage.

    Each config is the baseline with ``arg`` set to the percentage; names are ``data<pct>``.
    Percentages must lie in (0, 100): never 100, which is full training.

    Example::

        >>> gen = data_pct_generator((25, 50))
        >>> [(c.name, c.trainer_args["train_data_pct"]) for c in gen({"lr": 0.1})]
        [('data25', 25), ('data50', 50)]
    """
    values = _as_tuple("data_pct_generator pcts", pcts)
    arg = _check_arg_name("data_pct_generator arg", arg)
    if not values:
        raise ConfigError("data_pct_generator pcts must be non-empty, got (). E.g. (25, 50).")
    for pct in values:
        if not _is_number(pct) or not 0 < pct < 100:
            raise ConfigError(
                f"data_pct_generator pcts must be percentages in (0, 100), got {pct!r}. "
                "Use e.g. 25, 50, 75 or 95 (never 100: that is full training)."
            )
    _check_unique("data_pct_generator pcts", values)

    def generate(baseline_args: Mapping[str, Any]) -> list[ProxyTaskConfig]:
        return [ProxyTaskConfig(f"data{p:g}", _with(baseline_args, **{arg: p})) for p in values]

    return generate


def _baseline_image_size(baseline_args: Mapping[str, Any], key: str) -> int | None:
    """The baseline's image size as an int (it may be given as a string flag), or None."""
    if key not in baseline_args or baseline_args[key] is None:
        return None
    raw = baseline_args[key]
    size: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        size = raw
    elif isinstance(raw, float) and raw.is_integer():
        size = int(raw)
    elif isinstance(raw, str) and raw.strip().isdigit():
        size = int(raw.strip())
    if size is None or size <= 0:
        raise ConfigError(
            f"baseline {key} must be a positive integer, got {raw!r}. Fix the baseline's "
            f"--{key} flag or pass image_size_arg= naming the right flag."
        )
    return size


def model_scale_generator(
    width: Sequence[float] = (0.5, 0.75),
    depth: Sequence[float] = (0.5,),
    image_size: Sequence[int] = (),
    *,
    width_arg: str = "width_multiplier",
    depth_arg: str = "depth_multiplier",
    image_size_arg: str = "image_size",
) -> ProxyTaskConfigGenerator:
    """Return a generator of one proxy task per single model-scale reduction.

    Names are ``width<m>``, ``depth<m>`` and ``img<size>``. Multipliers must be in (0, 1);
    image sizes that are not below the baseline's ``image_size`` (when it has one) are skipped.

    Example::

        >>> gen = model_scale_generator((0.5,), (), (12,))
        >>> [(c.name, c.trainer_args) for c in gen({"image_size": 16})]
        [('width0.5', {'image_size': 16, 'width_multiplier': 0.5}), ('img12', {'image_size': 12})]
    """
    widths = _as_tuple("model_scale_generator width", width)
    depths = _as_tuple("model_scale_generator depth", depth)
    sizes = _as_tuple("model_scale_generator image_size", image_size)
    width_arg = _check_arg_name("model_scale_generator width_arg", width_arg)
    depth_arg = _check_arg_name("model_scale_generator depth_arg", depth_arg)
    size_arg = _check_arg_name("model_scale_generator image_size_arg", image_size_arg)
    for what, values in (("width", widths), ("depth", depths)):
        for m in values:
            if not _is_number(m) or not 0 < m < 1:
                raise ConfigError(
                    f"model_scale_generator {what} multipliers must be in (0, 1), got {m!r}. "
                    "Use e.g. 0.5 or 0.75 (1 is the full model)."
                )
        _check_unique(f"model_scale_generator {what}", values)
    for s in sizes:
        if not isinstance(s, int) or isinstance(s, bool) or s <= 0:
            raise ConfigError(
                f"model_scale_generator image_size must be positive integers, got {s!r}. "
                "E.g. (160, 192)."
            )
    _check_unique("model_scale_generator image_size", sizes)
    if not (widths or depths or sizes):
        raise ConfigError(
            "model_scale_generator must be given at least one width, depth or image_size, "
            "got none. E.g. model_scale_generator(width=(0.5,))."
        )

    def generate(baseline_args: Mapping[str, Any]) -> list[ProxyTaskConfig]:
        configs = [
            ProxyTaskConfig(f"width{m:g}", _with(baseline_args, **{width_arg: m})) for m in widths
        ]
        configs += [
            ProxyTaskConfig(f"depth{m:g}", _with(baseline_args, **{depth_arg: m})) for m in depths
        ]
        base = _baseline_image_size(baseline_args, size_arg)
        for s in sizes:
            if base is None or s < base:
                configs.append(ProxyTaskConfig(f"img{s}", _with(baseline_args, **{size_arg: s})))
        if not configs:
            raise ConfigError(
                f"model_scale_generator image sizes must be below the baseline {size_arg} "
                f"{base}, got {sizes!r}. Give smaller image sizes."
            )
        return configs

    return generate


def _overrides(config: ProxyTaskConfig, baseline_args: Mapping[str, Any]) -> dict[str, Any]:
    """The trainer flags a config changes relative to the baseline."""
    return {
        k: v
        for k, v in config.trainer_args.items()
        if k not in baseline_args or (baseline_args[k] is not v and baseline_args[k] != v)
    }


def product_generator(*generators: ProxyTaskConfigGenerator) -> ProxyTaskConfigGenerator:
    """Return a generator of every combination of the given generators' configs.

    The reductions are merged (two components changing the same flag to different values is a
    ConfigError) and names are joined with ``_``.

    Example::

        >>> gen = product_generator(data_pct_generator((50,)), model_scale_generator((), (), (12,)))
        >>> [(c.name, c.trainer_args) for c in gen({"image_size": 16})]
        [('data50_img12', {'image_size': 12, 'train_data_pct': 50})]
    """
    if not generators:
        raise ConfigError(
            "product_generator must be given at least one generator, got none. "
            "E.g. product_generator(data_pct_generator(), model_scale_generator())."
        )
    for g in generators:
        if not callable(g):
            raise ConfigError(
                f"product_generator arguments must be generator functions, got {g!r}. "
                "Pass e.g. data_pct_generator(), not data_pct_generator."
            )

    def generate(baseline_args: Mapping[str, Any]) -> list[ProxyTaskConfig]:
        parts: list[list[ProxyTaskConfig]] = []
        for g in generators:
            parts.append(_only_configs(g(baseline_args), "product_generator components"))
        out: list[ProxyTaskConfig] = []
        for combo in itertools.product(*parts):
            merged: dict[str, Any] = {}
            owner: dict[str, str] = {}
            for c in combo:
                for k, v in _overrides(c, baseline_args).items():
                    if k in merged and merged[k] != v:
                        raise ConfigError(
                            f"product_generator components must change different trainer "
                            f"flags, got {k!r} = {merged[k]!r} from {owner[k]!r} and {v!r} "
                            f"from {c.name!r}. Combine generators that reduce different flags."
                        )
                    merged[k] = v
                    owner[k] = c.name
            out.append(
                ProxyTaskConfig("_".join(c.name for c in combo), _with(baseline_args, **merged))
            )
        return out

    return generate


def _three_quarter_image(
    baseline_args: Mapping[str, Any], key: str = "image_size"
) -> tuple[int, ...]:
    base = _baseline_image_size(baseline_args, key)
    if base is None or base * 3 // 4 < 1:
        return ()
    return (base * 3 // 4,)


def training_data_pct(baseline_args: Mapping[str, Any]) -> list[ProxyTaskConfig]:
    """Ready-made generator: ``train_data_pct`` 25, 50, 75 and 95.

    Example::

        --proxy-task-config-generator proxytask.core.proxies:training_data_pct
    """
    return data_pct_generator()(baseline_args)


def model_scale(baseline_args: Mapping[str, Any]) -> list[ProxyTaskConfig]:
    """Ready-made generator: width 0.5 and 0.75, depth 0.5, and 3/4 of the baseline image size.

    The image-size config (``img<size>``, rounded down) exists only when the baseline has an
    ``image_size`` flag.

    Example::

        --proxy-task-config-generator proxytask.core.proxies:model_scale
    """
    sizes = _three_quarter_image(baseline_args)
    return model_scale_generator(image_size=sizes)(baseline_args)


def data_and_scale(baseline_args: Mapping[str, Any]) -> list[ProxyTaskConfig]:
    """Ready-made generator: data 25 % and 50 % times width 0.5 or 3/4 of the image size.

    Example::

        --proxy-task-config-generator proxytask.core.proxies:data_and_scale
        # data25_width0.5, data25_img168, data50_width0.5, data50_img168 for image_size 224
    """
    scale = model_scale_generator((0.5,), (), _three_quarter_image(baseline_args))
    return product_generator(data_pct_generator((25, 50)), scale)(baseline_args)


# --------------------------------------------------------------------------------------------
# Sharded training data: pick a random, exact fraction of the shards.
# --------------------------------------------------------------------------------------------


def select_shards(shards: Sequence[str], fraction: float, seed: int) -> list[str]:
    """Pick ``round(fraction * n)`` of the shards at random, kept in their original order.

    The choice depends only on ``seed`` (``numpy.random.default_rng``). The fraction selected
    must equal the fraction asked, so ``fraction * len(shards)`` must be a whole number.

    Example::

        >>> len(select_shards([f"s{i}" for i in range(10)], 0.3, seed=0))
        3
    """
    if isinstance(shards, (str, bytes)) or not isinstance(shards, Sequence):
        raise ConfigError(f"select_shards shards must be a list of paths, got {shards!r:.80}.")
    paths = list(shards)
    if not paths:
        raise ConfigError("select_shards shards must be non-empty, got []. List the shard files.")
    for p in paths:
        if not isinstance(p, str) or not p:
            raise ConfigError(f"select_shards shards must be non-empty strings, got {p!r}.")
    dupes = sorted({p for p in paths if paths.count(p) > 1})
    if dupes:
        raise ConfigError(
            f"select_shards shards must be distinct, got {', '.join(dupes[:3])} more than once. "
            "Remove the duplicates."
        )
    if not _is_number(fraction) or not 0 < fraction < 1:
        raise ConfigError(
            f"select_shards fraction must be in (0, 1), got {fraction!r}. E.g. 0.25 "
            "(1 is all the data: full training)."
        )
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"select_shards seed must be a non-negative integer, got {seed!r}.")
    n = len(paths)
    k = round(fraction * n)
    if abs(k / n - fraction) > 1e-9:
        lo, hi = math.floor(fraction * n), math.ceil(fraction * n)
        options = [f"{i / n:.6g}" for i in (lo, hi) if 0 < i < n]
        use = f"use {' or '.join(options)}, or " if options else ""
        raise ConfigError(
            f"select_shards fraction must be a multiple of 1/{n}, got {fraction!r}: fraction "
            f"{fraction!r} of {n} shards is not representable; {use}give a shard count "
            "divisible by the fraction."
        )
    import numpy as np  # here, not at module level: ``import proxytask`` stays numpy-free

    rng = np.random.default_rng(seed)
    picked = sorted(int(i) for i in rng.choice(n, size=k, replace=False))
    return [paths[i] for i in picked]


def shard_fraction_arg(pattern: str, num_shards: int, fraction: float, seed: int) -> str:
    """Format the shards picked by :func:`select_shards` as one comma-separated flag value.

    ``pattern`` is formatted with ``index`` (0-based) and ``num`` (``num_shards``).

    Example::

        >>> shard_fraction_arg("gs://b/train-{index:05d}-of-{num:05d}", 4, 0.5, seed=0).count(",")
        1
    """
    if not isinstance(num_shards, int) or isinstance(num_shards, bool) or num_shards <= 0:
        raise ConfigError(
            f"shard_fraction_arg num_shards must be a positive integer, got {num_shards!r}."
        )
    if not isinstance(pattern, str) or "{index" not in pattern:
        raise ConfigError(
            f"shard_fraction_arg pattern must contain '{{index}}', got {pattern!r}. "
            "E.g. 'gs://b/train-{index:05d}-of-{num:05d}'."
        )
    try:
        paths = [pattern.format(index=i, num=num_shards) for i in range(num_shards)]
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"shard_fraction_arg pattern must use only {{index}} and {{num}} fields, got "
            f"{pattern!r} ({type(exc).__name__}: {exc}). E.g. 'gs://b/train-{{index:05d}}'."
        ) from exc
    if any("," in p for p in paths):
        raise ConfigError(
            f"shard_fraction_arg shard paths must not contain ',', got {paths[0]!r}. "
            "Rename the shards or join them yourself."
        )
    return ",".join(select_shards(paths, fraction, seed))
