"""APN's network, losses and training loop on tiny torchvision-family backbones and real images on disk."""
import shutil

import pytest
import torch

from aigid.data.layouts import DataError, scan
from aigid.data.synthetic import make_synthetic
from aigid.methods.apn import ABLATIONS, APN, OFFLINE_OVERRIDES, APNConfig, APNTrainer, check_data
from aigid.methods.apn.club import CLUB
from aigid.methods.apn.samples import select_training_samples
from aigid.methods.apn.spatial import OrthogonalDecomposition

TINY = {**OFFLINE_OVERRIDES, "crop": 32, "feature_dim": 16, "q_hidden": 16, "num_proposals": 2}


def trainer(root, **overrides):
    torch.set_num_threads(1)
    config = APNConfig.from_flat({**TINY, "epochs": 1, "train_volume": 8, "batch_size": 4, "q_batch_size": 4,
                                  "test_subsets": ("sdv14",), "test_limit": 4, **overrides})
    index = scan(root)
    return APNTrainer(config.for_layout(index.layout), index)


def test_bases_start_orthogonal_as_a_channel_split_and_basis_loss_is_zero():
    decomposition = OrthogonalDecomposition(8)
    assert torch.equal(decomposition.related @ decomposition.irrelevant.t(), torch.zeros(4, 4))
    assert decomposition.basis_loss().item() == 0
    f = torch.randn(5, 8)
    related, irrelevant = decomposition(f)
    assert torch.equal(related[:, :4], f[:, :4]) and torch.equal(related[:, 4:], torch.zeros(5, 4))
    assert torch.allclose(related + irrelevant, f)
    with torch.no_grad():
        decomposition.related[0, 4] = 0.5  # a basis vector leaning into the other set
    assert decomposition.basis_loss().item() == pytest.approx(0.5 / 16)
    with pytest.raises(ValueError, match="even"):
        OrthogonalDecomposition(7)


def fitted_club_bound(correlated: bool) -> float:
    torch.manual_seed(0)
    club = CLUB(4, 32)
    optimizer = torch.optim.Adam(club.parameters(), lr=1e-2)

    def sample():
        irrelevant = torch.randn(256, 4)
        related = irrelevant + 0.3 * torch.randn(256, 4) if correlated else torch.randn(256, 4)
        return related, irrelevant

    for _ in range(300):
        loss = club.learning_loss(*sample())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return club.upper_bound(*sample()).item()


def test_club_orders_correlated_above_independent_gaussians():
    correlated, independent = fitted_club_bound(True), fitted_club_bound(False)
    assert correlated > 2.0 > 0.5 > abs(independent)  # true I = 4 · ½ log(1 + 1/0.09) ≈ 5.0 nats, and 0


@pytest.mark.parametrize("name", list(ABLATIONS))
def test_every_ablation_builds_and_its_loss_terms_match_its_modules(name):
    torch.manual_seed(0)
    config = APNConfig.from_flat({**TINY, "ablation": name})
    parts = ABLATIONS[name]
    model = APN(config, parts)
    out = model(torch.randn(2, 3, 32, 32))
    assert out.logits.shape == (2,) and out.related.shape == out.irrelevant.shape == (2, 16)
    assert (model.frequency is not None) == parts.frequency and (model.spatial is not None) == parts.spatial
    assert (out.align.item() > 0) == (parts.frequency and parts.spatial)
    assert bool(model.basis_parameters()) == (parts.spatial and parts.decomposition)


def test_folding_proposals_into_the_batch_equals_the_per_proposal_loop():
    torch.manual_seed(0)
    model = APN(APNConfig.from_flat({**TINY, "num_proposals": 3}), ABLATIONS["full"]).eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        folded = model(images).logits
        model.frequency.chunk = 1
        looped = model(images).logits
    assert torch.allclose(folded, looped, atol=1e-5)


def test_parameter_groups_get_their_learning_rates(small_genimage):
    t = trainer(small_genimage, lr=1e-4, basis_lr=1e-7, q_lr=3e-4, lr_step=20_000, q_lr_step=60_000)
    apn, bases = t.optimizer.param_groups
    assert apn["lr"] == 1e-4 and bases["lr"] == 1e-7
    assert {id(p) for p in bases["params"]} == {id(t.model.decomposition.related), id(t.model.decomposition.irrelevant)}
    assert len(apn["params"]) + 2 == len(list(t.model.parameters()))
    assert [g["lr"] for g in t.q_optimizer.param_groups] == [3e-4]
    assert (t.scheduler.step_size, t.q_scheduler.step_size, t.scheduler.gamma) == (20_000, 60_000, 0.1)


def test_q_is_trained_three_times_per_apn_step_each_with_the_other_frozen(small_genimage):
    t = trainer(small_genimage)
    order = []
    t.optimizer.register_step_post_hook(lambda *args: order.append("apn"))
    t.q_optimizer.register_step_post_hook(lambda *args: order.append("q"))
    q_trainable, apn_weights = [], []
    t.optimizer.register_step_pre_hook(lambda *a: q_trainable.append(any(p.requires_grad for p in t.club.parameters())))
    t.q_optimizer.register_step_pre_hook(lambda *a: apn_weights.append(t.model.classifier.weight.detach().clone()))
    report = next(t.run())
    assert order == ["q", "q", "q", "apn"] * 2 and (t.step, t.q_step) == (2, 6)
    assert q_trainable == [False, False]  # q_θ frozen while APN learns
    assert torch.equal(apn_weights[0], apn_weights[2]) and not torch.equal(apn_weights[2], apn_weights[3])
    assert {"train/ce", "train/mi", "train/q_loss", "train/align", "test/sdv14/acc", "test/mean/acc"} <= set(report)


def test_checkpoint_restores_a_run_exactly(small_genimage, from_file):
    first = trainer(small_genimage, epochs=2)
    next(first.run())
    state = from_file(first.state_dict())
    second = trainer(small_genimage, epochs=2)
    second.load_state_dict(state)
    assert (second.epoch, second.step, second.q_step) == (1, 2, 6)
    assert torch.equal(second.model.classifier.weight, first.model.classifier.weight)
    with pytest.raises(ValueError, match="different APNConfig"):
        trainer(small_genimage, epochs=3).load_state_dict(state)


@pytest.mark.parametrize("flat,message", [
    ({"num_proposals": 0}, "num_proposals (K) must be >= 1"),
    ({"feature_dim": 255}, "feature_dim (C) must be an even number"),
    ({"ablation": "no_everything"}, "ablation must be one of"),
    ({"freq_backbone": "resnet34"}, "freq_backbone must be one of"),
    ({"spatial_weights": "/no/such/file.pth"}, "is not a file"),
    ({"attention_heads": 3, "feature_dim": 256}, "divide feature_dim"),
])
def test_bad_config_names_the_field(flat, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        APNConfig.from_flat(flat)


def test_cross_scene_maps_genimage_generators_to_diffusionforensics(small_genimage, tmp_path):
    df = make_synthetic(tmp_path / "df", layout="diffusionforensics", n_train=2, n_test=2)
    index = scan(small_genimage)
    config = APNConfig.from_flat({"test_root": str(df), "test_in_domain_only": True, "train_subset": "adm"})
    check_data(config, index)
    t = APNTrainer(APNConfig.from_flat({**TINY, "test_root": str(df), "test_in_domain_only": True,
                                        "train_subset": "midjourney"}).for_layout(index.layout), index)
    # Table 3's LSUN column: the scene's reals once, and the generator's fakes alone
    assert set(t.tests.loaders) == {("test", "midjourney"), ("test_lsun_bedroom", "real"),
                                   ("test_lsun_bedroom", "midjourney")}
    for column, label in (("real", 0), ("midjourney", 1)):
        samples = t.tests.loaders[("test_lsun_bedroom", column)].dataset.samples
        assert {s.group for s in samples} == {"lsun_bedroom"} and {s.label for s in samples} == {label}
    assert t.tests.averaged["test_lsun_bedroom"] == ["real", "midjourney"]
    check_data(APNConfig.from_flat({"test_root": str(df), "train_subset": "sdv14"}), index)
    shutil.rmtree(df / "test" / "lsun_bedroom" / "sdv1")
    with pytest.raises(DataError, match="no sdv1 generator in scene 'lsun_bedroom'"):
        check_data(APNConfig.from_flat({"test_root": str(df), "train_subset": "sdv14"}), index)


def test_layout_picks_the_papers_dataset_defaults():
    config = APNConfig()
    assert (config.for_layout("genimage").num_proposals, config.for_layout("genimage").epochs) == (15, 10)
    df = config.for_layout("diffusionforensics")
    assert (df.num_proposals, df.epochs, df.train_subset, df.test_scene) == (5, 40, "adm", "lsun_bedroom")
    assert df.train_scene == "lsun_bedroom" and config.for_layout("genimage").train_scene is None


def test_diffusionforensics_trains_on_the_lsun_bedroom_scene_only(tmp_path):
    """§4.1.1: DF's training set is LSUN-Bedroom real + ADM; a second scene in train/ stays out."""
    df = make_synthetic(tmp_path / "df", layout="diffusionforensics", n_train=2, n_test=1)
    shutil.copytree(df / "train" / "lsun_bedroom", df / "train" / "imagenet")
    index = scan(df)
    assert {s.group for s in index.select("train")} == {"lsun_bedroom", "imagenet"}
    paper = APNConfig.from_flat(TINY).for_layout("diffusionforensics")
    t = APNTrainer(paper, index)
    assert {(s.group, s.label) for s in t.train_loader.dataset.samples} == {("lsun_bedroom", 0), ("lsun_bedroom", 1)}
    assert len(t.train_loader.dataset.samples) == 4  # 2 real + 2 ADM
    imagenet = APNConfig.from_flat({**TINY, "train_scene": "imagenet"}).for_layout("diffusionforensics")
    assert {s.group for s in select_training_samples(index, imagenet)} == {"imagenet"}
    with pytest.raises(DataError, match="no training images in 'church'.*it has: imagenet, lsun_bedroom"):
        check_data(APNConfig.from_flat({"train_scene": "church"}).for_layout("diffusionforensics"), index)
    assert APNConfig(num_proposals=25).for_layout("diffusionforensics").num_proposals == 25


@pytest.mark.parametrize("updates", [True, False])
def test_q_steps_see_train_mode_features_and_leave_bn_stats_as_configured(small_genimage, updates):
    t = trainer(small_genimage, q_updates_bn=updates)
    seen = []
    t.model.register_forward_pre_hook(lambda module, args: seen.append(module.training))
    before = [b.clone() for b in t.model.buffers()]
    t.q_step_once(next(t._q_batches()))
    assert seen == [True]  # the mode in which eq. 9's L_mi scores q_θ
    unchanged = all(torch.equal(a, b) for a, b in zip(before, t.model.buffers()))
    assert unchanged is not updates
