"""What a detector is to the rest of aigid: one `MethodSpec` per method, in the method's own package.

The sweeps (through `trainables`) and `aigid train` read only the spec: its config class and
presets, the synthetic layout its offline demo runs on, the data check that runs before any
trial, what a sweep prepares once and shares with every trial, and the trainer it builds.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, Protocol, Sequence, runtime_checkable

from aigid.data.index import DatasetIndex
from aigid.features import SharedFeatures
from aigid.metrics import PaperTestSets
from aigid.selection import Selection


@runtime_checkable
class Trainer(Protocol):
    """One training run, built as `trainer_cls(config, index, shared, device=..., num_workers=...)`.

    `run()` yields flat metric dicts with at least `epoch`, `step` and `epoch_end`; between two
    yields `state_dict()` is a complete checkpoint, so a run restored with `load_state_dict()`
    continues where it stopped (the Ray adapter checkpoints at every `epoch_end`). It holds tensors
    and plain containers only (RNG states as tensors): checkpoints are read weights-only (aigid.checkpoints).
    A trainer whose state exists after its last epoch only (a RINE stack member replaying results,
    aigid/methods/rine/members.py) says so with an attribute `checkpoints_mid_run = False`.
    """

    def run(self) -> Iterator[dict]: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


class OneModelCheckpoints:
    """`state_dict` / `load_state_dict` for a trainer of one `model` with one `optimizer`, a batch-order
    `generator`, `epoch`, `step` and `config` (RINE's and UnivFD's heads on cached features)."""

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state(), "epoch": self.epoch, "step": self.step,
                "config": self.config.to_flat()}

    def load_state_dict(self, state: dict) -> None:
        self.config.check_checkpoint(state)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.epoch, self.step = state["epoch"], state["step"]


@dataclass(frozen=True)
class PrepareContext:
    """Where and how a sweep's once-per-sweep preparation runs (a Ray task, or `aigid train` in-process)."""

    cache_dir: str
    device: str = "cpu"
    num_workers: int = 0
    log: Callable[[str], None] = print
    # A folder of this sweep on storage every node mounts, where its trials may share work (RINE's stacks);
    # None outside a plain grid sweep: a searcher picks trials nobody can know ahead, ASHA stops them, and
    # `aigid train` runs one.
    scratch: str | None = None
    # Where the sweep's trials run ("cuda" when they get GPUs), which may not be where the preparation runs.
    trial_device: str = "cpu"


@dataclass(frozen=True)
class MethodSpec:
    """Everything a sweep or a single run needs to know about one detector."""

    name: str
    summary: str  # one line, for `aigid train --help`
    config_cls: type  # a FlatConfig dataclass with the paper's defaults
    trainer_cls: Callable[..., Trainer]
    layout: str  # the synthetic stand-in's layout (the paper's main dataset)
    test_sets: PaperTestSets  # per dataset layout, the test sets the paper's tables average (test/mean/*)
    check_data: Callable  # (resolved config, index) -> None; raises DataError before any trial
    offline: Mapping = field(default_factory=dict)  # overrides on the synthetic stand-in (tiny models, small data)
    smoke: Mapping = field(default_factory=dict)  # a further cut for a minutes-long check
    # (index, resolved configs, PrepareContext) -> {name: object}: what every trial of a sweep shares
    # (frozen-backbone features, decoded test images), computed once and handed to each trainer.
    prepare: Callable[[DatasetIndex, Sequence, PrepareContext], dict] | None = None
    # The paper's rule for the best trial (reported as `score`, which Tune and every table rank by).
    selection: Selection = Selection(source="the paper's tables: Avg. ACC over the test subsets")
    # (config, index, shared, device=...) -> a trainer for a trial that trains together with others (RINE's ξ
    # stacks, grouped by its `prepare`), or None: it trains alone with `trainer_cls`.
    stacked: Callable[..., Trainer | None] | None = None
    # (resolved configs) -> their positions in the order a grid sweep starts them; None: the plan's order.
    # RINE starts one member of every stack first, so that trials running at once train different stacks.
    start_order: Callable[[Sequence], list[int]] | None = None
    # False where the score measures the method's detector only in its last epochs (GenDet's classifier
    # comes last): ASHA would rank trials on something else, so it is refused.
    early_stopping: bool = True
    # Where the paper leaves its evaluation protocol unstated, the choice made: {what: choice (why)},
    # printed under every table of the method and by `aigid config`.
    choices: Mapping[str, str] = field(default_factory=dict)
    # Evaluation only (`aigid eval`, `sweeps/compare.py`): (config, state, index, PrepareContext) -> metrics.
    # `state` is a trainer's `state_dict()` as `aigid.checkpoints.load` reads it (or what `released` makes
    # of an authors' file); its weights are loaded whole (strict) or a ConfigError names the first key
    # missing or misshapen: a half-loaded model is never scored. No training image is read. The metrics are
    # the `test/<subset>/...` and `test/mean/...` keys the trainer's evaluation reports, equal to them on the
    # same config and data; `config.test_perturb` is applied to the test images.
    evaluate: Callable[..., dict] | None = None
    # The authors' released file at a path -> (flat config overrides, state for `evaluate`), read weights-only.
    released: Callable[..., tuple[dict, dict]] | None = None

    @property
    def uses_feature_store(self) -> bool:
        """The preparation is a frozen-backbone pass (worth a GPU) into `--cache-dir`, which trials map."""
        return isinstance(self.prepare, SharedFeatures)

    def resolve(self, flat: dict, index: DatasetIndex):
        """The config a run uses on `index`: overrides applied, per-dataset defaults filled, data checked."""
        config = self.config_cls.from_flat(flat).for_layout(index.layout)
        self.check_data(config, index)
        return config

    def trainer(self, config, index: DatasetIndex, shared: Mapping, *, device="cpu", num_workers: int = 0) -> Trainer:
        """`trainer_cls`'s, or the `stacked` trainer of a trial the preparation grouped with others."""
        member = self.stacked(config, index, shared, device=device) if self.stacked else None
        return member or self.trainer_cls(config, index, shared, device=device, num_workers=num_workers)
