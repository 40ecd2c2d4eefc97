"""RINE trials that differ only in ξ (or τ) trained as one: the §4.2 ξ axis in one process, one kernel per step.

At one (backbone, classes, q, d', seed) point of the grid, the trials of every ξ read the same rows in the
same batch order and draw the same dropout masks (all seeded by `seed`); only eq. 5's weight on SupCon
differs. `HeadStack` stacks their heads' parameters along a leading axis
(`torch.func.stack_module_state`) and runs forward and backward of all of them at once with
`torch.func.vmap`: the batch is gathered once, each step's matmuls are G heads wide instead of one
(what a GPU needs where one head's step is too small to fill it: d' 128-256 is launch-bound), and the
val and test rows are scored once for all members.
Dropout is vmapped with `randomness="same"`, so a member draws the masks its own trial draws; Adam is
elementwise, so one Adam over the stacks is each member's Adam. A member's numbers are therefore its own
trial's, up to the float rounding of batched matmuls (tests/test_rine.py; over a long run Adam's
normalised steps amplify that rounding as they would any change of summation order: benchmarks/RESULTS.md),
and after every epoch
each member's trainer holds its weights and optimizer state: its `state_dict()` is a checkpoint of the
single trial, which `RINETrainer` resumes and `aigid eval` scores.

In a grid sweep each member stays its own Tune trial and MLflow run, and the stack is trained once by
whichever member starts first (aigid/methods/rine/members.py).
"""
from __future__ import annotations

import copy
from itertools import zip_longest
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch
from torch.func import functional_call, stack_module_state, vmap

from aigid.data.index import DatasetIndex
from aigid.methods.rine.config import RINEConfig
from aigid.methods.rine.model import rine_loss
from aigid.methods.rine.scoring import head_input
from aigid.methods.rine.trainer import RINETrainer
from aigid.resident import resident_rows

STACKED = ("xi", "temperature", "paper_config")  # what members may differ in (paper_config only via xi, q, d')


def stack_key(config: RINEConfig) -> tuple:
    """Configs with equal keys train as one stack: every field but ξ and τ agrees."""
    return tuple(sorted((k, repr(v)) for k, v in config.to_flat().items() if k not in STACKED))


def _positions(configs: Sequence[RINEConfig]) -> list[list[int]]:
    groups: dict[tuple, list[int]] = {}
    for i, config in enumerate(configs):
        groups.setdefault(stack_key(config), []).append(i)
    return list(groups.values())


def stacks(configs: Sequence[RINEConfig]) -> list[list[RINEConfig]]:
    """`configs` grouped into stacks (members in the given order; stacks in order of first member)."""
    return [[configs[i] for i in group] for group in _positions(configs)]


def leaders_first(configs: Sequence[RINEConfig]) -> list[int]:
    """The order a grid sweep starts `configs` in: every stack's first member, then every stack's second,
    and so on, so that trials running at once train different stacks instead of waiting on one."""
    return [i for rank in zip_longest(*_positions(configs)) for i in rank if i is not None]


class HeadStack:
    """The trials of `configs` (one `stack_key`) trained together; `run()` yields each epoch's results,
    one dict per member, equal to what each member's `RINETrainer.run()` yields alone."""

    def __init__(self, configs: Sequence[RINEConfig], index: DatasetIndex, shared: Mapping, *, device="cpu"):
        keys = {stack_key(c) for c in configs}
        if len(keys) != 1:
            raise ValueError("a HeadStack's configs may differ in xi and temperature only; group them with stacks()")
        self.members = [RINETrainer(c, index, shared, device=device) for c in configs]
        first = self.members[0]
        self.config, self.device = first.config, first.device
        self.params, _ = stack_module_state([m.model for m in self.members])  # RINEHead has no buffers
        self.base = copy.deepcopy(first.model).to("meta")  # the architecture; weights come from `params`
        self.optimizer = torch.optim.Adam(self.params.values(), lr=self.config.lr)
        self.xi = torch.tensor([m.xi for m in self.members], device=self.device)
        self.temperature = torch.tensor([m.config.temperature for m in self.members], device=self.device)
        self.epoch = 0

    def _losses(self, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(G,) eq. 5 losses of the members on one batch; dropout masks as each member's trial draws them."""
        def loss(params, xi, temperature):
            logits, z = functional_call(self.base, params, (tokens,))
            return rine_loss(logits, z, labels, xi, temperature)

        return vmap(loss, randomness="same")(self.params, self.xi, self.temperature)

    def train_epoch(self) -> list[float]:
        """One pass over this epoch's view for every member; each member's mean batch loss."""
        config, first = self.config, self.members[0]
        tokens = resident_rows(first.views[self.epoch], config.output, first.train.rows, self.device)
        for group in self.optimizer.param_groups:
            group["lr"] = config.lr_at(self.epoch)
        torch.manual_seed(config.seed * 100_003 + self.epoch)  # as RINETrainer.train_epoch: the same dropout masks
        self.base.train()
        # every member draws its order (the same: one seed) so that its generator's state is its own trial's
        order = [torch.randperm(len(m.train.rows), generator=m.generator) for m in self.members][0].to(self.device)
        losses = []
        for batch in order.split(config.batch_size):
            loss = self._losses(head_input(config, tokens[batch]), first.train_labels[batch])
            self.optimizer.zero_grad(set_to_none=True)
            loss.sum().backward()  # members share no parameter: each gets its own loss's gradient
            self.optimizer.step()
            losses.append(loss.detach())
        self._unstack(steps=len(losses))
        return np.mean(torch.stack(losses).cpu().numpy().astype(np.float64), axis=0).tolist()  # one sync

    def _unstack(self, steps: int) -> None:
        """Each member's trainer takes its slice: weights, Adam state, epoch and step count."""
        stacked_state = self.optimizer.state
        for g, member in enumerate(self.members):
            named = dict(member.model.named_parameters())
            with torch.no_grad():
                for name, stacked in self.params.items():
                    named[name].copy_(stacked[g])
            member.optimizer.state.clear()
            for name, stacked in self.params.items():
                member.optimizer.state[named[name]] = {
                    k: v.clone() if k == "step" else v[g].clone() for k, v in stacked_state[stacked].items()}
            for group in member.optimizer.param_groups:
                group["lr"] = self.optimizer.param_groups[0]["lr"]
            member.epoch, member.step = member.epoch + 1, member.step + steps
        self.epoch += 1

    def run(self) -> Iterator[list[dict]]:
        while self.epoch < self.config.epochs:
            lr = self.config.lr_at(self.epoch)
            losses = self.train_epoch()
            evaluations = self.evaluate()
            yield [m.report(loss, lr, e) for m, loss, e in zip(self.members, losses, evaluations)]

    def evaluate(self) -> list[dict]:
        """Each member's `RINETrainer.evaluate()`, the val and test rows scored once for all of them."""
        self.base.eval()

        def logits_of(tokens):
            return vmap(lambda params: functional_call(self.base, params, (tokens,))[0])(self.params)

        return self.members[0].held_out.summaries(logits_of)
