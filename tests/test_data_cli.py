"""`aigid data inspect` and `aigid data make-synthetic`, through a throwaway top-level parser."""
import argparse

import pytest

from aigid.data.cli import add_data_commands
from aigid.data.synthetic import make_synthetic


def _run(*argv) -> int:
    parser = argparse.ArgumentParser(prog="aigid")
    add_data_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["data", *argv])
    return args.func(args)


@pytest.fixture
def messy_synthetic(tmp_path):
    root = make_synthetic(tmp_path / "synth", n_train=2, n_test=1)
    sdv14 = root / "imagenet_ai_0419_sdv4" / "val" / "ai"
    (sdv14 / "README.txt").write_text("notes")
    victim = next(sdv14.glob("fake_0000.*"))
    victim.write_bytes(victim.read_bytes()[:300])  # truncated
    return root, victim


def test_inspect_reports_layout_counts_and_problems(messy_synthetic, capsys):
    root, victim = messy_synthetic
    assert _run("inspect", str(root)) == 0
    out = capsys.readouterr().out
    assert "layout: genimage (detected)" in out
    assert "synthetic: yes" in out and "not a real benchmark" in out
    assert "sdv14       train        2        2           0" in out
    assert "sdv14       val          1        0           1" in out  # the table counts readable images
    assert "wukong      val          1        1           0" in out
    assert "total                   24       23           1" in out
    assert "non-image file(s) of kind '.txt'" in out
    assert "unreadable images: 1 of 48" in out and str(victim) in out


def test_inspect_with_forced_layout_and_no_check(messy_synthetic, capsys):
    root, _ = messy_synthetic
    assert _run("inspect", str(root / "imagenet_ai_0424_wukong"), "--layout", "genimage", "--skip-check") == 0
    out = capsys.readouterr().out
    assert "layout: genimage (given)" in out and "unreadable" not in out


def test_inspect_missing_path_exits_1_without_traceback(tmp_path, capsys):
    assert _run("inspect", str(tmp_path / "nope")) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: dataset path") and "does not exist" in captured.err
    assert "Traceback" not in captured.err


def test_inspect_unknown_tree_lists_layouts(tmp_path, capsys):
    assert _run("inspect", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert all(f"  {name}:" in err for name in ("genimage", "ufd", "diffusionforensics", "folder"))


def test_make_synthetic(tmp_path, capsys):
    out = tmp_path / "ufd"
    assert _run("make-synthetic", str(out), "--layout", "ufd", "--n-train", "1", "--n-test", "1") == 0
    assert "synthetic ufd stand-in (not real data): 24 images" in capsys.readouterr().out
    assert _run("make-synthetic", str(out), "--layout", "ufd") == 2
    assert "--force" in capsys.readouterr().err
    assert _run("make-synthetic", str(out), "--layout", "ufd", "--n-train", "2", "--n-test", "1", "--force") == 0
    assert "32 images" in capsys.readouterr().out
