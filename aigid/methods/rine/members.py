"""A `HeadStack` in a grid sweep: each member stays its own Tune trial and MLflow run, the stack is trained once.

The sweep's preparation (`FeaturesAndStacks`) groups the grid's configs into stacks (`stack.stacks`) besides
computing their features, and the grid starts one member of every stack first (`stack.leaders_first`).
In the sweep, a member's trial (`StackMember`) takes the stack's lock in the sweep's scratch folder on the
shared `--cache-dir`; the first to get it trains the whole stack, reporting its own results (and
checkpoints) as they come, and stores every member's epoch results and last state as one sealed entry
(checksummed, renamed into place whole). Every other member reports its own results from the entry epoch
by epoch, as its trial would have alone (to float32 rounding per step, tests/test_rine.py), with its last state as
its checkpoint. Siblings that start meanwhile wait on the lock and find the entry. A member killed while
training leaves no entry; the kernel drops its lock (flock; NFS maps it to byte-range locks), and the next
member to take it trains the stack again. A member that cannot get the lock within AIGID_STACK_WAIT_S
(an NFSv3 lock of a node that died stays held until that node reboots) or finds no file locks on the
storage trains alone, as it would outside a stack: slower, never wrong. Nothing is unpickled: results are
JSON, states are read weights-only.

Only a plain grid sweep stacks (`PrepareContext.scratch`): a searcher (Optuna) picks trials nobody can
know ahead, and under ASHA a stopped trainer would leave its siblings to train the stack again (what
stacking would cost ASHA otherwise: benchmarks/RESULTS.md, "RINE heads stacked"). And only on a GPU by
default (`stacking`).
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import torch

from aigid import checkpoints
from aigid.cache import FULL_DISK, damage, partial_folder, remove_dead_partials, seal
from aigid.data.index import DatasetIndex
from aigid.errors import ConfigError, StorageError
from aigid.features import SharedFeatures
from aigid.methods.rine.config import RINEConfig
from aigid.methods.rine.stack import HeadStack, stack_key, stacks
from aigid.methods.rine.trainer import RINETrainer
from aigid.methods.rine.views import scored_view_names, train_view_name, val_view_name

RESULTS_FILE = "results.json"  # [member][epoch] -> the result its trial reports
# How long a member waits for the sibling training its stack before it trains alone; minutes at the paper's
# scale on a GPU, so an hour is a stuck or dead holder (an NFSv3 lock outlives a dead node until it reboots).
WAIT_S = float(os.environ.get("AIGID_STACK_WAIT_S", 3600))
NOTE_EVERY_S = 60.0  # a waiting member says so this often


def state_file(position: int) -> str:
    """The entry's file of the last state of the stack's member at `position`."""
    return f"member-{position}.pt"


def stacking(device: str) -> bool:
    """Whether a grid sweep whose trials run on `device` stacks: on a GPU, where one head's step is a few
    kernel launches too small to fill it (AIGID_STACK=auto, the default). On a CPU a stacked step is not
    reliably cheaper (0.74x to 2.5x by shape, benchmarks/RESULTS.md), so it is off there unless
    AIGID_STACK=1; AIGID_STACK=0 turns it off."""
    choice = os.environ.get("AIGID_STACK", "auto")
    if choice not in ("auto", "0", "1"):
        raise ConfigError(f"AIGID_STACK={choice!r}: use auto (stack on a GPU), 1 (always) or 0 (never)")
    return choice == "1" or (choice == "auto" and torch.device(device).type == "cuda")


class FeaturesAndStacks(SharedFeatures):
    """RINE's preparation: the grid's frozen features (`SharedFeatures`) and, in a grid sweep that stacks
    (`stacking`), its stacks: {"stacks": {stack_key: [member flat configs]}, "scratch": folder} beside them."""

    def __call__(self, index, configs, context) -> dict:
        stacked = context.scratch and stacking(context.trial_device)  # a bad AIGID_STACK fails before the pass
        shared = super().__call__(index, configs, context)
        groups = [group for group in stacks(configs) if len(group) > 1] if stacked else []
        if not groups:
            return shared
        context.log(f"[aigid] {sum(map(len, groups))} of the {len(configs)} trials train in {len(groups)} stack(s) "
                    "(the ξ/τ values of one grid point at once, each still its own trial and run)")
        return {**shared, "scratch": context.scratch,
                "stacks": {stack_key(group[0]): [c.to_flat() for c in group] for group in groups}}


def stack_member(config: RINEConfig, index: DatasetIndex, shared: Mapping, *, device="cpu") -> "StackMember | None":
    """RINE's `MethodSpec.stacked`: the trainer of a member of one of the sweep's stacks, None for any other
    config (it trains alone)."""
    members = shared.get("stacks", {}).get(stack_key(config))
    if members and config.to_flat() in members:
        return StackMember(config, index, shared, members, device=device)
    return None


class StackMember:
    """One stack member's trial: `run()` trains the stack under its lock if no sibling has stored it (yielding
    this member's results as they come), else yields them from the stored entry; `state_dict()` is its checkpoint."""

    def __init__(self, config: RINEConfig, index: DatasetIndex, shared: Mapping, members: list[dict], *, device):
        self.config, self.index, self.shared, self.device = config, index, shared, device
        self.members = members
        self.position = members.index(config.to_flat())
        # named by its members and the store entries of the features they read: a run resumed on other data
        # (or other weights) trains its stacks again instead of replaying the old results
        views = [*(train_view_name(config, v) for v in range(config.epochs)), val_view_name(config),
                 *scored_view_names(config)]
        read = [shared["features"][view].location for view in views]
        name = hashlib.sha256(json.dumps([members, read], sort_keys=True, default=repr).encode()).hexdigest()[:20]
        self.entry = Path(shared["scratch"]) / "rine-stacks" / name
        self.epoch = 0
        self.restored: dict | None = None  # the checkpoint this trial was restored from
        self.stack: HeadStack | None = None  # while this trial trains it
        self.alone: RINETrainer | None = None  # when it could not wait for the stack (`_take`)

    @property
    def trains_here(self) -> bool:
        """Whether this trial trains (the stack, or itself alone) rather than replays."""
        return self.stack is not None or self.alone is not None

    @property
    def checkpoints_mid_run(self) -> bool:
        """While training only: the entry holds each member's last state, not one per epoch (that would be
        GBs at d' 1024), so a replaying member checkpoints at its last epoch."""
        return self.trains_here

    def run(self) -> Iterator[dict]:
        results = self._load(remove=False)  # a damaged entry is removed under the lock only
        if results is None:
            self.entry.parent.mkdir(parents=True, exist_ok=True)
            with open(self.entry.with_suffix(".lock"), "a") as lock:
                if not self._take(lock):
                    yield from self._train_alone()
                    return
                results = self._load(remove=True)
                if results is None:
                    remove_dead_partials(self.entry.parent)  # left by a member of this host killed while storing
                    yield from self._train()
                    return
        yield from self._own(results[self.position])

    def state_dict(self) -> dict:
        if self.alone is not None:
            return self.alone.state_dict()
        if self.stack is not None:
            return self.stack.members[self.position].state_dict()  # a single trial's checkpoint (stack.py)
        if self.epoch < self.config.epochs:
            raise RuntimeError("a replaying stack member holds its last epoch's state only (checkpoints_mid_run)")
        return checkpoints.load(self.entry / state_file(self.position),
                                fix=f"delete {self.entry} (the stack is trained again)")

    def load_state_dict(self, state: dict) -> None:
        """A restored trial goes on after its checkpoint's epoch (the stack is trained whole if not stored)."""
        self.config.check_checkpoint(state)
        self.epoch, self.restored = state["epoch"], state

    def _own(self, results: Iterable[dict]) -> Iterator[dict]:
        """This trial's `results` after the epoch it stands at (a restored trial reports only what its
        checkpoint lacks), with the stack's size and whether this trial trained it (alone: a stack of 1)."""
        for result in results:
            if result["epoch"] > self.epoch:
                self.epoch = result["epoch"]
                yield {**result, "stack/members": 1 if self.alone else len(self.members),
                       "stack/trained_here": int(self.trains_here)}

    def _take(self, lock) -> bool:
        """Wait for the stack's lock (a sibling holds it while it trains the stack; a dead one's is gone): True
        once held; False after WAIT_S, or at once where the storage has no file locks."""
        start = noted = time.monotonic()
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                pass
            except OSError as error:  # ENOLCK, EOPNOTSUPP: e.g. a Lustre mount without flock
                print(f"[aigid] no file locks on {self.entry.parent} ({error.strerror}): this stack member "
                      "trains alone", flush=True)
                return False
            waited = time.monotonic() - start
            if waited >= WAIT_S:
                print(f"[aigid] stack {self.entry.name} still locked after {waited:.0f} s (AIGID_STACK_WAIT_S): "
                      "this member trains alone", flush=True)
                return False
            if time.monotonic() - noted >= NOTE_EVERY_S:
                print(f"[aigid] waiting {waited:.0f} s for the sibling trial training stack {self.entry.name}",
                      flush=True)
                noted = time.monotonic()
            time.sleep(1.0)

    def _load(self, *, remove: bool) -> list[list[dict]] | None:
        """The entry's results ([member][epoch]) if the checksums of what this member reads (the results and its
        own state; not its siblings' states, each GBs at d' 1024) hold. A damaged entry is removed (and trained
        again) if `remove`: only under the lock, where no sibling can be storing a sound one."""
        if not self.entry.is_dir():
            return None
        problem = damage(self.entry, [RESULTS_FILE, state_file(self.position)])
        if problem is None:
            return json.loads((self.entry / RESULTS_FILE).read_text())
        if remove:
            print(f"[aigid] stack entry {self.entry} is damaged ({problem}): training the stack again", flush=True)
            shutil.rmtree(self.entry, ignore_errors=True)
        return None

    def _train_alone(self) -> Iterator[dict]:
        """This member as its own trial, outside the stack (resumed from its checkpoint where it has one)."""
        self.alone = RINETrainer(self.config, self.index, self.shared, device=self.device)
        if self.restored is not None:  # every member's checkpoint is a single trial's (stack.py)
            self.alone.load_state_dict(self.restored)
        yield from self._own(self.alone.run())

    def _train(self) -> Iterator[dict]:
        """Train the stack, yielding this member's results; every member's are stored before its last epoch's."""
        configs = [type(self.config).from_flat(flat) for flat in self.members]
        self.stack = HeadStack(configs, self.index, self.shared, device=self.device)
        epochs = []
        for results in self.stack.run():
            epochs.append(results)
            if len(epochs) == self.config.epochs:
                self._store(epochs)
            yield from self._own([results[self.position]])

    def _store(self, epochs: list[list[dict]]) -> None:
        """Write every member's results and last state into a partial folder, seal it, rename it into place
        (where a sibling stored the stack meanwhile, its sound entry stands: a lock that did not hold across
        nodes, or a stale directory cache that hid the entry)."""
        partial = None
        try:
            partial = partial_folder(self.entry.parent, self.entry.name)
            (partial / RESULTS_FILE).write_text(json.dumps([list(member) for member in zip(*epochs)]))
            for g, member in enumerate(self.stack.members):
                checkpoints.save(member.state_dict(), partial / state_file(g))
            seal(partial)
            try:
                partial.rename(self.entry)
            except OSError as error:
                if error.errno not in (errno.ENOTEMPTY, errno.EEXIST) or self._load(remove=False) is None:
                    raise
        except OSError as error:
            if error.errno not in FULL_DISK:
                raise
            raise StorageError(f"--cache-dir {self.entry.parent} is full: a RINE stack's results and states did not "
                               "fit; free space there and --resume the run (finished trials are kept)") from None
        finally:
            if partial is not None:
                shutil.rmtree(partial, ignore_errors=True)
