"""The frozen-feature cache: real tiny open_clip ViT, real images on disk, real files."""
import errno
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import aigid.features as features
from aigid.data.synthetic import make_synthetic
from aigid.data.datasets import load_rgb
from aigid.data.layouts import scan
from aigid.data.transforms import test_transform as centre_crop
from aigid.errors import StorageError
from aigid.features import FeatureRequest, FeatureStore, FixedView, extract
from aigid.methods.rine.augment import CNNDetectionAugment


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    root = make_synthetic(tmp_path_factory.mktemp("ufd") / "synthetic", layout="ufd", n_train=2, n_test=2)
    return tuple(s.path for s in scan(root).select("val"))[:6]


def request(paths, **changes):
    fields = dict(backbone="aigid-tiny-vit", pretrained=None, outputs=("block_cls_ln2",), paths=paths,
                  transform=FixedView(centre_crop(224, small="pad")), view=0, seed=0)
    return FeatureRequest(**{**fields, **changes})


def test_tables_hold_float16_outputs_equal_to_a_direct_forward(paths, tmp_path):
    req = request(paths, outputs=("block_cls_ln2", "embedding", "patch_tokens"))
    (table,), stats = extract([req], tmp_path, log=None)
    assert stats == {"computed": 1, "cached": 0} and table.paths == tuple(sorted(paths)) and table.ok.all()
    assert table.features["block_cls_ln2"].shape == (len(paths), 4, 64)
    assert table.features["embedding"].shape == (len(paths), 32)
    assert table.features["patch_tokens"].shape == (len(paths), 196, 64)  # 224/16 = 14 × 14 patches, width 64
    assert all(a.dtype == np.float16 for a in table.features.values())
    visual = features._build_encoder("aigid-tiny-vit", None, "cpu")
    images = torch.stack([centre_crop(224, small="pad")(load_rgb(p)) for p in table.paths])
    with torch.no_grad():
        expected = features.OUTPUTS["block_cls_ln2"](visual, images)
    assert torch.allclose(features.tensor_view(table, "block_cls_ln2").float(), expected, atol=2e-3)


def test_second_pass_is_a_hit_and_changed_inputs_are_misses(paths, tmp_path):
    base = request(paths)
    extract([base], tmp_path, log=None)
    assert extract([base], tmp_path, log=None)[1] == {"computed": 0, "cached": 1}
    changed = [
        request(paths[:-1]),  # another image list
        request(paths, transform=FixedView(centre_crop(224, small="pad", mean=(0.5,) * 3, std=(0.5,) * 3))),  # another transform
        request(paths, view=1), request(paths, seed=1),  # another view or seed
        request(paths, outputs=("block_cls",)),  # another output
    ]
    assert len({r.key() for r in [base, *changed]}) == 6
    assert extract(changed, tmp_path, log=None)[1] == {"computed": 5, "cached": 0}
    key = base.key()
    os.utime(paths[0], ns=(0, 0))  # an image rewritten in place changes the key too
    assert request(paths).key() != key


KILLED_PASS = """
import sys, time
import aigid.features as features
from aigid.features import FeatureRequest, FixedView, extract
from aigid.data.transforms import test_transform

append = features._Rows.append
features._Rows.append = lambda self, name, block: (append(self, name, block), time.sleep(0.5))  # slow enough to kill
paths = tuple(sys.argv[2:])
extract([FeatureRequest("aigid-tiny-vit", None, ("block_cls_ln2",), paths, FixedView(test_transform(224, small="pad")))],
        sys.argv[1], batch_size=1, log=None)
"""


def test_a_pass_killed_mid_write_leaves_no_entry_and_a_damaged_entry_is_recomputed(paths, tmp_path):
    req = request(paths)
    store = FeatureStore(tmp_path)
    writer = subprocess.Popen([sys.executable, "-c", KILLED_PASS, str(tmp_path), *paths])
    deadline = time.monotonic() + 120
    while not any(tmp_path.glob(".*.partial/*.npy")) and time.monotonic() < deadline and writer.poll() is None:
        time.sleep(0.05)
    writer.send_signal(signal.SIGKILL)  # mid-stream: some rows are on disk, the entry is not complete
    writer.wait()
    assert any(tmp_path.glob(".*.partial/*.npy")), "the pass was not caught mid-write"
    assert not store.path(req.key()).exists() and store.load(req, req.key()) is None  # never read as an entry
    with pytest.warns(UserWarning, match="left by a killed feature pass"):
        (table,), stats = extract([req], tmp_path, log=None)
    assert stats["computed"] == 1 and table.ok.all() and not any(tmp_path.glob(".*.partial"))  # its leftover removed
    (in_memory,), _ = extract([req], None, log=None)
    assert np.array_equal(table.features["block_cls_ln2"], in_memory.features["block_cls_ln2"])
    rows_file = store.path(req.key()) / "block_cls_ln2.npy"
    rows_file.write_bytes(rows_file.read_bytes()[:-100])  # damaged on disk
    with pytest.warns(UserWarning, match="is damaged .* recomputing it"):
        assert extract([req], tmp_path, log=None)[1] == {"computed": 1, "cached": 0}


def test_stored_tables_are_memory_maps_that_pickle_as_their_location(paths, tmp_path):
    (table,), _ = extract([request(paths)], tmp_path, log=None)
    assert isinstance(table.features["block_cls_ln2"], np.memmap)
    shipped = pickle.dumps(table)
    assert len(shipped) < 1000  # the folder's path, not the rows (as a trial receives it through Ray)
    received = pickle.loads(shipped)
    assert isinstance(received.features["block_cls_ln2"], np.memmap) and received.paths == table.paths
    assert np.array_equal(received.features["block_cls_ln2"], table.features["block_cls_ln2"])
    shutil.rmtree(table.location)
    with pytest.raises(StorageError, match="--cache-dir must be storage every node mounts"):
        pickle.loads(shipped)


def test_bf16_autocast_features_match_float32_within_tolerance(paths, tmp_path):
    """The CUDA pass runs under bf16 autocast; on CPU the same autocast must give features within
    2 % relative error (per row, L2) and cosine >= 0.999 of the float32 pass, and its own key."""
    fp32, bf16 = request(paths, outputs=("block_cls_ln2", "embedding")), request(
        paths, outputs=("block_cls_ln2", "embedding"), precision="bfloat16")
    assert fp32.key() != bf16.key()
    (exact, autocast), _ = extract([fp32, bf16], tmp_path, log=None)
    for name in fp32.outputs:
        a = torch.from_numpy(np.asarray(exact.features[name])).float().flatten(1)
        b = torch.from_numpy(np.asarray(autocast.features[name])).float().flatten(1)
        assert not torch.equal(a, b)  # autocast really ran
        relative = (a - b).norm(dim=1) / a.norm(dim=1)
        assert relative.max() < 0.02, (name, relative.max())
        assert torch.nn.functional.cosine_similarity(a, b).min() > 0.999


def test_training_views_are_seeded_per_image_and_differ_between_views(paths):
    aug = CNNDetectionAugment(224, small="pad")
    a, b, c = request(paths, transform=aug), request(paths[:3], transform=aug), request(paths, transform=aug, view=1)
    (ta, tb, tc), _ = extract([a, b, c], None, log=None)
    rows = ta.rows(tb.paths)
    assert np.array_equal(ta.features["block_cls_ln2"][rows], tb.features["block_cls_ln2"])  # same image, same view
    assert not np.array_equal(ta.features["block_cls_ln2"], tc.features["block_cls_ln2"])


def test_training_views_are_the_same_wherever_the_dataset_lies(paths, tmp_path):
    """Views are drawn per path below the dataset root, so a copied dataset gives the same features."""
    root = os.path.commonpath(paths)
    copy = tmp_path / "elsewhere"
    shutil.copytree(root, copy)
    moved = tuple(str(copy / os.path.relpath(p, root)) for p in paths)
    aug = CNNDetectionAugment(224, small="pad")
    (here, there), _ = extract([request(paths, transform=aug, root=root), request(moved, transform=aug, root=str(copy))],
                               None, log=None)
    assert np.array_equal(here.features["block_cls_ln2"], there.features["block_cls_ln2"])


def test_unknown_outputs_and_paths_are_clear_errors(paths):
    with pytest.raises(ValueError, match="unknown backbone output"):
        request(paths, outputs=("patch_soup",))
    (table,), _ = extract([request(paths[:2])], None, log=None)
    with pytest.raises(KeyError, match="no cached features"):
        table.rows([paths[3]])


def test_patch_tokens_are_the_final_layernorm_output_clip_pools_from(paths):
    visual = features._build_encoder("aigid-tiny-vit", None, "cpu")
    images = torch.stack([centre_crop(224, small="pad")(load_rgb(p)) for p in paths[:2]])
    seen = []
    hook = visual.ln_post.register_forward_hook(lambda _m, _i, out: seen.append(out))
    with torch.no_grad():
        visual(images)
        hook.remove()
        tokens = features.OUTPUTS["patch_tokens"](visual, images)
    assert torch.allclose(tokens, seen[0][:, 1:], atol=1e-5)  # the CLS token (pooled) is not among them


def direct_rows(req, visual, batch_size: int) -> dict[str, np.ndarray]:
    """What a pass that waits for each batch writes: every batch's readable images through `visual`, cast
    to float16 and read back in the loop, zeros in the rows of unreadable ones."""
    rows = {}
    for first in range(0, len(req.paths), batch_size):
        batch = req.paths[first:first + batch_size]
        readable = [i for i, p in enumerate(batch) if not p.endswith("bad.jpg")]
        images = [req.view_of(load_rgb(batch[i]), batch[i]) for i in readable]
        for name in req.outputs:
            with torch.no_grad():
                out = features.OUTPUTS[name](visual, torch.stack(images) if images else torch.zeros(1, 3, 224, 224))
            block = np.zeros((len(batch), *out.shape[1:]), np.float16)
            block[readable] = out[:len(readable)].to(torch.float16).numpy()  # (the blank image: its shape only)
            rows.setdefault(name, []).append(block)
    return {name: np.concatenate(blocks) for name, blocks in rows.items()}


def test_rows_written_behind_the_pass_are_byte_identical_to_a_pass_that_waits(paths, tmp_path):
    """The writer thread changes when rows reach the disk, never their bytes: a first batch without a
    readable image, a batch with one, and a short last batch, in memory and in a store entry."""
    (tmp_path / "images").mkdir()
    bad = [tmp_path / "images" / f"{letter}_bad.jpg" for letter in "abc"]  # sorted before `paths`
    for file in bad:
        file.write_bytes(b"not a jpeg")
    req = request((*paths, *map(str, bad)), outputs=("block_cls_ln2", "embedding"))
    visual = features._build_encoder("aigid-tiny-vit", None, "cpu")
    expected = direct_rows(req, visual, batch_size=2)
    with pytest.warns(UserWarning, match="skipping"):
        in_memory = features.compute_table(req, visual, batch_size=2)
    assert in_memory.ok.tolist() == [False] * 3 + [True] * len(paths)
    assert all(np.array_equal(in_memory.features[name], rows) for name, rows in expected.items())

    store, waited = FeatureStore(tmp_path / "store"), FeatureStore(tmp_path / "waited")
    with pytest.warns(UserWarning, match="skipping"):
        features.compute_table(req, visual, batch_size=2, folder=(partial := store.partial(req.key())))
    stored = store.install(req, req.key(), partial)
    direct = features._Rows(len(req.paths), (partial := waited.partial(req.key())))  # written in the loop, as before
    direct.start({name: rows.shape[1:] for name, rows in expected.items()})
    for name, rows in expected.items():
        direct.append(name, rows)
    direct.finish(in_memory.ok)
    waited.install(req, req.key(), partial)
    sums = [(where.path(req.key()) / "checksums.json").read_text() for where in (store, waited)]
    assert sums[0] == sums[1]
    assert np.array_equal(stored.features["embedding"], expected["embedding"])


def test_a_disk_that_fills_under_the_writer_thread_is_one_line_in_the_pass(paths, tmp_path, monkeypatch):
    """The rows are written on a thread; its full disk still stops the pass with check_room's one line."""
    write = features.RowsFile.write

    def fills_after_the_header(self, data):
        if self.file.tell() > 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        write(self, data)

    monkeypatch.setattr(features.RowsFile, "write", fills_after_the_header)
    req = request(paths)
    with pytest.raises(StorageError) as error:
        extract([req], tmp_path, batch_size=2, log=None)
    need = len(paths) * (4 * 64 * 2 + 1)
    assert "\n" not in str(error.value) and f"writes {need} bytes" in str(error.value)
    assert not list(tmp_path.glob(".*.partial")) and not FeatureStore(tmp_path).path(req.key()).exists()
