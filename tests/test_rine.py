"""RINE's head, loss, config and trainer on cached features of a real tiny open_clip ViT."""
import dataclasses
import math

import pytest
import torch

from aigid.data.index import DataError
from aigid.data.layouts import scan
from aigid.data.synthetic import make_synthetic
from aigid.features import extract
from aigid.methods.rine import (
    OFFLINE_OVERRIDES, RINEConfig, RINEHead, RINETrainer, check_data, feature_requests, supcon_loss,
    trainable_parameters,
)
from aigid.methods.rine.stack import HeadStack, stacks


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


def same_results(stacked: dict, alone: dict) -> bool:
    """A stack member's result is its trial's: the same keys, ints equal, floats to float32 rounding (the
    stack's batched matmuls round differently; measured: up to 2e-7 on train/loss, 1e-8 on a held-out
    BCE, ACC and AP equal)."""
    return stacked.keys() == alone.keys() and all(
        stacked[k] == pytest.approx(v, rel=1e-5, abs=1e-6) if isinstance(v, float) else stacked[k] == v
        for k, v in alone.items())


@pytest.fixture(scope="module")
def xi_axis(ufd, cached):
    """One grid point's ξ axis (§4.2) and a τ variant: they read configs[0]'s cached views."""
    base, features = cached[0][0], cached[1]
    configs = [dataclasses.replace(base, xi=xi) for xi in (0.1, 0.8, 0.0)]
    configs.append(dataclasses.replace(base, temperature=0.5))
    return configs, {"features": features}


def test_a_stack_reports_for_each_member_what_its_trial_reports_alone(ufd, xi_axis):
    configs, shared = xi_axis
    alone = [list(RINETrainer(c, ufd, shared).run()) for c in configs]
    together = list(HeadStack(configs, ufd, shared).run())
    assert len(together) == configs[0].epochs
    for epoch, results in enumerate(together):
        assert all(same_results(r, trial[epoch]) for r, trial in zip(results, alone))
    assert len({trial[-1]["train/loss"] for trial in alone}) == len(configs)  # the members did differ


def test_a_stack_members_checkpoint_resumes_as_its_own_trial(ufd, xi_axis, from_file):
    configs, shared = xi_axis
    stack = HeadStack(configs[:2], ufd, shared)
    next(stack.run())
    resumed = RINETrainer(configs[1], ufd, shared)
    resumed.load_state_dict(from_file(stack.members[1].state_dict()))
    assert same_results(list(resumed.run())[-1], list(RINETrainer(configs[1], ufd, shared).run())[-1])


def test_only_configs_that_differ_in_xi_or_temperature_stack(ufd, xi_axis, cached):
    configs, shared = xi_axis
    other = dataclasses.replace(configs[0], proj_dim=2 * configs[0].proj_dim)
    assert stacks([configs[0], other, configs[1]]) == [[configs[0], configs[1]], [other]]
    with pytest.raises(ValueError, match="may differ in xi and temperature only"):
        HeadStack([configs[0], other], ufd, shared)


def test_bad_data_fails_before_training(ufd, horse_only_ufd):
    with pytest.raises(ValueError, match="is a ResNet"):
        check_data(RINEConfig(backbone="aigid-tiny-rn"), ufd)
    only_horse = horse_only_ufd
    with pytest.raises(DataError, match=r"lacks \['car', 'cat', 'chair'\].*use classes=1"):
        check_data(RINEConfig(classes=4), scan(only_horse))
    check_data(RINEConfig(classes=1, backbone="aigid-tiny-vit"), scan(only_horse))

