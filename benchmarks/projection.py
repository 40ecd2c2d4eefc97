"""Each paper's largest grid at the paper's image counts and shapes, projected from measured rates
against the device's physical limit (issue 23). Pure arithmetic on the rates given; no GPU needed.

The rates default to those recorded on an NVIDIA H200 (benchmarks/RESULTS.md, "GPU suite",
2026-11-26); a rate nobody has measured is said to be missing, never invented. Limits: H200 dense
bf16 989 TFLOP/s, float32 67 TFLOP/s, HBM 4.8 TB/s (NVIDIA's H200 datasheet); a training step is
~3x a forward pass's arithmetic, a forward pass 2 FLOP per multiply-accumulate.

    python benchmarks/paper_scale.py --project
"""
from __future__ import annotations

BF16_FLOPS, FP32_FLOPS, HBM_BYTES_PER_S = 989e12, 67e12, 4.8e12
BF16_LIMITS = {"NVIDIA H200": BF16_FLOPS}  # dense bf16 FLOP/s by torch.cuda.get_device_name()
TARGET_S = 15 * 60  # issue 23: the whole 288-run RINE grid, feature passes included, in 15 minutes
GMACS = {"ViT-L-14": 81.0, "ViT-B-32": 4.4, "RN50": 4.1, "RN101": 7.8}  # per 224² image (open_clip's profiles)
H200 = {  # benchmarks/RESULTS.md, GPU suite (NVIDIA H200, torch 2.11.0+cu130)
    "vit_l14_pass_images_per_s": 1466.0,  # paper_scale.py --device cuda: 80,000-image bf16 feature pass
    "rine_head_s_per_row": 1.2 / 4000,  # one RINE trial, q=2 d'=1024, 1 epoch over 4,000 memory-mapped rows
    "rn50_step_s_batch4": 0.018,  # packing.py --backbone RN50: a random-init RN50 step at LoL's batch of 4
    "apn_images_per_s": {1: 67.27, 25: 30.13},  # apn_step.py --preset paper --batch 32, K = 1 and 25
}
# RINE (§4.1-4.2, sweeps/rine_grid.py --all-settings): 36K ProGAN images per class; 1, 2 or 4 classes;
# one training epoch (one augmented view) and the 20 test sets (~110K images, aigid/resident.py).
RINE_TRAIN_PER_CLASS, RINE_TEST_IMAGES, RINE_GRID = 36_000, 110_000, 48  # q x d' x xi (§4.2)
RINE_SHAPES = {"ViT-L-14": (24, 1024), "ViT-B-32": (12, 768)}  # per-block CLS taps (blocks, width)
LOL_VOLUMES = [400, 800, 1600, 3200, 6400, 12800, 25600, 64000, 160000, 323994]  # LoL Table 2 rows
LOL_EPOCHS = 20  # LoL §4.2
APN_K, APN_EPOCHS, SDV14_TRAIN = [1, 5, 10, 15, 20, 25], 10, 323_994  # APN Table 4(b); §4.2: 10 epochs on SD v1.4
GENDET_CELLS, GENDET_STAGES, UFD_TRAIN = 9, 5 + 3 * 10 + 5, 720_000  # Table 5 M x alpha; aigid GenDet stages


def device_name(device: str) -> str:
    """The name BF16_LIMITS knows a device by: the GPU's own name for "cuda[:n]", else `device` ("cpu")."""
    if not device.startswith("cuda"):
        return device
    import torch

    return torch.cuda.get_device_name(device)


def limit_images_per_s(backbone: str, flops: float = BF16_FLOPS) -> float:
    """Images/s of a forward pass at 224² when the device does nothing but `backbone`'s arithmetic."""
    return flops / (2 * GMACS[backbone] * 1e9)


def of_limit(images_per_s: float, backbone: str, device: str) -> str:
    """'N images/s, NN % of the <device> bf16 limit' for a frozen forward pass, or the rate with why the
    fraction is not known (a device or a backbone without a figure here)."""
    rate = f"{images_per_s:.1f} images/s"
    if device not in BF16_LIMITS or backbone not in GMACS:
        return f"{rate} (no bf16 limit known here for {backbone} on {device})"
    limit = limit_images_per_s(backbone, BF16_LIMITS[device])
    return f"{rate}, {images_per_s / limit:.0%} of the {device} bf16 limit ({limit:.0f} images/s for {backbone})"


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def rine_head_flops(blocks: int, width: int, q: int = 2, d: int = 1024) -> float:
    """Training FLOPs per row: Q1 on every block token, Q2 and the head on the fused one (aigid RINEHead)."""
    per_token = width * d + (q - 1) * d * d
    fused = q * d * d + 2 * d * d + d
    return 3 * 2 * (blocks * per_token + fused)


def rine_288(rates: dict) -> list[str]:
    lines, total = [], 0.0
    pass_images = 4 * RINE_TRAIN_PER_CLASS + RINE_TEST_IMAGES  # one pass per backbone serves every class setting
    for backbone, (blocks, width) in RINE_SHAPES.items():
        pass_s = pass_images / rates["vit_l14_pass_images_per_s"]  # ViT-B/32 unmeasured: at ViT-L/14's rate (an upper bound)
        limit_pass = pass_images / limit_images_per_s(backbone)
        scale = blocks * width / (24 * 1024)  # a row's cost scales with its bytes and its first projection
        trials_s = limit_trials = 0.0
        for classes in (1, 2, 4):
            rows = classes * RINE_TRAIN_PER_CLASS
            trial_s = (rows + RINE_TEST_IMAGES / 3) * rates["rine_head_s_per_row"] * scale  # scoring: a forward, ~1/3
            limit = max(rows * rine_head_flops(blocks, width) / FP32_FLOPS,
                        (rows + RINE_TEST_IMAGES) * blocks * width * 2 / HBM_BYTES_PER_S)
            trials_s += RINE_GRID * trial_s
            limit_trials += RINE_GRID * limit
            lines.append(f"  RINE {backbone} {classes}-class: per trial {trial_s:.1f} s (physical limit {limit:.2f} s, "
                         f"{limit / trial_s:.1%} of it)")
        rate_note = "" if backbone == "ViT-L-14" else ", unmeasured: at ViT-L/14's rate"
        lines.append(f"  RINE {backbone}: feature pass {pass_images} images {hours(pass_s)}{rate_note} (bf16 limit "
                     f"{hours(limit_pass)}, {limit_pass / pass_s:.0%}); 144 trials {hours(trials_s)} "
                     f"(limit {hours(limit_trials)}, {limit_trials / trials_s:.1%})")
        total += pass_s + trials_s
    verdict = "meets" if total <= TARGET_S else f"misses by {total / TARGET_S:.1f}x"
    return [f"RINE 288-run grid (2 backbones x 3 class settings x 48, §4.1-4.2): {hours(total)} on one GPU, one trial "
            f"after another; the 15-minute target: {verdict}", *lines]


def lol_table2(rates: dict) -> list[str]:
    images = sum(LOL_VOLUMES) * LOL_EPOCHS
    lines, total = [], 0.0
    rn50 = 4 / rates["rn50_step_s_batch4"]
    for backbone in ("RN50", "RN101", "ViT-L-14"):
        per_s = rn50 * GMACS["RN50"] / GMACS[backbone]  # only RN50 measured: the others scaled by their MACs
        limit = 3 * 2 * GMACS[backbone] * 1e9 / BF16_FLOPS  # s per training image at the bf16 limit
        total += images / per_s
        lines.append(f"  LoL {backbone}: {len(LOL_VOLUMES)} trials, {images} training images, {per_s:.0f} images/s "
                     f"({'measured' if backbone == 'RN50' else 'RN50 scaled by MACs'}), {hours(images / per_s)} "
                     f"({1 / limit:.0f} images/s at the limit: {per_s * limit:.1%} of it)")
    return [f"LoL Table 2 (10 volumes x 3 backbones, {LOL_EPOCHS} epochs; training only, evaluation not "
            f"counted): {hours(total)} one trial after another", *lines]


def apn_table4b(rates: dict) -> list[str]:
    measured = rates["apn_images_per_s"]
    (k0, r0), (k1, r1) = sorted(measured.items())
    total, lines = 0.0, []
    for k in APN_K:
        per_s = r0 + (r1 - r0) * (k - k0) / (k1 - k0)  # between the measured K = 1 and 25: linear in K
        seconds = SDV14_TRAIN * APN_EPOCHS / per_s
        total += seconds
        lines.append(f"  APN K={k}: {per_s:.0f} images/s{' (measured)' if k in measured else ' (interpolated)'}, "
                     f"{hours(seconds)}")
    return [f"APN Table 4(b) (K in {APN_K}, {APN_EPOCHS} epochs over {SDV14_TRAIN} SD v1.4 images): {hours(total)} "
            "one trial after another; physical limit: not derived (APN's MACs per image are not established here)",
            *lines]


def gendet_table5(rates: dict) -> list[str]:
    pass_s = UFD_TRAIN / rates["vit_l14_pass_images_per_s"]
    return [f"GenDet Table 5 ({GENDET_CELLS} cells, {GENDET_STAGES} one-epoch stages over {UFD_TRAIN} ViT-L/14 "
            f"features): feature pass {hours(pass_s)} (shared); per-trial time: NOT MEASURED on a GPU (no GenDet "
            "stage benchmark yet), so no total"]


def project(rates: dict = H200, device: str = "NVIDIA H200 (rates recorded 2026-11-26, RESULTS.md)") -> list[str]:
    return [f"projection at the papers' scale from {device}:", *rine_288(rates), *lol_table2(rates),
            *apn_table4b(rates), *gendet_table5(rates)]
