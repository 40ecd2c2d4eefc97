"""The fine-tuned methods' device rule (aigid/methods/device.py) on real models, and their per-epoch images/s."""
import math
import time

import pytest
import torch

from aigid.data.layouts import scan
from aigid.methods.apn import OFFLINE_OVERRIDES as APN_OFFLINE, APNConfig, APNTrainer
from aigid.methods.apn.backbones import build_backbone
from aigid.methods.device import (PLAIN_ENV, THROUGHPUT_KEY, Throughput, autocast, autocast_dtype, convolutional,
                                  memory_format, place)
from aigid.methods.lol import OFFLINE_OVERRIDES as LOL_OFFLINE, LoLConfig, LoLDetector, LoLTrainer
from trainables.tracking import as_metrics

CPU, CUDA = torch.device("cpu"), torch.device("cuda", 0)  # a device object needs no GPU; only its type is read


def test_bf16_on_cuda_and_full_precision_on_cpu():
    assert autocast_dtype(CUDA) == torch.bfloat16
    assert autocast_dtype(CPU) is None
    with autocast(CPU):
        assert not torch.is_autocast_enabled("cpu")
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


@pytest.mark.parametrize("model,sliding", [
    (lambda: LoLDetector("aigid-tiny-rn", None), True),  # LoL's RN50/RN101 family: a CLIP ModifiedResNet
    (lambda: LoLDetector("aigid-tiny-vit", None), False),  # ViT-L/14's family: one patch embedding
    (lambda: build_backbone("tiny-resnet", 8), True),  # APN's ResNet-18/50 family
    (lambda: build_backbone("tiny-swin", 8), False),  # APN's Swin-T family
])
def test_channels_last_only_for_sliding_convolutions_on_cuda(model, sliding):
    model = model()
    assert convolutional(model) is sliding
    assert memory_format(model, CUDA) == (torch.channels_last if sliding else torch.preserve_format)
    assert memory_format(model, CPU) == torch.preserve_format
    placed, layout = place(model, CPU)
    assert layout == torch.preserve_format
    assert all(p.is_contiguous() for p in placed.parameters())  # CPU: the weights as they were


def test_channels_last_is_a_layout_not_another_result():
    """What CUDA gets (weights and batch in channels_last) computes the same logits; checked on CPU."""
    torch.manual_seed(0)
    model = LoLDetector("aigid-tiny-rn", None).eval()
    images = torch.randn(2, 3, model.info.image_size, model.info.image_size)
    with torch.no_grad():
        plain = model(images)
        model.to(memory_format=torch.channels_last)
        assert model.encoder.conv1.weight.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(model(images.to(memory_format=torch.channels_last)), plain)


def test_plain_cuda_is_float32_in_the_default_layout(monkeypatch):
    monkeypatch.setenv(PLAIN_ENV, "1")
    assert autocast_dtype(CUDA) is None
    assert memory_format(LoLDetector("aigid-tiny-rn", None), CUDA) == torch.preserve_format


def test_throughput_leaves_paused_time_out():
    throughput = Throughput()
    with throughput.paused():
        time.sleep(0.3)
    throughput.add(30)
    assert throughput.report()[THROUGHPUT_KEY] > 30 / 0.3  # the 0.3 s paused is not counted


def timed_run(trainer):
    """(reports, the run's wall seconds) of a whole run, evaluations included."""
    start = time.perf_counter()
    reports = list(trainer.run())
    return reports, time.perf_counter() - start


def test_lol_reports_images_per_s_at_epoch_ends_and_mlflow_logs_it(small_genimage):
    torch.set_num_threads(1)
    index = scan(small_genimage)
    config = LoLConfig.from_flat({**LOL_OFFLINE, "epochs": 1, "batch_size": 4, "eval_every_steps": 2,
                                  "test_subsets": ("sdv14",), "test_limit": 2})
    trainer = LoLTrainer(config, index)
    reports, wall = timed_run(trainer)
    assert [r["epoch_end"] for r in reports] == [False, True]  # 4 steps of 4 images: one mid-epoch evaluation
    assert THROUGHPUT_KEY not in reports[0]
    rate = reports[-1][THROUGHPUT_KEY]
    # the evaluations are left out, so the rate is above that of the whole run
    assert len(trainer.train_samples) / wall < rate < math.inf
    logged = {m.key: m.value for m in as_metrics(reports[-1], step=2)}
    assert logged[THROUGHPUT_KEY] == rate


def test_apn_reports_images_per_s_at_epoch_ends(small_genimage):
    torch.set_num_threads(1)
    index = scan(small_genimage)
    config = APNConfig.from_flat({**APN_OFFLINE, "crop": 32, "feature_dim": 16, "q_hidden": 16, "num_proposals": 2,
                                  "epochs": 1, "train_volume": 8, "batch_size": 4, "q_batch_size": 4,
                                  "test_subsets": ("sdv14",), "test_limit": 4})
    reports, wall = timed_run(APNTrainer(config.for_layout(index.layout), index))
    assert 8 / wall < reports[-1][THROUGHPUT_KEY] < math.inf
