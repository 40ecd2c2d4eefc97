"""RINE's head, loss, config and trainer on cached features of a real tiny open_clip ViT."""
import concurrent.futures
import dataclasses
import fcntl
import math
import shutil
import time

import numpy as np
import pytest
import torch

from aigid.data.index import DataError
from aigid.data.layouts import scan
from aigid.data.synthetic import make_synthetic
from aigid.features import extract
from aigid.methods import RINE
from aigid.methods.rine import (
    OFFLINE_OVERRIDES, RINEConfig, RINEHead, RINETrainer, check_data, feature_requests, supcon_loss,
    trainable_parameters,
)
from aigid.methods.rine import members
from aigid.methods.rine.members import RESULTS_FILE, StackMember, stacking, state_file
from aigid.methods.rine.scoring import logits_of
from aigid.methods.rine.stack import HeadStack, leaders_first, stack_key, stacks


@pytest.mark.parametrize("q, proj_dim, millions", [(4, 1024, 10.52), (4, 128, 0.28), (2, 1024, 6.32)])
def test_parameter_formula_gives_table_1(q, proj_dim, millions):
    assert round(trainable_parameters(24, 1024, q, proj_dim) / 1e6, 2) == millions  # ViT-L/14: n = 24, d = 1024


@pytest.mark.parametrize("q, proj_dim, tie", [(1, 8, True), (2, 16, True), (4, 8, False)])
def test_head_has_the_formulas_parameter_count(q, proj_dim, tie):
    head = RINEHead(4, 64, q, proj_dim, tie=tie)
    assert sum(p.numel() for p in head.parameters()) == trainable_parameters(4, 64, q, proj_dim, tie=tie)


def test_tie_weights_sum_to_one_over_blocks_and_weight_the_projections():
    head = RINEHead(5, 16, 1, 8).eval()
    weights = head.importance()
    assert weights.shape == (5, 8) and torch.allclose(weights.sum(0), torch.ones(8)) and (weights > 0).all()
    tokens = torch.randn(3, 5, 16)
    logits, z = head(tokens)
    assert logits.shape == (3,) and torch.allclose(z, head.q2((weights * head.q1(tokens)).sum(1)))


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_supcon_matches_a_hand_computed_case(temperature):
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    labels = torch.tensor([0.0, 1.0, 0.0])
    # anchors 0 and 2 each have one positive (each other), anchor 1 none (contributes 0)
    s = 1 / temperature
    expected = 2 / 3 * (math.log(1 + math.exp(s)) - s)
    assert supcon_loss(z, labels, temperature).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("flat, message", [
    ({"q": 0}, "q must be an integer >= 1"), ({"proj_dim": 0}, "proj_dim must be an integer >= 1"),
    ({"xi": -0.1}, "xi must be >= 0"), ({"classes": 3}, "classes must be one of [1, 2, 4]"),
    ({"without": "mlp"}, "without must be one of"), ({"tap": "ln_1"}, "tap must be one of"),
    ({"train_fraction": 0}, "train_fraction must be in (0, 1]"), ({"qq": 1}, "unknown RINEConfig option"),
])
def test_bad_config_names_the_field(flat, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        RINEConfig.from_flat(flat)


def test_paper_config_sets_the_best_of_table_1():
    config = RINEConfig(classes=2, paper_config=1)
    assert (config.xi, config.q, config.proj_dim) == (0.2, 4, 128)
    assert [RINEConfig(epochs=15).lr_at(e) for e in (0, 4, 5, 9, 10, 14)] == [1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5]


@pytest.fixture(scope="module")
def ufd(tmp_path_factory):
    return scan(make_synthetic(tmp_path_factory.mktemp("ufd") / "synthetic", layout="ufd", n_train=6, n_test=3))


@pytest.fixture(scope="module")
def cached(ufd, tmp_path_factory):
    configs = [RINEConfig.from_flat({**OFFLINE_OVERRIDES, "epochs": 2, "proj_dim": 8, "batch_size": 8, **extra})
               for extra in ({}, {"classes": 1, "without": "intermediate"}, {"without": "tie"})]
    requests = feature_requests(configs, ufd)
    tables, stats = extract(list(requests.values()), tmp_path_factory.mktemp("cache"), log=None)
    assert stats["computed"] == 4  # 2 training views + 1 val view + 1 test view, shared by all three configs
    return configs, dict(zip(requests, tables))


def test_trainer_reports_every_test_set_and_val_each_epoch(ufd, cached):
    configs, features = cached
    for config in configs:
        results = list(RINETrainer(config, ufd, {"features": features}).run())
        assert [r["epoch"] for r in results] == [1, 2] and all(r["epoch_end"] for r in results)
        assert {"train/loss", "val/acc", "val/ap", "test/mean/acc", "test/progan/ap", "test/deepfake/acc"} <= set(results[-1])
        assert results[0]["lr"] == config.lr


def test_a_restored_trainer_continues_exactly(ufd, cached, from_file):
    config, features = cached[0][0], cached[1]
    straight = list(RINETrainer(config, ufd, {"features": features}).run())
    first = RINETrainer(config, ufd, {"features": features})
    next(first.run())
    resumed = RINETrainer(config, ufd, {"features": features})
    resumed.load_state_dict(from_file(first.state_dict()))
    assert list(resumed.run())[-1] == straight[-1]


def test_trials_of_one_process_share_the_rows_loaded_on_the_device(ufd, cached):
    """A reused trial process (Tune's reuse_actors) reads the val + test rows from the store once."""
    configs, features = cached
    first, other = (RINETrainer(c, ufd, {"features": features}) for c in (configs[0], configs[2]))
    assert other.held_out.test_tokens[0] is first.held_out.test_tokens[0]
    assert other.held_out.val_tokens[0] is first.held_out.val_tokens[0]
    assert other.held_out.test_tokens[0].dtype == torch.float16  # the stored dtype, widened per batch


def test_the_first_epochs_of_a_longer_run_are_the_shorter_run(ufd, cached):
    """Why rine_training reads §5.4's epochs 1-10 from one 15-epoch trial (and §5.5's 100 % column
    from its epoch 1): the lr schedule depends on the absolute epoch, dropout and batch order are
    seeded per epoch, and epoch k reads cached view k, so nothing in epoch k depends on the total."""
    two_epochs, features = cached[0][0], cached[1]
    one_epoch = RINEConfig.from_flat({**two_epochs.to_flat(), "epochs": 1, "lr_decay_epochs": (2,)})
    longer = RINEConfig.from_flat({**two_epochs.to_flat(), "lr_decay_epochs": (2,)})
    first_of_two = list(RINETrainer(longer, ufd, {"features": features}).run())[0]
    (only,) = RINETrainer(one_epoch, ufd, {"features": features}).run()
    assert only == first_of_two
    assert longer.lr_at(1) == longer.lr / 10  # the decay did apply in the longer run's second epoch


RANKED = ("acc", "/ap")  # ACC and AP: steps of the scores' order, which rounding flips where two scores tie


def same_results(stacked: dict, alone: dict) -> bool:
    """A stack member's result is its trial's: the same keys, ints equal, continuous floats to float32 rounding
    (the stack's batched matmuls round differently; measured: up to 2e-7 on train/loss, 1e-8 on a held-out
    BCE). ACC and AP are compared through the scores they rank (`same_scores`): on the tests' few images two
    near-tied scores swap under that rounding on some CPUs (seen: one test set's AP 0.63 vs 0.47)."""
    return stacked.keys() == alone.keys() and all(
        k.endswith(RANKED) or (stacked[k] == pytest.approx(v, rel=1e-5, abs=1e-6) if isinstance(v, float)
                               else stacked[k] == v) for k, v in alone.items())


def same_scores(model: RINEHead, trial: RINETrainer) -> bool:
    """`model` gives every test image the P(fake) that `trial`'s head gives it, to float32 rounding."""
    held = trial.held_out
    return np.allclose(held.scores(logits_of(model), held.test_tokens),
                       held.scores(logits_of(trial.model), held.test_tokens), rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def xi_axis(ufd, cached):
    """One grid point's ξ axis (§4.2) and a τ variant: they read configs[0]'s cached views."""
    base, features = cached[0][0], cached[1]
    configs = [dataclasses.replace(base, xi=xi) for xi in (0.1, 0.8, 0.0)]
    configs.append(dataclasses.replace(base, temperature=0.5))
    return configs, {"features": features}


def test_a_stack_reports_for_each_member_what_its_trial_reports_alone(ufd, xi_axis):
    configs, shared = xi_axis
    alone = [RINETrainer(c, ufd, shared) for c in configs]
    stack, losses = HeadStack(configs, ufd, shared), set()
    for results in stack.run():  # epoch by epoch, each member beside its trial
        for result, member, trial in zip(results, stack.members, alone, strict=True):
            assert same_results(result, next(trial.run())) and same_scores(member.model, trial)
            losses.add(result["train/loss"])
    assert stack.epoch == configs[0].epochs and len(losses) == len(configs) * stack.epoch  # the members did differ


def test_a_stack_members_checkpoint_resumes_as_its_own_trial(ufd, xi_axis, from_file):
    configs, shared = xi_axis
    stack = HeadStack(configs[:2], ufd, shared)
    next(stack.run())
    resumed = RINETrainer(configs[1], ufd, shared)
    resumed.load_state_dict(from_file(stack.members[1].state_dict()))
    trial = RINETrainer(configs[1], ufd, shared)
    assert same_results(list(resumed.run())[-1], list(trial.run())[-1]) and same_scores(resumed.model, trial)


def test_only_configs_that_differ_in_xi_or_temperature_stack(ufd, xi_axis, cached):
    configs, shared = xi_axis
    other = dataclasses.replace(configs[0], proj_dim=2 * configs[0].proj_dim)
    assert stacks([configs[0], other, configs[1]]) == [[configs[0], configs[1]], [other]]
    with pytest.raises(ValueError, match="may differ in xi and temperature only"):
        HeadStack([configs[0], other], ufd, shared)
    # a grid sweep starts one member of each stack first: trials running at once train different stacks
    assert leaders_first([configs[0], configs[1], other, dataclasses.replace(other, xi=0.8)]) == [0, 2, 1, 3]


def sweep_members(ufd, configs, shared, scratch) -> list[StackMember]:
    """The trainers a grid sweep's trials of `configs` get (FeaturesAndStacks put their stack in `shared`)."""
    stacked = {**shared, "scratch": str(scratch), "stacks": {stack_key(configs[0]): [c.to_flat() for c in configs]}}
    return [RINE.trainer(c, ufd, stacked) for c in configs]


def without_stack_keys(result: dict) -> dict:
    return {k: v for k, v in result.items() if not k.startswith("stack/")}


def test_in_a_sweep_each_member_reports_its_own_trials_results_and_one_trains_the_stack(ufd, xi_axis, tmp_path, from_file):
    configs, shared = xi_axis[0][:2], xi_axis[1]
    trials = [RINETrainer(c, ufd, shared) for c in configs]
    alone = [list(trial.run()) for trial in trials]
    first, second = sweep_members(ufd, configs, shared, tmp_path)
    reported = {1: list(second.run()), 0: list(first.run())}  # the second member's trial starts first
    assert [r["stack/trained_here"] for r in reported[1]] == [1, 1] and not any(r["stack/trained_here"] for r in reported[0])
    for g, results in reported.items():
        assert all(same_results(without_stack_keys(r), a) for r, a in zip(results, alone[g], strict=True))
        assert results[-1]["stack/members"] == 2
    last = RINETrainer(configs[0], ufd, shared)
    last.load_state_dict(from_file(first.state_dict()))  # its checkpoint is its own trial's
    assert last.epoch == configs[0].epochs and same_scores(last.model, trials[0])
    restored = sweep_members(ufd, configs, shared, tmp_path)[0]
    restored.load_state_dict({**from_file(first.state_dict()), "epoch": 1})  # resumed: replays what is left
    assert [r["epoch"] for r in restored.run()] == [2]
    assert isinstance(RINE.trainer(configs[0], ufd, shared), RINETrainer)  # outside every stack: alone
    other_data = {view: dataclasses.replace(table, location=f"{table.location}-re-extracted")
                  for view, table in shared["features"].items()}  # e.g. a run resumed on changed images
    assert sweep_members(ufd, configs, {**shared, "features": other_data}, tmp_path)[0].entry != first.entry


def test_a_member_waits_for_the_sibling_training_the_stack_and_trains_it_if_that_one_dies(ufd, xi_axis, tmp_path):
    member = sweep_members(ufd, xi_axis[0][:2], xi_axis[1], tmp_path)[0]
    member.entry.parent.mkdir(parents=True)
    with open(member.entry.with_suffix(".lock"), "a") as sibling:  # a sibling's trial training the stack
        fcntl.flock(sibling, fcntl.LOCK_EX)
        waiting = concurrent.futures.ThreadPoolExecutor(1).submit(lambda: list(member.run()))
        time.sleep(1.0)
        assert not waiting.done() and not member.entry.exists()
    # that trial died before storing the stack: the kernel drops its lock, and this member trains it
    trained = waiting.result(timeout=300)
    assert trained[-1]["stack/trained_here"] == 1 and member.entry.is_dir()
    sibling_state = member.entry / state_file(1)
    sibling_state.write_bytes(b"x" + sibling_state.read_bytes()[1:])  # a sibling's state: not this member's to read
    assert [r["stack/trained_here"] for r in sweep_members(ufd, xi_axis[0][:2], xi_axis[1], tmp_path)[0].run()] == [0, 0]
    stored = member.entry / RESULTS_FILE
    stored.write_text(stored.read_text().replace("0", "1", 1))  # damaged: trained again, never trusted
    again = sweep_members(ufd, xi_axis[0][:2], xi_axis[1], tmp_path)[0]
    assert [without_stack_keys(r) for r in again.run()] == [without_stack_keys(r) for r in trained]
    assert again.checkpoints_mid_run  # it trained the stack: its live state is its checkpoint at every epoch
    shutil.rmtree(member.entry)  # a trainer restored after epoch 1 with nothing stored: trains the stack, reports epoch 2
    restored = sweep_members(ufd, xi_axis[0][:2], xi_axis[1], tmp_path)[0]
    restored.load_state_dict(again.state_dict())
    assert restored.epoch == 2
    restored.load_state_dict({**again.state_dict(), "epoch": 1})
    assert [(r["epoch"], r["stack/trained_here"]) for r in restored.run()] == [(2, 1)] and member.entry.is_dir()


def test_a_member_kept_waiting_past_the_deadline_trains_alone_and_a_late_store_keeps_the_stored_entry(
        ufd, xi_axis, tmp_path, monkeypatch, capsys, from_file):
    configs, shared = xi_axis[0][:2], xi_axis[1]
    alone = list(RINETrainer(configs[1], ufd, shared).run())
    member = sweep_members(ufd, configs, shared, tmp_path)[1]
    member.entry.parent.mkdir(parents=True)
    monkeypatch.setattr(members, "WAIT_S", 0.5)  # an NFSv3 lock of a dead node, or a stuck holder: held for good
    with open(member.entry.with_suffix(".lock"), "a") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        reported = list(member.run())
    assert "still locked after 1 s (AIGID_STACK_WAIT_S): this member trains alone" in capsys.readouterr().out
    assert [(r["stack/members"], r["stack/trained_here"]) for r in reported] == [(1, 1), (1, 1)]
    assert all(same_results(without_stack_keys(r), a) for r, a in zip(reported, alone, strict=True))
    resumed = RINETrainer(configs[1], ufd, shared)
    resumed.load_state_dict(from_file(member.state_dict()))  # its checkpoint: its own trial's, as ever
    assert resumed.epoch == 2 and not member.entry.exists()
    # Two members trained the stack (a lock that did not hold across nodes): the second to store keeps the first's
    first, second = sweep_members(ufd, configs, shared, tmp_path)
    list(first.run())
    stored = (member.entry / RESULTS_FILE).read_text()
    assert len(list(second._train())) == 2 and (member.entry / RESULTS_FILE).read_text() == stored
    assert [p.name for p in member.entry.parent.iterdir() if p.name.endswith(".partial")] == []


def test_sweeps_stack_on_a_gpu_unless_told_otherwise(monkeypatch):
    assert stacking("cuda") and not stacking("cpu")
    monkeypatch.setenv("AIGID_STACK", "1")
    assert stacking("cpu")
    monkeypatch.setenv("AIGID_STACK", "0")
    assert not stacking("cuda")
    monkeypatch.setenv("AIGID_STACK", "yes")
    with pytest.raises(ValueError, match="AIGID_STACK='yes': use auto"):
        stacking("cpu")


def test_bad_data_fails_before_training(ufd, horse_only_ufd):
    with pytest.raises(ValueError, match="is a ResNet"):
        check_data(RINEConfig(backbone="aigid-tiny-rn"), ufd)
    only_horse = horse_only_ufd
    with pytest.raises(DataError, match=r"lacks \['car', 'cat', 'chair'\].*use classes=1"):
        check_data(RINEConfig(classes=4), scan(only_horse))
    check_data(RINEConfig(classes=1, backbone="aigid-tiny-vit"), scan(only_horse))

