"""The authors' released RINE heads and UnivFD probe, as files of exactly the published shapes
written with torch.save, loaded into aigid's models; bad files fail with one line."""
import pytest
import torch
import torch.nn.functional as F

from aigid.errors import ConfigError
from aigid.methods.rine import released as rine_released
from aigid.methods.univfd import released as univfd_released

BLOCKS, WIDTH = 24, 1024  # CLIP ViT-L/14


def authors_rine_state(n_blocks: int, width: int, q: int, proj_dim: int) -> dict:
    """The keys and shapes of mever-team/rine's Model minus clip.* (src/models.py), random values."""
    state = {"alpha": torch.randn(1, n_blocks, proj_dim)}
    for prefix, n_in in (("proj1", width), ("proj2", proj_dim)):
        for i in range(q):  # [Dropout, (Linear, ReLU, Dropout) x q]: Linears at 1, 4, 7, ...
            state[f"{prefix}.{1 + 3 * i}.weight"] = torch.randn(proj_dim, n_in if i == 0 else proj_dim) / 10
            state[f"{prefix}.{1 + 3 * i}.bias"] = torch.randn(proj_dim) / 10
    for index, n_out in ((0, proj_dim), (3, proj_dim), (6, 1)):
        state[f"head.{index}.weight"] = torch.randn(n_out, proj_dim) / 10
        state[f"head.{index}.bias"] = torch.randn(n_out) / 10
    return state


def authors_rine_forward(state: dict, tokens: torch.Tensor) -> torch.Tensor:
    """The authors' Model.forward after the CLIP hooks, written from their state dict by hand."""
    def stack(prefix, x, last_relu=True):
        indices = sorted(int(k.split(".")[1]) for k in state if k.startswith(prefix) and k.endswith("weight"))
        for n, i in enumerate(indices):
            x = F.linear(x, state[f"{prefix}.{i}.weight"], state[f"{prefix}.{i}.bias"])
            x = torch.relu(x) if last_relu or n < len(indices) - 1 else x
        return x
    g = stack("proj1", tokens)
    z = (torch.softmax(state["alpha"], dim=1) * g).sum(dim=1)
    return stack("head", stack("proj2", z), last_relu=False).squeeze(1)


def save(tmp_path, state, name="model.pth"):
    path = tmp_path / name
    torch.save(state, path)
    return path


@pytest.mark.parametrize("setting, q, proj_dim", [("1class", 4, 1024), ("2class", 4, 128), ("4class", 2, 1024)])
def test_released_rine_heads_load_with_their_architecture_and_forward_as_the_authors(tmp_path, setting, q, proj_dim):
    state = authors_rine_state(BLOCKS, WIDTH, q, proj_dim)
    head, arch = rine_released.load(save(tmp_path, state, f"model_{setting}_trainable.pth"))
    assert arch == rine_released.Architecture(n_blocks=BLOCKS, width=WIDTH, q=q, proj_dim=proj_dim)
    assert not head.training
    tokens = torch.randn(3, BLOCKS, WIDTH)
    with torch.no_grad():
        logits, _ = head(tokens)
        assert torch.allclose(logits, authors_rine_forward(state, tokens), atol=1e-4)


def test_torch_load_is_called_tensor_only_onto_the_cpu(tmp_path, monkeypatch):
    calls = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **kw: calls.append(kw) or real_load(*a, **kw))
    rine_released.load(save(tmp_path, authors_rine_state(3, 16, 1, 8)))
    univfd_released.load(save(tmp_path, {"weight": torch.randn(1, 768), "bias": torch.randn(1)}, "fc.pth"))
    assert calls == [{"weights_only": True, "map_location": "cpu"}] * 2


def test_released_univfd_probe_loads_and_is_the_authors_linear_layer(tmp_path):
    state = {"weight": torch.randn(1, 768), "bias": torch.randn(1)}
    probe = univfd_released.load(save(tmp_path, state, "fc_weights.pth"))
    x = torch.randn(5, 768)
    with torch.no_grad():
        assert torch.allclose(probe(x).squeeze(1), x @ state["weight"][0] + state["bias"])
    assert not probe.training and set(probe.state_dict()) == {"weight", "bias"}


@pytest.mark.parametrize("break_it, says", [
    (lambda s: s.pop("proj2.1.bias"), "lacks 'proj2.1.bias': a RINE head with q=2, d'=8 expects it with shape [8]"),
    (lambda s: s.__setitem__("head.6.weight", torch.randn(2, 8)), "'head.6.weight' has shape [2, 8], a RINE head "
                                                                  "with q=2, d'=8 expects [1, 8]"),
    (lambda s: s.__setitem__("proj2.7.weight", torch.randn(8, 8)), "has 'proj2.7.weight' with shape [8, 8]"),
    (lambda s: s.__setitem__("alpha", torch.randn(3, 8)), "'alpha' has shape [3, 8]"),
])
def test_a_broken_rine_file_names_the_key_and_the_expected_shape(tmp_path, break_it, says):
    state = authors_rine_state(3, 16, 2, 8)
    break_it(state)
    with pytest.raises(ConfigError) as error:
        rine_released.load(save(tmp_path, state))
    assert says in str(error.value) and "\n" not in str(error.value)


def test_a_wrong_univfd_shape_names_the_key_and_the_expected_shape(tmp_path):
    with pytest.raises(ConfigError, match=r"'weight' has shape \[1, 512\], a UnivFD probe on a 768-d embedding "
                                          r"expects \[1, 768\]"):
        univfd_released.load(save(tmp_path, {"weight": torch.randn(1, 512), "bias": torch.randn(1)}))


def test_a_checkpoint_of_the_other_method_says_whose_it_looks_like(tmp_path):
    rine_file = save(tmp_path, authors_rine_state(3, 16, 1, 8), "rine.pth")
    univfd_file = save(tmp_path, {"weight": torch.randn(1, 768), "bias": torch.randn(1)}, "fc.pth")
    with pytest.raises(ConfigError, match="is not a UnivFD probe .*: it looks like a RINE head .*aigid.methods.rine"):
        univfd_released.load(rine_file)
    with pytest.raises(ConfigError, match="is not a RINE head .*: it looks like a UnivFD probe .*univfd.released"):
        rine_released.load(univfd_file)
    with pytest.raises(ConfigError, match="is not a RINE head .*: its keys are a, b"):
        rine_released.load(save(tmp_path, {"a": torch.zeros(1), "b": torch.zeros(1)}, "other.pth"))


def test_unreadable_files_fail_with_one_line(tmp_path):
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    pickled = save(tmp_path, {"weight": torch.zeros(1, 768), "bias": torch.zeros(1), "why": ConfigError("x")}, "obj.pth")
    for path, says in ((tmp_path / "missing.pth", "no such checkpoint file"),
                       (text, "is not a checkpoint torch.load can read as tensors only"),
                       (pickled, "is not a checkpoint torch.load can read as tensors only"),
                       (save(tmp_path, [torch.zeros(1)], "list.pth"), "holds list, not a state dict")):
        with pytest.raises(ConfigError) as error:
            univfd_released.load(path)
        assert says in str(error.value) and "\n" not in str(error.value)
