"""GenDet's losses, configuration, stage schedule and trainer, on generated feature tables.

The networks and the trainer are the real ones; the CLIP features are drawn from two
Gaussians (real vs fake) so every test runs in well under a second.
"""
import numpy as np
import pytest
import torch

from aigid.data.index import FAKE, REAL, DataError, DatasetIndex, Sample
from aigid.features import FeatureTable
from aigid.methods.gendet import GenDet, GenDetConfig, GenDetTrainer, margin_loss, squared_discrepancy
from aigid.methods.gendet.trainer import feature_requests, eval_view_name, train_view_name

DIM = 12


def make_data(n_train=32, n_test=16, shift=1.5, patch=False, seed=0):
    """A UFD-shaped index (train: progan; test: progan, other) and its feature table."""
    rng = np.random.default_rng(seed)
    samples, rows = [], []
    for split, subsets, n in (("train", ["progan"], n_train), ("test", ["progan", "other"], n_test)):
        for subset in subsets:
            for label in (REAL, FAKE):
                for i in range(n):
                    samples.append(Sample(f"/data/{split}/{subset}/{label}/{i}.png", label, subset, split, "cls"))
                    rows.append(rng.normal(size=(4, DIM) if patch else DIM) + shift * label)
    index = DatasetIndex("/data", "ufd", True, samples)
    output = "patch_tokens" if patch else "embedding"
    table = FeatureTable(tuple(s.path for s in samples), {output: np.stack(rows).astype(np.float16)},
                         np.ones(len(samples), dtype=bool))
    return index, table


def trainer(config_overrides=None, *, patch=False, **data):
    config = GenDetConfig.from_flat({"backbone": "aigid-tiny-vit", "pretrained": None, "width": 16, "heads": 4,
                                     "embedding_tokens": 2, "batch_size": 16, "teacher_lr": 1e-3, "student_lr": 1e-3,
                                     "augmenter_lr": 1e-3, "classifier_lr": 1e-3, "rotations": 2, "teacher_epochs": 2,
                                     "classifier_epochs": 2, "tokens": "patch" if patch else "embedding",
                                     **(config_overrides or {})})
    index, table = make_data(patch=patch, **data)
    views = {view_name(config): table for view_name in (train_view_name, eval_view_name)}  # one table holds both
    return GenDetTrainer(config.for_layout(index.layout), index, {"features": views})


# ------------------------------------------------------------------ losses (eq. 1-4)
def test_eq1_and_eq3_average_the_squared_difference_over_batch_and_elements():
    z_t = torch.tensor([[[1.0, 2.0]], [[0.0, 0.0]]])  # (B=2, L=1, W=2)
    z_s = torch.tensor([[[0.0, 0.0]], [[0.0, 3.0]]])
    assert squared_discrepancy(z_t, z_s).item() == pytest.approx((1 + 4 + 0 + 9) / 4)


def test_eq2_hinge_is_zero_at_the_margin_and_linear_below_it():
    z_t = torch.tensor([[1.0, 0.0]])
    orthogonal = torch.tensor([[0.0, 7.0]])  # unit vectors (1,0) and (0,1): squared distance 2, whatever the scale
    assert margin_loss(z_t, orthogonal, margin=2.0, alpha=0.5).item() == pytest.approx(0.0, abs=1e-7)
    assert margin_loss(z_t, orthogonal, margin=3.0, alpha=0.5).item() == pytest.approx(0.5 * (3 - 2))
    assert margin_loss(z_t, orthogonal, margin=1.0, alpha=0.5).item() == 0.0  # beyond the margin: no push
    same = torch.tensor([[5.0, 0.0]])  # same direction: distance 0, loss α·M
    assert margin_loss(z_t, same, margin=4.0, alpha=0.1).item() == pytest.approx(0.4)
    batch = margin_loss(torch.cat([z_t, z_t]), torch.cat([same, orthogonal]), margin=2.0, alpha=1.0)
    assert batch.item() == pytest.approx((2.0 + 0.0) / 2)  # the mean over samples
    z_s = orthogonal.clone().requires_grad_(True)
    margin_loss(z_t, z_s, margin=1.9, alpha=1.0).backward()
    assert torch.count_nonzero(z_s.grad) == 0  # met margin: the student gets no gradient


def test_eq4_discrepancy_is_elementwise_and_eq5_reads_it():
    config = GenDetConfig(width=8, heads=2, embedding_tokens=3)
    model = GenDet((DIM,), config)
    x = torch.randn(5, DIM)
    expected = (model.teacher(x) - model.student(x)) ** 2
    assert model.discrepancy(x).shape == (5, 3, 8)
    assert torch.allclose(model.discrepancy(x), expected)
    assert torch.allclose(model(x), model.classifier(expected))


# ------------------------------------------------------------------ configuration
@pytest.mark.parametrize("field, value, message", [
    ("margin", 0.0, "margin must be in (0, 4]"),
    ("margin", -1.0, "margin must be in (0, 4]"),
    ("margin", 5.0, "unit vectors"),
    ("alpha", -0.1, "alpha must be >= 0"),
    ("rotations", 0, "rotations must be an integer >= 1"),
    ("heads", 3, "width 196 is not divisible by heads 3"),
    ("variant", "no_teacher", "variant must be one of"),
    ("tokens", "cls", "tokens must be one of"),
    ("student_lr", 0.0, "student_lr must be > 0"),
])
def test_impossible_values_are_rejected_with_the_allowed_range(field, value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        GenDetConfig(**{field: value})


def test_dataset_defaults_follow_section_4_1():
    assert GenDetConfig().for_layout("ufd").to_flat() == {
        **GenDetConfig().to_flat(), "train_subset": "progan", "student_lr": 1e-4, "classifier_lr": 1e-5}
    genimage = GenDetConfig(classifier_lr=0.5).for_layout("genimage")
    assert (genimage.train_subset, genimage.student_lr, genimage.classifier_lr) == ("sdv14", 1e-5, 0.5)
    with pytest.raises(DataError, match="set train_subset, student_lr, classifier_lr yourself"):
        GenDetConfig().for_layout("folder")


def test_schedule_per_variant():
    base = {"teacher_epochs": 1, "rotations": 2, "classifier_epochs": 1}
    assert GenDetConfig(**base).schedule == ("teacher", "student_real", "student_fake", "augmenter",
                                             "student_real", "student_fake", "augmenter", "classifier")
    assert GenDetConfig(**base, variant="ts_fake").schedule == ("teacher", "student_real", "student_fake",
                                                                "student_real", "student_fake", "classifier")
    assert GenDetConfig(**base, variant="ts_real").schedule == ("teacher", "student_real", "student_real", "classifier")
    assert GenDetConfig(**base, variant="teacher").schedule == ("teacher",)
    assert GenDetConfig().epochs == 5 + 3 * 10 + 5  # the paper's 10 rotations


# ------------------------------------------------------------------ which weights each stage trains
def snapshot(model):
    return {name: {k: v.detach().clone() for k, v in module.state_dict().items()} for name, module in model.named_children()}


def changed(before, after):
    return {name for name in before if any(not torch.equal(before[name][k], after[name][k]) for k in before[name])}


def test_each_stage_changes_only_its_networks_and_the_teacher_is_frozen_after_step_1():
    run = trainer({"weight_decay": 0.0})  # no decay: a weight moves only if its stage's loss reaches it
    expected = {"teacher": {"teacher", "teacher_head"}, "student_real": {"student"}, "student_fake": {"student"},
                "augmenter": {"augmenter"}, "classifier": {"classifier"}}
    before = snapshot(run.model)
    for stage, _ in zip(run.schedule, run.run()):
        after = snapshot(run.model)
        assert changed(before, after) == expected[stage], stage
        before = after
    assert run.schedule.count("teacher") == 2 and len(run.schedule) == 2 + 3 * 2 + 2


@pytest.mark.parametrize("variant, expected", [("full", True), ("ts_fake", False)])
def test_stage_b_feeds_the_student_augmented_fakes_only_in_full_gendet(variant, expected):
    run = trainer({"variant": variant, "rotations": 1, "teacher_epochs": 1, "classifier_epochs": 1})
    calls = []
    run.model.augmenter.register_forward_hook(lambda *_: calls.append(run.schedule[run.epoch]))
    list(run.run())
    assert ("student_fake" in calls) is expected and "classifier" not in calls


def test_the_augmenter_learns_through_the_frozen_teacher_and_student():
    run = trainer({"weight_decay": 0.0, "rotations": 1, "teacher_epochs": 1})
    before = {k: v.clone() for k, v in run.model.augmenter.block.state_dict().items()}
    stages = run.run()
    for _ in range(4):  # teacher, (a), (b), (c)
        next(stages)
    after = run.model.augmenter.block.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # not only its zero-initialised output layer


def test_the_classifier_reads_raw_fakes_unless_told_to_read_augmented_ones():
    for augmented in (True, False):
        run = trainer({"rotations": 1, "teacher_epochs": 1, "classifier_on_augmented": augmented})
        calls = []
        run.model.augmenter.register_forward_hook(lambda *_: calls.append(run.schedule[run.epoch]))
        list(run.run())
        assert ("classifier" in calls) is augmented


def test_a_grid_over_both_readings_extracts_both_outputs_in_one_pass_per_view_set():
    index, _ = make_data()
    configs = [GenDetConfig(tokens=t, backbone="aigid-tiny-vit", pretrained=None).for_layout(index.layout)
               for t in ("embedding", "patch")]
    train, test = feature_requests(configs, index).values()
    assert train.outputs == test.outputs == ("embedding", "patch_tokens")
    assert len(train.paths) + len(test.paths) == len(index.samples)


def test_inference_never_calls_the_augmenter_but_training_does():
    run = trainer()
    calls = []
    run.model.augmenter.register_forward_hook(lambda *_: calls.append(1))
    results = list(run.run())
    trained_calls = len(calls)
    assert trained_calls > 0  # stages (b) and (c)
    report = run.evaluate("gendet")
    with torch.no_grad():
        run.model(torch.randn(3, DIM))
    assert len(calls) == trained_calls and 0 <= report["test/mean/acc"] <= 1
    assert results[-1]["test/mean/acc"] == report["test/mean/acc"]


def test_gendet_learns_separable_features_and_the_discrepancy_separates_real_from_fake():
    run = trainer({"rotations": 3, "teacher_epochs": 3, "classifier_epochs": 10}, n_train=128)
    final = list(run.run())[-1]
    assert final["test/mean/acc"] > 0.9 and final["test/mean/ap"] > 0.95
    rows = run.tests.parts["other"].rows
    labels = run.tests.parts["other"].labels.numpy()
    with torch.no_grad():
        gap = run.model.discrepancy(run.tests.x(rows)).flatten(1).sum(1).numpy()
    assert gap[labels == FAKE].mean() > gap[labels == REAL].mean()  # the student departs from the teacher on fakes


def test_patch_reading_trains_on_token_features():
    run = trainer({"rotations": 1, "teacher_epochs": 1, "classifier_epochs": 1}, patch=True)
    assert run.model.teacher(run._x(run.train.rows[:2])).shape == (2, 4, 16)  # one token per patch
    assert len(list(run.run())) == 5


def test_a_resumed_run_matches_an_uninterrupted_one(from_file):
    whole = [r["test/mean/acc"] for r in trainer().run()]
    first = trainer()
    stages = first.run()
    for _ in range(4):
        next(stages)
    state = from_file(first.state_dict())
    resumed = trainer()
    resumed.load_state_dict(state)
    assert [r["test/mean/acc"] for r in resumed.run()] == whole[4:]
    with pytest.raises(ValueError, match="different GenDetConfig"):
        trainer({"margin": 1.0}).load_state_dict(state)


def test_a_diverging_stage_fails_with_the_learning_rate_to_lower():
    run = trainer()
    with torch.no_grad():  # the weights a step too large leaves behind (a 1e30 lr is refused up front now)
        for parameter in run.model.parameters():
            parameter.mul_(1e30)
    with pytest.raises(FloatingPointError, match="lower teacher_lr"):
        list(run.run())
