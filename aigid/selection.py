"""How a sweep names its best trial: the rule of the method's paper, written once in its spec.

A trial's `score` is the rule applied to its epoch-end metrics so far. The Ray trainable
reports it with every result, so Tune's metric (ASHA, Optuna, `get_best_result`), the table,
the closing line and `best_config.json` all rank trials by the same number.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

SCORE = "score"  # the reported metric every sweep ranks by (Tune's TuneConfig metric)


@dataclass(frozen=True)
class Selection:
    """The sum of `keys`, each the mean over the trial's last epochs (`stability_epochs` of them,
    when `over_last_epochs`) or its value after the last epoch; higher is better."""

    keys: tuple[str, ...] = ("test/mean/acc",)
    over_last_epochs: bool = False
    source: str = ""  # the paper's section that states the rule
    mode: str = "max"  # Tune's mode for SCORE

    def keys_for(self, config: dict) -> tuple[str, ...]:
        """The metrics summed for a trial of `config` (a method may choose by config; see RINE)."""
        return self.keys

    def window(self, config: dict) -> int:
        return int(config.get("stability_epochs", 5)) if self.over_last_epochs else 1

    def score(self, epochs: Sequence[dict], config: dict) -> float:
        """The rule over `epochs` (epoch-end metric dicts, oldest first); NaN before any has them."""
        recent = list(epochs)[-self.window(config):]
        total = 0.0
        for key in self.keys_for(config):
            values = [e[key] for e in recent if key in e]
            if not values:
                return math.nan
            total += sum(values) / len(values)
        return total

    def label(self, config: dict | None = None) -> str:
        """The score's name on a figure's axis: 'test/mean/acc (%)', 'val/acc + val/ap (%)'."""
        return " + ".join(self.keys_for(config or {})) + " (%)"

    def chance(self, config: dict | None = None) -> float:
        """The score of a detector that guesses: 0.5 for each ACC or AP summed."""
        return 0.5 * len(self.keys_for(config or {}))

    def describe(self, config: dict | None = None) -> str:
        """The rule in words, e.g. 'mean test/mean/acc over the last 5 epochs (LoL §4.3)'."""
        config = config or {}
        summed = " + ".join(self.keys_for(config))
        when = f"mean {summed} over the last {self.window(config)} epochs" if self.over_last_epochs \
            else f"{summed} after the last epoch"
        return f"{when} ({self.source})" if self.source else when
