"""APN's frequency branch pieces: FFT split and reassembly, the mask relaxation, eq. 10, the anchors."""
import pytest
import torch

from aigid.methods.apn.frequency import (ProposalHead, band_loss, cross_masks, half_spectrum, proposal_anchors,
                                         reassemble, split_images)


@pytest.fixture
def images():
    return torch.randn(2, 3, 16, 15, dtype=torch.float64)  # odd width: the half spectrum keeps 8 columns


def bands(batch, k, *values):
    """(batch, 3, k, 2) bands, all equal to `values` = (start, end)."""
    return torch.tensor(values, dtype=torch.float64).expand(batch, 3, k, 2).clone()


def test_all_ones_mask_reassembles_the_input_exactly(images):
    ones = torch.ones(2, 3, 1, 16, 8, dtype=torch.float64)
    related, irrelevant = split_images(images, ones, ones)
    assert related.shape == (2, 1, 3, 16, 15)
    assert torch.allclose(related[:, 0], images, atol=1e-12)
    assert irrelevant.abs().max() < 1e-12


def test_the_printed_sin_cos_order_would_not_reassemble(images):
    amplitude, phase = half_spectrum(images)
    assert torch.allclose(reassemble(amplitude, phase, images.shape[-2:]), images, atol=1e-12)
    printed = torch.complex(amplitude * torch.sin(phase), amplitude * torch.cos(phase))  # eq. 4 as printed
    assert not torch.allclose(torch.fft.irfft2(printed, s=images.shape[-2:]), images, atol=1e-3)


def test_related_and_irrelevant_parts_sum_to_the_input_for_any_binary_mask(images):
    mask = (torch.rand(2, 3, 4, 16, 8, generator=torch.Generator().manual_seed(0)) > 0.5).double()
    related, irrelevant = split_images(images, mask, mask)
    assert torch.allclose(related + irrelevant, images.unsqueeze(1).expand_as(related), atol=1e-12)


def test_cross_mask_follows_eq_2_3():
    u_band, v_band = bands(1, 1, 0.25, 0.5), bands(1, 1, 0.0, 0.0)
    mask = cross_masks(u_band, v_band, (8, 8), temperature=0.01)[0, 0, 0]  # u = col/4, v = row/7
    expected = torch.zeros(8, 5, dtype=torch.float64)
    expected[:, 1:3] = 1  # u/4 in [0.25, 0.5]: columns 1 and 2
    expected[0, :] = 1  # v/7 in [0, 0]: row 0
    assert torch.equal(mask, expected)


def test_relaxation_tends_to_the_hard_mask_and_passes_gradient_to_the_edges():
    u_band = bands(1, 2, 0.31, 0.62).requires_grad_()
    v_band = bands(1, 2, 0.13, 0.47)
    hard = cross_masks(u_band, v_band, (32, 32), temperature=0.01).detach()
    gaps = [(cross_masks(u_band, v_band, (32, 32), t, hard=False) - hard).abs().max().item()
            for t in (0.1, 0.01, 1e-3, 1e-4, 1e-5)]
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 1e-8
    straight_through = cross_masks(u_band, v_band, (32, 32), temperature=0.01)
    assert torch.equal(straight_through.detach(), hard)  # forward value: exactly eq. 2-3
    straight_through.sum().backward()
    assert (u_band.grad[..., 0] < 0).all() and (u_band.grad[..., 1] > 0).all()  # wider band, more ones


def test_band_loss_penalises_start_after_end_minus_epsilon():
    valid, inverted = bands(4, 3, 0.2, 0.5), bands(4, 3, 0.6, 0.3)
    assert band_loss(valid, 0.01).item() == 0
    assert band_loss(bands(4, 3, 0.5, 0.505), 0.01).item() == pytest.approx(3 * 3 * 0.005)
    assert band_loss(inverted, 0.01).item() == pytest.approx(3 * 3 * 0.31)
    printed = torch.relu(-inverted[..., 1] - inverted[..., 0] - 0.01)  # eq. 10 as printed
    assert printed.sum() == 0  # ... is blind to the inverted band


def test_proposals_start_at_the_equal_division_anchors():
    assert torch.allclose(torch.sigmoid(proposal_anchors(4)),
                          torch.tensor([[0.01, 0.25], [0.25, 0.5], [0.5, 0.75], [0.75, 0.99]]))
    for axis in ("u", "v"):
        head = ProposalHead(axis, (16, 16), k=4, channels=4, blocks=1, ofp_channels=2)
        out = head(torch.randn(3, 3, 16, 9))
        assert out.shape == (3, 3, 4, 2)
        assert torch.allclose(out, torch.sigmoid(proposal_anchors(4)).expand_as(out))
