"""sweeps/compare.py: the comparison table and figure on hand-built trials, its argument handling,
and one real end-to-end run (Ray, MLflow store in tmp_path) of all five detectors on the stand-in."""
import json
import os
import runpy
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from aigid.trials import FAILED, FINISHED, Trial

COMPARE = runpy.run_path(str(Path(__file__).parent.parent / "sweeps" / "compare.py"))
SETS = ("progan", "stylegan")


def trial(detector, perturb="none", seed=0, acc=0.8, ap=0.9, loss=0.5, status=FINISHED):
    """A finished trial's last epoch: per test set and mean ACC / AP / loss, as a trainer reports them."""
    row = {"epoch": 1, **{f"test/{s}/{k}": v for s in (*SETS, "mean") for k, v in
                          (("acc", acc), ("ap", ap), ("loss", loss))}}
    config = {DETECTOR: detector, "test_perturb": perturb, "seed": seed}
    history = (row,) if status == FINISHED else ()
    return Trial(f"{detector} {perturb} s{seed}", config, status, final=row if history else {}, history=history,
                 layout="ufd")


DETECTOR = COMPARE["DETECTOR"]
DETECTORS = list(COMPARE["DETECTORS"])


def test_every_registered_detector_takes_part_on_one_split():
    from aigid.methods import METHODS

    assert DETECTORS == list(METHODS)
    for name in DETECTORS:
        sweep = COMPARE["sweep_of"](name, ["jpeg=30"])
        assert sweep.method.layout == "ufd" and sweep.method.name == name
        assert sweep.axes(True)["test_perturb"] == ["none", "jpeg=30"]
        untagged = replace(trial(name), config={"test_perturb": "none", "seed": 0})  # as the detector's sweep has it
        assert sweep.tables([untagged])[0].rows[1][:2] == (name, "none")


def test_tagged_trials_carry_their_detector_so_seeds_pool_per_detector_not_across():
    from aigid.trials import best_point

    plain = replace(trial("x"), name="test_perturb=none s0", config={"test_perturb": "none", "seed": 0},
                    history=({"epoch": 1, "score": 0.5},))
    both = COMPARE["tagged"]([plain], "rine") + COMPARE["tagged"]([plain], "lol")
    assert [t.point for t in both] == ["detector=rine test_perturb=none", "detector=lol test_perturb=none"]
    assert len(best_point(both)[0]) == 1


def test_table_has_a_row_per_detector_and_perturbation_with_each_test_set_and_the_mean():
    trials = [trial(d, p, acc=0.7 + 0.01 * i, loss=0.4 + 0.1 * (p != "none"))
              for i, d in enumerate(DETECTORS) for p in ("none", "jpeg=5")]
    table = COMPARE["table"](trials)
    header, *body = table.rows
    assert header == (DETECTOR, "test_perturb", *SETS, "mean")
    assert [(r[0], r[1]) for r in body] == [(d, p) for d in DETECTORS for p in ("none", "jpeg=5")]
    assert body[0][2] == "70.0 (±0.0) / 90.0 (±0.0)" and body[-1][-1] == "74.0 (±0.0) / 90.0 (±0.0)"
    for name in DETECTORS:  # each detector's mean is its own paper's rule, said in the title
        assert f"{name}: mean over" in table.title


def test_a_perturbation_that_changed_no_score_is_marked_not_passed_off():
    clean, same = trial("rine"), trial("rine", "blur=3")  # bit-for-bit the clean scores: not applied
    moved = trial("univfd", "blur=3", loss=0.61)
    rows = COMPARE["table"]([clean, same, trial("univfd"), moved]).rows
    assert "NO EFFECT" in rows[2][1] and rows[4][1] == "blur=3"


def test_failed_trials_show_as_failed():
    rows = COMPARE["table"]([trial("lol"), trial("lol", "jpeg=5", status=FAILED)]).rows
    assert rows[2][1] == "jpeg=5" and rows[2][-1] == "failed / failed"


def assert_png(path):
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] >= 400


def test_figure_is_bars_when_clean_and_the_robustness_curves_when_perturbed(tmp_path):
    clean = [trial(d, acc=0.6 + 0.05 * i) for i, d in enumerate(DETECTORS)]
    bars = COMPARE["figures"](clean, str(tmp_path), True)
    assert os.path.basename(bars) == "detectors.png"
    assert_png(bars)
    perturbed = clean + [trial(d, p, acc=0.55) for d in DETECTORS for p in ("jpeg=50", "jpeg=10")]
    curves = COMPARE["figures"](perturbed, str(tmp_path), True)
    assert os.path.basename(curves) == "robustness.png"
    assert_png(curves)


def test_the_figure_names_a_detector_whose_scores_no_perturbation_changed():
    trials = [trial("rine"), trial("rine", "jpeg=5"), trial("univfd"), trial("univfd", "jpeg=5", loss=0.7)]
    assert [t.config[DETECTOR] for t in COMPARE["marked"](trials)] == ["rine (NO EFFECT)"] * 2 + ["univfd"] * 2


def test_bad_perturbation_is_one_line_and_exit_2(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        COMPARE["main"](["--dry-run", "--perturb", "jpg=5", "--storage", str(tmp_path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "jpg=5" in err and "\n" not in err


def test_help_describes_the_comparison_its_perturb_flag_and_each_detectors_best_rule(capsys):
    with pytest.raises(SystemExit) as exit_:
        COMPARE["main"](["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python sweeps/compare.py") and "--perturb SPEC" in out
    assert "LoL §4.3" in out and "RINE §4.4" in out and "aigid config <detector>" in out


def test_dry_run_lists_each_detectors_trials(capsys, tmp_path, offline_cwd):
    offline_cwd("ufd")  # the stand-in is looked for under the working directory
    assert COMPARE["main"](["--smoke", "--dry-run", "--perturb", "jpeg=5", "blur=3"]) == []
    out = capsys.readouterr().out
    for name in DETECTORS:
        assert f"compare: {name}: 3 trials" in out
    assert out.count("'test_perturb': 'blur=3'") == 5
    assert out.count("no --data given") == 1  # five sweeps, one stand-in, said once


@pytest.mark.slow
def test_five_detectors_finish_under_one_mlflow_parent(ray_session, tmp_path, offline_cwd, capsys):
    """Real Ray, a real MLflow store: five detectors, a row each, a child run each below one parent."""
    from mlflow import MlflowClient

    offline_cwd("ufd")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    trials = COMPARE["main"](["--smoke", "--name", "cmp", "--storage", str(tmp_path / "runs"),
                              "--cache-dir", str(tmp_path / "cache"), "--mlflow-uri", uri])
    assert sorted({t.config[DETECTOR] for t in trials}) == sorted(DETECTORS) and all(t.finished for t in trials)
    out = capsys.readouterr().out
    report = tmp_path / "runs" / "cmp" / "report"
    rows = (report / "table.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 5 and all(row.split(",")[1] == "none" for row in rows[1:])
    assert "All detectors on one ufd training split" in out
    assert_png(report / "detectors.png")
    assert len(json.loads((report / "trials.json").read_text())) == 5
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("compare").experiment_id
    parent = client.search_runs([experiment], "tags.aigid_run = 'cmp'")[0]
    assert parent.info.status == "FINISHED"
    children = client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert sorted(c.data.tags["method"] for c in children) == sorted(DETECTORS)
    for child in children:  # each detector's trials nest below its child
        below = client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{child.info.run_id}'")
        assert len(below) == 1 and below[0].info.status == "FINISHED"
