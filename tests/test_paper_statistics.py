"""Each table's statistic, hand-computed on tiny trees (issue 20): the mean covers the paper's test
sets only, DiffusionForensics' Average is APN Table 2's nine columns, RINE's rules pick by a
continuous statistic, never by trial order."""
import runpy
import shutil
from pathlib import Path

import numpy as np
import pytest

from aigid.data.layouts import UFD_TEST_SETS, scan
from aigid.data.subsets import REAL_SET, reals_apart
from aigid.data.synthetic import make_synthetic
from aigid.methods import METHODS
from aigid.metrics import binary_metrics, per_subset_summary
from aigid.report import averaged_note
from aigid.trials import FINISHED, Trial

SWEEPS = Path(__file__).parent.parent / "sweeps"


def test_each_method_names_its_papers_test_sets():
    assert len(METHODS["rine"].test_sets.paper("ufd")) == 20  # RINE §4.1, no whichfaceisreal
    assert "whichfaceisreal" not in METHODS["rine"].test_sets.paper("ufd")
    for name in ("gendet", "univfd"):  # GenDet Tables 1-2 and UnivFD's: 19, no stylegan2 either
        sets = METHODS[name].test_sets.paper("ufd")
        assert len(sets) == 19 and not {"stylegan2", "whichfaceisreal"} & set(sets) and set(sets) <= set(UFD_TEST_SETS)
    assert len(METHODS["apn"].test_sets.paper("diffusionforensics")) == 9  # Table 2: Real + 8 generators


def test_the_mean_covers_only_the_papers_sets_and_extras_stay_columns():
    per_subset = {"progan": {"acc": 1.0, "ap": 1.0}, "stylegan": {"acc": 0.5, "ap": 0.7},
                  "whichfaceisreal": {"acc": 0.0, "ap": 0.1}}
    averaged = METHODS["rine"].test_sets.averaged("ufd", per_subset)
    assert averaged == ["progan", "stylegan"]
    flat = per_subset_summary(per_subset, averaged=averaged)
    assert flat["test/mean/acc"] == pytest.approx(0.75, abs=1e-12)
    assert flat["test/mean/ap"] == pytest.approx(0.85, abs=1e-12)
    assert flat["test/whichfaceisreal/acc"] == 0.0  # reported, not averaged
    trial = Trial("t s0", {}, FINISHED, final=flat, history=(flat,), layout="ufd")
    note = averaged_note([trial], METHODS["rine"].test_sets)
    assert note.startswith("mean over 2 of the paper's 20 test sets")
    assert "the data lacks stylegan2" in note and "shown, not averaged: whichfaceisreal" in note
    # a layout the paper never used: every set found is averaged
    assert METHODS["rine"].test_sets.averaged("folder", per_subset) == sorted(per_subset)


def test_gendet_on_a_ufd_tree_with_extra_folders_averages_its_19(tmp_path):
    """A real UFD tree with stylegan2/ and whichfaceisreal/ beside the paper's sets: GenDet's mean
    leaves both out."""
    root = make_synthetic(tmp_path / "ufd", layout="ufd", n_train=1, n_test=2)
    for extra in ("stylegan2", "whichfaceisreal"):
        shutil.copytree(root / "test" / "stylegan", root / "test" / extra)
    index = scan(root)
    found = index.subsets(index.test_split)
    assert {"stylegan2", "whichfaceisreal"} <= set(found)
    assert not {"stylegan2", "whichfaceisreal"} & set(METHODS["gendet"].test_sets.averaged("ufd", found))


def test_diffusionforensics_average_is_real_plus_each_generators_fakes(tmp_path):
    """APN Table 2 on a DF tree with two generators: Average = (real + fake1 + fake2) / 3 to 1e-9."""
    root = make_synthetic(tmp_path / "df", layout="diffusionforensics", n_train=1, n_test=3)
    index = scan(root)
    pairs = {g: index.select(index.test_split, subsets=[g], groups=["lsun_bedroom"]) for g in ("adm", "iddpm")}
    columns = reals_apart(pairs)
    assert list(columns) == [REAL_SET, "adm", "iddpm"]
    assert {s.label for s in columns[REAL_SET]} == {0} and len(columns[REAL_SET]) == 3  # the reals once, not twice
    assert all({s.label for s in columns[g]} == {1} for g in ("adm", "iddpm"))
    rng = np.random.default_rng(0)
    scores = {c: rng.random(len(samples)) for c, samples in columns.items()}
    per_subset = {c: binary_metrics(scores[c], [s.label for s in columns[c]]) for c, samples in columns.items()}
    averaged = METHODS["apn"].test_sets.averaged("diffusionforensics", per_subset)
    flat = per_subset_summary(per_subset, averaged=averaged)
    real = np.mean(scores[REAL_SET] < 0.5)
    fakes = [np.mean(scores[g] >= 0.5) for g in ("adm", "iddpm")]
    assert flat["test/mean/acc"] == pytest.approx((real + sum(fakes)) / 3, abs=1e-9)
    assert np.isnan(flat["test/adm/ap"])  # AP of a one-class column says nothing, and is not averaged
    assert "test/mean/ap" not in flat


def _rine_trial(q, xi, seed, test, val_acc, val_loss):
    final = {"test/mean/acc": test, "test/mean/ap": test, "val/acc": val_acc, "val/ap": 1.0, "val/loss": val_loss,
             "test/progan/acc": test, "test/progan/ap": test}
    config = {"backbone": "aigid-tiny-vit", "classes": 4, "q": q, "proj_dim": 128, "xi": xi, "seed": seed}
    return Trial(f"q={q} xi={xi} s{seed}", config, FINISHED, final=final, history=(final,), layout="ufd")


def test_rine_rules_pool_seeds_and_break_val_ties_by_loss():
    rine = runpy.run_path(str(SWEEPS / "rine_grid.py"))
    trials = [  # val ACC saturates at 1.0 for both points; the second has the lower val BCE
        _rine_trial(1, 0.1, 0, test=0.90, val_acc=1.0, val_loss=0.30),
        _rine_trial(1, 0.1, 1, test=0.60, val_acc=1.0, val_loss=0.30),  # the best single seed's point pools lower
        _rine_trial(2, 0.2, 0, test=0.80, val_acc=1.0, val_loss=0.10),
        _rine_trial(2, 0.2, 1, test=0.80, val_acc=1.0, val_loss=0.10),
    ]
    setting = ("aigid-tiny-vit", 4)
    for order in (trials, trials[::-1]):  # never trial order
        assert rine["best_points"](order, rine["by_paper_rule"])[setting][0].config["q"] == 2  # 0.80 > (0.90+0.60)/2
        assert rine["best_points"](order, rine["by_val_rule"])[setting][0].config["q"] == 2  # tie at 2.0, loss 0.10
    text = str(rine["table"](trials))
    assert "test ACC+AP (§4.4)" in text and "val ACC+AP" in text


def _lol_trial(train, accs_by_epoch):
    """A finished LoL trial trained on `train` whose test/<s>/acc over epochs is `accs_by_epoch[s]`."""
    epochs = len(next(iter(accs_by_epoch.values())))
    history = []
    for e in range(epochs):
        row = {"epoch": e + 1, **{f"test/{s}/acc": v[e] for s, v in accs_by_epoch.items()},
               **{f"test/{s}/ap": v[e] for s, v in accs_by_epoch.items()}}
        row["test/mean/acc"] = row["test/mean/ap"] = float(np.mean([v[e] for v in accs_by_epoch.values()]))
        history.append(row)
    return Trial(f"train_subset={train} s0", {"train_subset": train, "seed": 0}, FINISHED, final=history[-1],
                 history=tuple(history), layout="genimage")


def test_lol_matrix_is_the_final_checkpoint_and_table1_its_column_means():
    lol = runpy.run_path(str(SWEEPS / "lol_cross_generator.py"))
    trials = [_lol_trial("adm", {"adm": [0.5, 0.6, 0.7, 0.8, 0.9, 1.0], "sdv14": [0.5] * 5 + [0.6]}),
              _lol_trial("sdv14", {"adm": [0.5] * 5 + [0.8], "sdv14": [0.9] * 6})]
    rows, tests, values = lol["matrix"](trials)
    assert rows == ["adm", "sdv14"] and tests == ["adm", "sdv14"]
    np.testing.assert_allclose(values, [[1.0, 0.6], [0.8, 0.9]])  # the last epoch, not a five-epoch mean
    table1 = str(lol["table1"](trials))
    assert "90.0" in table1 and "75.0" in table1 and "82.5" in table1  # columns (1.0+0.8)/2, (0.6+0.9)/2; mean
    fig6 = str(lol["fig6_table"](trials))
    assert "66.0 (±8.6)" in fig6  # adm's Avg. ACC over its final five epochs: 0.55, 0.6, 0.65, 0.7, 0.8
