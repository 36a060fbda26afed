"""The sweep spec (a YAML file): what to train, which variants and seeds, what to optimise.

.. code-block:: yaml

    name: digits_surrogates            # study name and folder logs/<name>/ (default: the file's stem)
    config: configs/quickstart.yaml    # the base config of every trial (an ordinary `spikegrad fit` config)
    overrides: {trainer.max_epochs: 3} # dotted setting -> value, for every trial
    seeds: [0, 1, 2]                   # every variant runs once per seed (--seed_everything)
    objective: best_val_acc            # a metric of spikegrad.aggregate.METRICS
    direction: maximize                # or minimize
    reference: atan                    # the variant the others are compared with (default: the first)
    variants:                          # named variants: dotted setting -> value
      atan: {}
      triangle: {model.surrogate: {class_path: Triangle, init_args: {alpha: 2.0}}}
    grid:                              # and/or a Cartesian product: dotted setting -> list of values
      model.optimizer.init_args.lr: [0.001, 0.003]

Search mode replaces ``variants``/``grid`` by ``search`` (:class:`SearchSpec`): a sampler proposes the values of
``space`` for ``n_trials`` trials, each run with the first seed; a pruner stops poor trials from their
per-epoch validation metric.

Every check here runs before any training; a problem is a :class:`~spikegrad.errors.UsageError` (one line,
exit code 2) naming the key and the valid values.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from dataclasses import dataclass, field
from typing import Any

import yaml

from spikegrad.aggregate import METRICS
from spikegrad.errors import UsageError

__all__ = ["SearchSpec", "SweepSpec", "TrialPoint", "load_spec"]

TOP_KEYS = ("name", "config", "overrides", "seeds", "objective", "direction", "reference", "variants", "grid",
            "search", "log_root", "heartbeat_interval", "grace_period", "max_retries")
SEARCH_KEYS = ("n_trials", "sampler", "pruner", "space", "monitor")
SAMPLERS = ("tpe", "random", "cmaes", "qmc")
PRUNERS = ("none", "median", "percentile", "hyperband", "successive_halving")
SPACE_TYPES = ("float", "int", "categorical")
DIRECTIONS = ("maximize", "minimize")


@dataclass
class SearchSpec:
    n_trials: int
    sampler: str = "tpe"
    pruner: str = "median"
    monitor: str = "val/acc"  # the metric logged each epoch that the pruner is fed with
    space: dict[str, dict] = field(default_factory=dict)


@dataclass(frozen=True)
class TrialPoint:
    """One trial of a grid: a variant (its name and settings) and a seed."""

    variant: str
    seed: int

    @property
    def key(self) -> str:
        return f"{self.variant}/seed_{self.seed}"


@dataclass
class SweepSpec:
    path: str
    name: str
    config: str
    seeds: list[int]
    objective: str = "best_val_acc"
    direction: str = "maximize"
    overrides: dict[str, Any] = field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    reference: str | None = None
    search: SearchSpec | None = None
    log_root: str = "logs"
    heartbeat_interval: int = 10
    grace_period: int = 30
    max_retries: int = 3

    @property
    def folder(self) -> str:
        """``<log_root>/<name>``: the run folders, the default storage and the summary."""
        return os.path.join(self.log_root, self.name)

    def points(self) -> list[TrialPoint]:
        """Grid mode: every variant × seed, seed-major (for each seed every variant in turn, so that a change of
        machine load hits all variants alike)."""
        return [TrialPoint(v, s) for s in self.seeds for v in self.variants]

    def grid_hash(self) -> str:
        """A fingerprint of what the grid trains; a study created from another grid is refused."""
        content = {"config": self.config, "overrides": self.overrides, "variants": self.variants,
                   "seeds": self.seeds, "search": None if self.search is None else self.search.__dict__}
        return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _fail(path: str, message: str) -> UsageError:
    return UsageError(f"sweep spec {path}: {message}")


def _mapping(path: str, key: str, value: Any) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(path, f"{key} must be a mapping of dotted settings to values, got {type(value).__name__}")
    return value


def _grid_name(key: str, value: Any) -> str:
    short = key.rsplit(".", 1)[-1]
    shown = value if isinstance(value, (str, int, float, bool)) or value is None else json.dumps(value)
    return f"{short}={shown}"


def _variants(path: str, raw: dict) -> dict[str, dict[str, Any]]:
    named = _mapping(path, "variants", raw.get("variants"))
    for name, settings in named.items():
        if not isinstance(settings, (dict, type(None))):
            raise _fail(path, f"variants.{name} must be a mapping of dotted settings to values (or {{}})")
        if "/" in str(name) or str(name).startswith("."):
            raise _fail(path, f"variants.{name}: a variant name is a folder name; valid: no '/' and no leading '.'")
    grid = _mapping(path, "grid", raw.get("grid"))
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise _fail(path, f"grid.{key} must be a non-empty list of values, got {values!r}")
    base = {str(k): dict(v or {}) for k, v in named.items()} or {"": {}}
    if not grid:
        return base if named else {}
    combined = {}
    for name, settings in base.items():
        for values in itertools.product(*grid.values()):
            parts = [_grid_name(k, v) for k, v in zip(grid, values, strict=True)]
            label = ",".join(filter(None, [name, *parts])).replace("/", "_")
            combined[label] = {**settings, **dict(zip(grid, values, strict=True))}
    return combined


def _search(path: str, raw: Any) -> SearchSpec:
    raw = _mapping(path, "search", raw)
    unknown = sorted(set(raw) - set(SEARCH_KEYS))
    if unknown:
        raise _fail(path, f"unknown key search.{unknown[0]}; valid keys: {', '.join(SEARCH_KEYS)}")
    n_trials = raw.get("n_trials")
    if not isinstance(n_trials, int) or isinstance(n_trials, bool) or n_trials < 1:
        raise _fail(path, f"search.n_trials must be a positive integer, got {n_trials!r}")
    search = SearchSpec(n_trials=n_trials, sampler=str(raw.get("sampler", "tpe")),
                        pruner=str(raw.get("pruner", "median")), monitor=str(raw.get("monitor", "val/acc")))
    if search.sampler not in SAMPLERS:
        raise _fail(path, f"search.sampler {search.sampler!r} is unknown; valid values: {', '.join(SAMPLERS)}")
    if search.pruner not in PRUNERS:
        raise _fail(path, f"search.pruner {search.pruner!r} is unknown; valid values: {', '.join(PRUNERS)}")
    space = _mapping(path, "search.space", raw.get("space"))
    if not space:
        raise _fail(path, "search.space is empty; valid: dotted settings with {type: float|int|categorical, ...}")
    for key, dist in space.items():
        where = f"search.space.{key}"
        if not isinstance(dist, dict) or dist.get("type") not in SPACE_TYPES:
            raise _fail(path, f"{where} needs type: one of {', '.join(SPACE_TYPES)}")
        if dist["type"] == "categorical":
            if not isinstance(dist.get("choices"), list) or not dist["choices"]:
                raise _fail(path, f"{where}: categorical needs choices: a non-empty list")
            extra = sorted(set(dist) - {"type", "choices"})
        else:
            low, high = dist.get("low"), dist.get("high")
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) or low >= high:
                raise _fail(path, f"{where}: {dist['type']} needs numbers low < high, got low {low!r}, high {high!r}")
            if dist.get("log") and low <= 0:
                raise _fail(path, f"{where}: log: true needs low > 0, got {low!r}")
            extra = sorted(set(dist) - {"type", "low", "high", "log", "step"})
        if extra:
            raise _fail(path, f"{where}: unknown key {extra[0]!r}")
    search.space = {str(k): dict(v) for k, v in space.items()}
    return search


def load_spec(path: str) -> SweepSpec:
    """Reads and checks ``path`` (keys, types, variants, objective); the settings themselves are checked against
    the fit parser by :func:`spikegrad.sweep.trial_args.check_settings`."""
    if not os.path.isfile(path):
        raise UsageError(f"sweep spec {path}: no such file; valid values: a YAML sweep spec (docs/sweeps.md)")
    try:
        with open(path) as f:
            raw = yaml.safe_load(f)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise _fail(path, f"not valid YAML{f' at line {mark.line + 1}' if mark else ''}") from None
    if not isinstance(raw, dict):
        raise _fail(path, "must be a mapping with the keys config, seeds, objective and variants/grid or search")
    unknown = sorted(set(raw) - set(TOP_KEYS))
    if unknown:
        raise _fail(path, f"unknown key {unknown[0]!r}; valid keys: {', '.join(TOP_KEYS)}")
    config = raw.get("config")
    if not isinstance(config, str) or not os.path.isfile(config):
        raise _fail(path, f"config {config!r} is not a file; valid values: a spikegrad fit config (YAML)")
    seeds = raw.get("seeds", [0])
    if (not isinstance(seeds, list) or not seeds or len(set(seeds)) != len(seeds)
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)):
        raise _fail(path, f"seeds must be a non-empty list of distinct integers, got {seeds!r}")
    objective = raw.get("objective", "best_val_acc")
    if objective not in METRICS:
        raise _fail(path, f"objective {objective!r} is not a metric; valid values: {', '.join(METRICS)}")
    direction = raw.get("direction", "minimize" if objective in ("final_train_loss", "sec_per_epoch") else "maximize")
    if direction not in DIRECTIONS:
        raise _fail(path, f"direction {direction!r}; valid values: {', '.join(DIRECTIONS)}")
    name = str(raw.get("name") or os.path.splitext(os.path.basename(path))[0])
    if "/" in name or name.startswith("."):
        raise _fail(path, f"name {name!r} is a folder name; valid: no '/' and no leading '.'")
    spec = SweepSpec(path=path, name=name, config=config, seeds=list(seeds), objective=objective,
                     direction=direction, overrides=dict(_mapping(path, "overrides", raw.get("overrides"))),
                     log_root=str(raw.get("log_root", "logs")))
    for key in ("heartbeat_interval", "grace_period", "max_retries"):
        if key in raw:
            value = raw[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "max_retries" else 1):
                raise _fail(path, f"{key} must be a positive integer (seconds or count), got {value!r}")
            setattr(spec, key, value)
    if spec.grace_period <= spec.heartbeat_interval:
        raise _fail(path, f"grace_period ({spec.grace_period}) must exceed heartbeat_interval "
                          f"({spec.heartbeat_interval})")
    if "search" in raw:
        if raw.get("variants") or raw.get("grid"):
            raise _fail(path, "search replaces variants and grid; valid: either search, or variants and/or grid")
        spec.search = _search(path, raw["search"])
        return spec
    spec.variants = _variants(path, raw)
    if not spec.variants:
        raise _fail(path, "the grid is empty; valid: variants (name -> settings) and/or grid (setting -> values), "
                          "or search")
    reference = raw.get("reference")
    if reference is not None and reference not in spec.variants:
        raise _fail(path, f"reference {reference!r} is not a variant; valid values: {', '.join(spec.variants)}")
    spec.reference = reference or next(iter(spec.variants))
    return spec
