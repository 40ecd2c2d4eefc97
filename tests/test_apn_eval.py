"""APN's evaluation-only path (MethodSpec.evaluate) under a test perturbation, on real files."""
import pytest
import torch

from aigid.data.layouts import scan
from aigid.errors import ConfigError
from aigid.methods.apn import OFFLINE_OVERRIDES, APNTrainer
from aigid.methods.apn.spec import APN
from aigid.methods.spec import PrepareContext

FLAT = {**OFFLINE_OVERRIDES, "crop": 32, "feature_dim": 16, "q_hidden": 16, "num_proposals": 2, "epochs": 1,
        "train_volume": 8, "batch_size": 4, "q_batch_size": 4, "test_subsets": ("sdv14", "midjourney"),
        "test_limit": 4, "test_perturb": "blur=3"}


def test_evaluate_reproduces_the_trainers_last_report_and_refuses_another_ablation(small_genimage, tmp_path):
    torch.set_num_threads(1)
    index = scan(small_genimage)
    config = APN.resolve(FLAT, index)
    trainer = APNTrainer(config, index)
    *_, last = trainer.run()
    state, context = trainer.state_dict(), PrepareContext(str(tmp_path), log=lambda line: None)
    ours = APN.evaluate(config, state, index, context)
    expected = {k: v for k, v in last.items() if k.startswith("test/")}
    assert set(ours) == set(expected) and "test/mean/acc" in ours
    for key, value in expected.items():
        assert ours[key] == (value if key.endswith(("/acc", "/n")) else pytest.approx(value, abs=1e-9)), key
    clean = APN.evaluate(APN.resolve({**FLAT, "test_perturb": "none"}, index), state, index, context)
    assert any(clean[k] != ours[k] for k in ours if k.endswith(("/ap", "/loss")))  # blur=3 moved the scores
    other = APN.resolve({**FLAT, "ablation": "no_spatial"}, index)  # no Swin: keys missing
    with pytest.raises(ConfigError, match=r"^the checkpoint (lacks|has) '[^']+'"):
        APN.evaluate(other, state, index, context)
