"""Training GenDet's networks on cached CLIP features, stage by stage (§3, §4.1).

The frozen extractor E never runs inside a trial: `feature_requests` lists the one view set
(a centre crop of every training and test image) that the grid needs, `aigid.features`
computes it once per sweep, and `GenDetTrainer` trains on the stored features as §3.3 does.

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
from aigid.data.subsets import test_subsets, training_subset
from aigid.data.transforms import test_transform
from aigid.features import FeatureRequest, FeatureTable, FixedView, LabelledRows, tensor_view
from aigid.methods.gendet.config import SMALL_IMAGES, TEST_SETS, GenDetConfig
from aigid.methods.gendet.model import GenDet, margin_loss, squared_discrepancy
from aigid.metrics import binary_metrics, per_subset_summary

EVAL_BATCH = 1024
# A feature table up to this size moves to the trial's GPU once (the embeddings of UFD's 720K
# ProGAN images are 1.1 GB); a larger one (patch tokens) stays in host memory.
DEVICE_FEATURES_BYTES = 2 << 30


def view_name(config: GenDetConfig) -> tuple:
    return ("gendet", config.backbone, config.pretrained, config.crop)


def select_training_samples(index: DatasetIndex, config: GenDetConfig):
    """All images of the training generator (§4.1: SD v1.4 on GenImage, ProGAN on UFD)."""
    return training_subset(index, config.train_subset, None, config.seed)


def select_test_samples(index: DatasetIndex, config: GenDetConfig) -> dict:
    return test_subsets(index, config.test_subsets)


def feature_requests(configs, index: DatasetIndex) -> dict[tuple, FeatureRequest]:
    """One view set per (backbone, weights, crop): every training and test image the grid's configs
    read, centre-cropped, with the union of their outputs (embedding and/or patch tokens)."""
    groups: dict[tuple, list] = {}
    for config in configs:
        groups.setdefault(view_name(config), []).append(config)
    requests = {}
    for name, group in groups.items():
        _, backbone, pretrained, crop = name
        paths = {s.path for c in group for s in select_training_samples(index, c)}
        paths |= {s.path for c in group for samples in select_test_samples(index, c).values() for s in samples}
        requests[name] = FeatureRequest(backbone, pretrained, tuple({c.output for c in group}), tuple(paths),
                                        FixedView(test_transform(crop, small=SMALL_IMAGES)), label=f"{backbone} centre crop, train + test")
    return requests


class GenDetTrainer:
    """One GenDet run on cached features: yields metrics after every stage; `state_dict()` is a complete checkpoint."""

    def __init__(self, config: GenDetConfig, index: DatasetIndex, shared: Mapping, *, device="cpu",
                 num_workers: int = 0):
        config.require_resolved()
        self.config = config
        self.device = torch.device(device)
        table: FeatureTable = shared["features"][view_name(config)]
        self.features = tensor_view(table, config.output)  # float16, shared with the table
        if self.device.type == "cuda" and self.features.nbytes <= DEVICE_FEATURES_BYTES:
            self.features = self.features.to(self.device)  # batches are then gathered on the GPU, no copies
        self.train = LabelledRows(table, select_training_samples(index, config))
        self.real_rows = self.train.rows[self.train.labels.numpy() == REAL]
        self.fake_rows = self.train.rows[self.train.labels.numpy() == FAKE]
        self.row_labels = np.zeros(len(table.paths), dtype=np.float32)  # label by feature row, for batches
        self.row_labels[self.train.rows] = self.train.labels.numpy()
        self.tests = {subset: LabelledRows(table, samples) for subset, samples in select_test_samples(index, config).items()}
        self.averaged = TEST_SETS.averaged(index.layout, self.tests)
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
        rows = torch.from_numpy(rows).to(self.features.device)
        return self.features[rows].to(self.device, non_blocking=True).float()

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
    @torch.no_grad()
    def scores(self, rows: np.ndarray, *, detector: str) -> np.ndarray:
        """P(fake) of `detector` ("teacher": the teacher's head; "gendet": eq. 5) for feature rows."""
        self.model.eval()
        score = self.model.teacher_logit if detector == "teacher" else self.model
        return torch.cat([torch.sigmoid(score(self._x(rows[i:i + EVAL_BATCH]))).cpu()
                          for i in range(0, len(rows), EVAL_BATCH)]).numpy()

    def evaluate(self, detector: str) -> dict:
        """ACC@0.5 / AP per test subset (`test/<subset>/...`) and their mean over the paper's (`test/mean/...`)."""
        return per_subset_summary({subset: binary_metrics(self.scores(part.rows, detector=detector), part.labels.numpy())
                                   for subset, part in self.tests.items()}, averaged=self.averaged)

    def _report(self, stage: str) -> dict:
        if stage == "classifier":
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
            skipped = self.train.skipped + sum(p.skipped for p in self.tests.values())
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
    select_test_samples(index, config)
