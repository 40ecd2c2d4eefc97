import pytest
import torch

from aigid.data.layouts import DataError, scan
from aigid.methods.lol import OFFLINE_OVERRIDES, LoLConfig, LoLTrainer, check_data


def trainer(root, **overrides):
    torch.set_num_threads(1)
    config = LoLConfig.from_flat({**OFFLINE_OVERRIDES, "epochs": 2, "test_limit": 4, **overrides})
    return LoLTrainer(config, scan(root))


def test_training_steps_lower_the_loss_on_a_tiny_model(small_genimage):
    t = trainer(small_genimage, mask_ratio=(0.0, 0.0))
    images, labels, _ = next(iter(t.train_loader))
    losses = [t.train_step(images, labels) for _ in range(15)]
    assert sum(losses[-3:]) / 3 < 0.7 * losses[0]
    assert t.step == 15


def test_masks_are_applied_in_training_only(small_genimage):
    t = trainer(small_genimage, mask_ratio=(0.5, 0.5))
    seen = []
    hook = t.model.encoder.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    images, labels, _ = next(iter(t.train_loader))
    t.train_step(images, labels)
    masked_fraction = (seen[-1] == 0).all(dim=1).float().mean().item()  # zero on all three channels
    assert masked_fraction == pytest.approx(0.5, abs=0.02)
    t.evaluate()
    hook.remove()
    evaluated = torch.cat(seen[1:])
    assert (evaluated == 0).all(dim=1).float().mean().item() < 0.01  # no rectangle at evaluation


def test_run_reports_every_test_subset_and_stability(small_genimage):
    reports = list(trainer(small_genimage).run())
    assert [r["epoch"] for r in reports] == [1, 2] and all(r["epoch_end"] for r in reports)
    last = reports[-1]
    subsets = {"adm", "biggan", "glide", "midjourney", "sdv14", "sdv15", "vqdm", "wukong"}
    assert {k.split("/")[1] for k in last if k.startswith("test/")} == subsets | {"mean"}
    assert 0 <= last["test/mean/acc"] <= 1 and 0 <= last["test/mean/ap"] <= 1
    accs = [r["test/mean/acc"] for r in reports]
    assert last["stability/acc_mean"] == pytest.approx(sum(accs) / 2)


def test_resuming_from_a_checkpoint_continues_the_same_run(small_genimage, from_file):
    straight = trainer(small_genimage)
    full = list(straight.run())
    first = trainer(small_genimage)
    runner = first.run()
    next(runner)
    state = from_file(first.state_dict())
    resumed = trainer(small_genimage)
    resumed.load_state_dict(state)
    rest = list(resumed.run())
    assert [r["epoch"] for r in rest] == [2]
    assert rest[0]["test/mean/acc"] == pytest.approx(full[-1]["test/mean/acc"])
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match="different LoLConfig"):
        trainer(small_genimage, lr=1e-2).load_state_dict(state)


def test_missing_subsets_and_oversized_volumes_are_named(small_genimage):
    index = scan(small_genimage)
    with pytest.raises(DataError, match="train_subset 'sd3'"):
        check_data(LoLConfig(train_subset="sd3"), index)
    with pytest.raises(DataError):
        check_data(LoLConfig(train_volume=3200), index)
    with pytest.raises(DataError, match="test subset"):
        check_data(LoLConfig(train_volume=None, test_subsets=("dalle",)), index)


def test_train_command_runs_one_lol_run_without_ray(small_genimage, tmp_path, capsys):
    from aigid.cli import main

    checkpoint = tmp_path / "lol.pt"
    code = main(["train", "lol", "--data", str(small_genimage), "--workers", "0", "--save", str(checkpoint),
                 "--set", "backbone='aigid-tiny-rn'", "--set", "pretrained=none", "--set", "train_volume=None",
                 "--set", "epochs=1", "--set", "test_limit=4"])
    assert code == 0
    out = capsys.readouterr().out
    assert "(SYNTHETIC)" in out and "epoch 1/1" in out and "test/mean/acc" in out
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 1
    assert main(["train", "lol", "--data", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
