"""Training GenDet's networks on cached CLIP features, stage by stage (§3, §4.1).

The frozen extractor E never runs inside a trial: `feature_requests` lists the view sets (a
centre crop of every training image, clean; one of every test image per test dataset and
`test_perturb`) that the grid needs, `aigid.features` computes them once per sweep, and
`GenDetTrainer` trains on the stored features as §3.3 does. `EvalFeatures` scores a model on
the test view set, for the trainer's reports and for `aigid eval` (aigid.methods.gendet.evaluate) alike.

Schedule (`GenDetConfig.schedule`), one epoch per stage, AdamW throughout:
teacher (cross-entropy, then frozen) → rotations × [(a) student on real features, eq. 1;
(b) student on augmented fake features, α · eq. 2; (c) augmenter with teacher and student
frozen, eq. 3] → classifier on the discrepancies of the real and fake training features
(eq. 4; `classifier_on_augmented=True` passes the fakes through G, see the config). One student optimizer serves stages (a) and (b): with separate
Adam states α would cancel out of stage (b) (Adam's steps ignore a loss's scale); sharing
them, α sets eq. 2's pull against eq. 1's, as Table 5's α axis assumes.

Each stage reports the test metrics of the detector that exists at that point: the teacher's
own head until the classifier is trained (the "Teacher" row of Tables 1-2), then N_c (eq. 5).
"""
from __future__ import annotations

from typing import Iterator, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from aigid.backbones import require_vit
from aigid.data.index import FAKE, REAL, DataError, DatasetIndex
from aigid.data.perturb import NONE
from aigid.data.subsets import test_subsets, training_subset
from aigid.data.test_root import open_test_root
from aigid.data.transforms import test_transform
from aigid.features import FeatureRequest, FeatureTable, FixedView, LabelledRows, tensor_view
from aigid.methods.gendet.config import SMALL_IMAGES, TEST_SETS, GenDetConfig
from aigid.methods.gendet.model import GenDet, margin_loss, squared_discrepancy
from aigid.metrics import binary_metrics, per_subset_summary

EVAL_BATCH = 1024
# A feature table up to this size moves to the trial's GPU once (the embeddings of UFD's 720K
# ProGAN images are 1.1 GB); a larger one (patch tokens) stays in host memory.
DEVICE_FEATURES_BYTES = 2 << 30


def train_view_name(config: GenDetConfig) -> tuple:
    """The training images' view set: clean, whatever the test perturbation (Table 4 perturbs test images only)."""
    return ("gendet", "train", config.backbone, config.pretrained, config.crop)


def eval_view_name(config: GenDetConfig) -> tuple:
    """The test images' view set: one per test dataset, perturbation and perturbation seed (clean: any seed)."""
    return ("gendet", "test", config.backbone, config.pretrained, config.crop, config.test_root,
            *config.test_perturbation)


def select_training_samples(index: DatasetIndex, config: GenDetConfig):
    """All images of the training generator (§4.1: SD v1.4 on GenImage, ProGAN on UFD)."""
    return training_subset(index, config.train_subset, None, config.seed)


def open_test_index(config: GenDetConfig, index: DatasetIndex) -> DatasetIndex:
    """The dataset tested: `index`, or the one at `test_root` (Tables 6-7), scanned; "synthetic" writes/reuses a
    UFD-layout stand-in beside a synthetic `index`."""
    return open_test_root(config.test_root, index, stand_in="synthetic-gendet-cross-dataset", layout="ufd",
                          what="the cross-dataset test images' root", n_train=1) or index


def select_test_samples(index: DatasetIndex, config: GenDetConfig) -> dict:
    return test_subsets(index, config.test_subsets)


def _view_set(group: list, paths: set, root: str, label: str, *, perturb: str = NONE) -> FeatureRequest:
    """Centre crops of `paths` with the union of the group's outputs (embedding and/or patch tokens)."""
    first = group[0]
    return FeatureRequest(first.backbone, first.pretrained, tuple({c.output for c in group}), tuple(paths),
                          FixedView(test_transform(first.crop, small=SMALL_IMAGES)), label=label, root=root,
                          perturb=perturb, perturb_seed=first.perturb_seed)


def _grouped(configs, name_of) -> dict[tuple, list]:
    groups: dict[tuple, list] = {}
    for config in configs:
        groups.setdefault(name_of(config), []).append(config)
    return groups


def eval_feature_requests(configs, index: DatasetIndex) -> dict[tuple, FeatureRequest]:
    """The test view sets of `configs` (all `evaluate` reads): centre crops of the test images, perturbed by
    `test_perturb` drawn per path below the test dataset's root, with the union of the configs' outputs."""
    requests = {}
    for name, group in _grouped(configs, eval_view_name).items():
        test_index = open_test_index(group[0], index)
        paths = {s.path for c in group for samples in select_test_samples(test_index, c).values() for s in samples}
        perturb = group[0].test_perturb
        requests[name] = _view_set(group, paths, str(test_index.root),
                                   f"{group[0].backbone} centre crop, test, {perturb}", perturb=perturb)
    return requests


def feature_requests(configs, index: DatasetIndex) -> dict[tuple, FeatureRequest]:
    """The view sets a grid reads: one clean view set of the training images per (backbone, weights, crop), and
    the test view sets (`eval_feature_requests`): a robustness grid computes its training features once."""
    requests = {name: _view_set(group, {s.path for c in group for s in select_training_samples(index, c)},
                                str(index.root), f"{group[0].backbone} centre crop, train")
                for name, group in _grouped(configs, train_view_name).items()}
    return {**requests, **eval_feature_requests(configs, index)}


def _features(table: FeatureTable, config: GenDetConfig, device: torch.device) -> torch.Tensor:
    """The table's rows of `config.output` (float16, shared with the table), moved to a GPU when small enough
    (batches are then gathered on the GPU, no copies)."""
    features = tensor_view(table, config.output)
    if device.type == "cuda" and features.nbytes <= DEVICE_FEATURES_BYTES:
        features = features.to(device)
    return features


def rows_of(features: torch.Tensor, rows: np.ndarray, device: torch.device) -> torch.Tensor:
    """Feature rows as float32 on `device`."""
    return features[torch.from_numpy(rows).to(features.device)].to(device, non_blocking=True).float()


class EvalFeatures:
    """The test images' cached features per subset and the subsets `test/mean/*` averages: what the trainer's
    reports and `evaluate` (aigid eval) both score, with the same code, so they agree by construction."""

    def __init__(self, config: GenDetConfig, index: DatasetIndex, features: Mapping, device: torch.device):
        test_index = open_test_index(config, index)
        table: FeatureTable = features[eval_view_name(config)]
        self.device = device
        self.features = _features(table, config, device)
        self.parts = {subset: LabelledRows(table, samples)
                      for subset, samples in select_test_samples(test_index, config).items()}
        # Tables 6-7 average every set of the other dataset; otherwise the paper's sets (TEST_SETS).
        self.averaged = sorted(self.parts) if config.test_root else TEST_SETS.averaged(index.layout, self.parts)
        self.skipped = sum(part.skipped for part in self.parts.values())

    def x(self, rows: np.ndarray) -> torch.Tensor:
        return rows_of(self.features, rows, self.device)

    @torch.no_grad()
    def scores(self, model: GenDet, rows: np.ndarray, detector: str) -> np.ndarray:
        """P(fake) of `detector` ("teacher": the teacher's head; "gendet": eq. 5) for test feature rows."""
        model.eval()
        score = model.teacher_logit if detector == "teacher" else model
        return torch.cat([torch.sigmoid(score(self.x(rows[i:i + EVAL_BATCH]))).cpu()
                          for i in range(0, len(rows), EVAL_BATCH)]).numpy()

    def metrics(self, model: GenDet, detector: str) -> dict:
        """ACC@0.5 / AP per test subset (`test/<subset>/...`) and their mean over `averaged` (`test/mean/...`)."""
        return per_subset_summary({subset: binary_metrics(self.scores(model, part.rows, detector), part.labels.numpy())
                                   for subset, part in self.parts.items()}, averaged=self.averaged)


def detector_after(stage: str) -> str:
    """The detector that exists once `stage` has run: N_c after the classifier's epochs, else the teacher's head."""
    return "gendet" if stage == "classifier" else "teacher"


class GenDetTrainer:
    """One GenDet run on cached features: yields metrics after every stage; `state_dict()` is a complete checkpoint."""

    def __init__(self, config: GenDetConfig, index: DatasetIndex, shared: Mapping, *, device="cpu",
                 num_workers: int = 0):
        config.require_resolved()
        self.config = config
        self.device = torch.device(device)
        table: FeatureTable = shared["features"][train_view_name(config)]
        self.features = _features(table, config, self.device)
        self.train = LabelledRows(table, select_training_samples(index, config))
        self.real_rows = self.train.rows[self.train.labels.numpy() == REAL]
        self.fake_rows = self.train.rows[self.train.labels.numpy() == FAKE]
        self.row_labels = np.zeros(len(table.paths), dtype=np.float32)  # label by feature row, for batches
        self.row_labels[self.train.rows] = self.train.labels.numpy()
        self.tests = EvalFeatures(config, index, shared["features"], self.device)
        torch.manual_seed(config.seed)
        self.model = GenDet(self.features.shape[1:], config).to(self.device)
        m = self.model
        adamw = lambda params, lr: torch.optim.AdamW(params, lr=lr, weight_decay=config.weight_decay)  # noqa: E731
        self.optimizers = {
            "teacher": adamw([*m.teacher.parameters(), *m.teacher_head.parameters()], config.teacher_lr),
            "student": adamw(m.student.parameters(), config.student_lr),
            "augmenter": adamw(m.augmenter.parameters(), config.augmenter_lr),
            "classifier": adamw(m.classifier.parameters(), config.classifier_lr),
        }
        self.generator = torch.Generator().manual_seed(config.seed)
        self.schedule = config.schedule
        self.epoch = self.step = 0
        self._teacher_report: dict | None = None

    # ------------------------------------------------------------------ data
    def _x(self, rows: np.ndarray) -> torch.Tensor:
        return rows_of(self.features, rows, self.device)

    def _batches(self, rows: np.ndarray) -> Iterator[np.ndarray]:
        for batch in torch.randperm(len(rows), generator=self.generator).split(self.config.batch_size):
            yield rows[batch.numpy()]

    def _labels(self, rows: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(self.row_labels[rows]).to(self.device)

    # ------------------------------------------------------------------ stages
    def _train_only(self, *trained: torch.nn.Module) -> None:
        """Gradients and train mode for `trained` only; every other network is frozen for this stage."""
        for module in self.model.children():
            on = module in trained
            module.requires_grad_(on)
            module.train(on)

    def _update(self, optimizer: str, loss: torch.Tensor) -> torch.Tensor:
        self.optimizers[optimizer].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers[optimizer].step()
        self.step += 1
        return loss.detach()

    def _epoch(self, rows: np.ndarray, optimizer: str, trained: tuple, loss) -> float:
        """One pass over `rows` in shuffled batches, training `trained` on `loss(batch rows)`; the mean
        loss, read once per epoch (no device sync per step), and an error if it is not finite."""
        self._train_only(*trained)
        mean = torch.stack([self._update(optimizer, loss(batch)) for batch in self._batches(rows)]).mean().item()
        if not np.isfinite(mean):
            raise FloatingPointError(f"GenDet {optimizer} loss is {mean} at epoch {self.epoch + 1} "
                                     f"({self.schedule[self.epoch]}): lower {optimizer}_lr or check the features")
        return mean

    def _teacher(self) -> float:
        """Step 1: the teacher as a binary classifier, cross-entropy (§3.2)."""
        m = self.model
        return self._epoch(self.train.rows, "teacher", (m.teacher, m.teacher_head), lambda rows: (
            F.binary_cross_entropy_with_logits(m.teacher_logit(self._x(rows)), self._labels(rows))))

    def _student_real(self) -> float:
        """(a), eq. 1: the student follows the frozen teacher on real features."""
        m = self.model

        def loss(rows):
            x = self._x(rows)
            with torch.no_grad():
                z_t = m.teacher(x)
            return squared_discrepancy(z_t, m.student(x))

        return self._epoch(self.real_rows, "student", (m.student,), loss)

    def _student_fake(self) -> float:
        """(b), α · eq. 2: the student departs from the teacher on (augmented) fake features."""
        m, config = self.model, self.config

        def loss(rows):
            with torch.no_grad():
                x = self._x(rows)
                x = m.augmenter(x) if config.variant == "full" else x  # ts_fake: no augmenter (Tables 1-2)
                z_t = m.teacher(x)
            return margin_loss(z_t, m.student(x), config.margin, config.alpha)

        return self._epoch(self.fake_rows, "student", (m.student,), loss)

    def _augmenter(self) -> float:
        """(c), eq. 3: G learns fake features on which teacher and student agree; both stay fixed."""
        m = self.model

        def loss(rows):
            x = m.augmenter(self._x(rows))
            return squared_discrepancy(m.teacher(x), m.student(x))

        return self._epoch(self.fake_rows, "augmenter", (m.augmenter,), loss)

    def _classifier(self) -> float:
        """N_c on D = (z_t − z_s)² of the training features (eq. 4), fakes through G if so configured."""
        m = self.model

        augment = self.config.variant == "full" and self.config.classifier_on_augmented

        def loss(rows):
            labels = self._labels(rows)
            with torch.no_grad():
                x = self._x(rows)
                if augment:
                    fake = labels.bool()
                    x[fake] = m.augmenter(x[fake])
                discrepancy = m.discrepancy(x)
            return F.binary_cross_entropy_with_logits(m.classifier(discrepancy), labels)

        return self._epoch(self.train.rows, "classifier", (m.classifier,), loss)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, detector: str | None = None) -> dict:
        """The test metrics of `detector` ("teacher" or "gendet", `EvalFeatures.scores`) as the model stands; by
        default the detector the variant ends with (the teacher's head for "teacher", else N_c)."""
        return self.tests.metrics(self.model, detector or detector_after(self.schedule[-1]))

    def _report(self, stage: str) -> dict:
        if detector_after(stage) == "gendet":
            return self.evaluate("gendet")
        if stage != "teacher" and self._teacher_report is None:  # the teacher is frozen from here on
            self._teacher_report = self.evaluate("teacher")
        return self._teacher_report if stage != "teacher" else self.evaluate("teacher")

    def run(self) -> Iterator[dict]:
        stages = {"teacher": self._teacher, "student_real": self._student_real, "student_fake": self._student_fake,
                  "augmenter": self._augmenter, "classifier": self._classifier}
        while self.epoch < len(self.schedule):
            stage = self.schedule[self.epoch]
            loss = stages[stage]()
            self.epoch += 1
            skipped = self.train.skipped + self.tests.skipped
            yield {"epoch": self.epoch, "step": self.step, "epoch_end": True, "train/loss": loss,
                   f"train/{stage}_loss": loss, "data/skipped_files": skipped, **self._report(stage)}

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "generator": self.generator.get_state(), "epoch": self.epoch, "step": self.step,
                "config": self.config.to_flat()}

    def load_state_dict(self, state: dict) -> None:
        self.config.check_checkpoint(state)
        self.model.load_state_dict(state["model"])
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        self.generator.set_state(state["generator"])
        self.epoch, self.step = state["epoch"], state["step"]


def check_data(config: GenDetConfig, index: DatasetIndex) -> None:
    """Fail before the feature pass: no per-dataset defaults, a missing training or test subset,
    one class missing from training, or patch tokens asked of a ResNet."""
    if config.tokens == "patch":
        require_vit(config.backbone, "tokens='patch' reads the patch tokens")
    samples = select_training_samples(index, config)
    labels = {s.label for s in samples}
    if labels != {REAL, FAKE}:
        subset = config.train_subset
        missing = "real" if REAL not in labels else "fake"
        raise DataError(f"GenDet trains its teacher and classifier on real and fake images, but training subset "
                        f"'{subset}' of {index.root} has no {missing} images; add them or pick another train_subset")
    select_test_samples(open_test_index(config, index), config)
