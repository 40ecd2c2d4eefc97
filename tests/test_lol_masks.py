import pytest
import torch

from aigid.methods.lol import LoLConfig, random_masks


def masks(batch, h, w, ratio, aspect, seed=0):
    return random_masks(batch, h, w, ratio, aspect, generator=torch.Generator().manual_seed(seed))


def zero_boxes(mask):
    """(top, left, height, width) of the zero region's bounding box."""
    rows = (mask == 0).any(dim=1).nonzero().flatten()
    cols = (mask == 0).any(dim=0).nonzero().flatten()
    return rows[0].item(), cols[0].item(), len(rows), len(cols)


def test_covered_fraction_follows_fixed_ratio():
    m = masks(64, 224, 224, (0.3, 0.3), (1.0, 1.0))
    covered = 1 - m.mean(dim=(1, 2, 3))
    assert torch.allclose(covered, torch.full_like(covered, 0.3), atol=0.01)


def test_covered_fraction_follows_drawn_range():
    m = masks(512, 224, 224, (0.2, 0.4), (0.5, 2.0))
    covered = 1 - m.mean(dim=(1, 2, 3))
    assert covered.min() >= 0.19 and covered.max() <= 0.41
    assert covered.mean().item() == pytest.approx(0.3, abs=0.02)  # uniform draw
    assert covered.std() > 0.03  # the ratio really is drawn per image


def test_rectangle_aspect_follows_drawn_aspect():
    m = masks(32, 400, 400, (0.2, 0.2), (2.0, 2.0))
    for mask in m[:, 0]:
        _, _, h, w = zero_boxes(mask)
        assert h / w == pytest.approx(2.0, rel=0.03)
    m = masks(32, 400, 400, (0.2, 0.2), (0.5, 0.5))
    for mask in m[:, 0]:
        _, _, h, w = zero_boxes(mask)
        assert h / w == pytest.approx(0.5, rel=0.03)


def test_zeros_form_exactly_one_rectangle_and_positions_vary():
    m = masks(16, 96, 128, (0.1, 0.5), (0.33, 3.0))
    boxes = set()
    for mask in m[:, 0]:
        top, left, h, w = zero_boxes(mask)
        assert (mask[top:top + h, left:left + w] == 0).all()
        assert int((mask == 0).sum()) == h * w
        boxes.add((top, left, h, w))
    assert len(boxes) == 16  # different masks across the batch
    assert m.shape == (16, 1, 96, 128) and set(m.unique().tolist()) <= {0.0, 1.0}


def test_full_and_empty_masks_stay_inside_the_image():
    assert masks(4, 50, 50, (1.0, 1.0), (3.0, 3.0)).sum() == 0  # clipped to H, then W = S / H
    assert masks(4, 50, 50, (0.0, 0.0), (1.0, 1.0)).min() == 1


def test_deterministic_for_a_seed():
    assert torch.equal(masks(8, 64, 64, (0.2, 0.8), (0.5, 2.0), 3), masks(8, 64, 64, (0.2, 0.8), (0.5, 2.0), 3))


@pytest.mark.parametrize("field,value,match", [
    ("mask_ratio", (0.5, 1.2), r"mask_ratio=.*\[0.0, 1.0\]"),
    ("mask_ratio", (0.6, 0.4), "low <= high"),
    ("aspect_ratio", (0.0, 2.0), "must be > 0"),
    ("lr", 0, "lr must be > 0"),
    ("epochs", 0, "epochs must be > 0"),
])
def test_config_rejects_impossible_values(field, value, match):
    with pytest.raises(ValueError, match=match):
        LoLConfig(**{field: value})


def test_config_from_flat_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown LoLConfig option"):
        LoLConfig.from_flat({"mask_ration": (0.1, 0.2)})
    assert LoLConfig.from_flat({"mask_ratio": [0.1, 0.2]}).mask_ratio == (0.1, 0.2)
