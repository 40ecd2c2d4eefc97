"""One rule for "best" per method (aigid.selection): the score the trainable reports, the tables'
pooling of seeds, and the formats a table is exported in."""
import math

import pytest

from aigid.methods import GENDET, LOL, RINE
from aigid.report import render
from aigid.selection import SCORE
from aigid.trials import FAILED, FINISHED, Trial, best_point


def epochs(*accs, key="test/mean/acc"):
    return [{"epoch": n + 1, key: acc} for n, acc in enumerate(accs)]


def test_lol_scores_the_mean_of_its_last_five_epochs():
    config = {"stability_epochs": 5}
    assert LOL.selection.score(epochs(0.1, 0.5, 0.6, 0.7, 0.8, 0.9), config) == pytest.approx(0.7)
    assert LOL.selection.score(epochs(0.4, 0.6), config) == pytest.approx(0.5)  # fewer epochs so far: all of them
    assert math.isnan(LOL.selection.score([], config))
    assert "last 5 epochs" in LOL.selection.describe(config) and "LoL §4.3" in LOL.selection.describe(config)


def test_rine_selects_on_acc_plus_ap_of_the_split_its_config_names():
    last = {"val/acc": 0.7, "val/ap": 0.8, "test/mean/acc": 0.5, "test/mean/ap": 0.6}
    assert RINE.selection.score([last], {"select_on": "val"}) == pytest.approx(1.5)
    assert RINE.selection.score([last], {"select_on": "test"}) == pytest.approx(1.1)
    assert RINE.selection.chance({"select_on": "val"}) == 1.0
    assert GENDET.selection.score(epochs(0.2, 0.9), {}) == pytest.approx(0.9)  # the final epoch


def trial(name, score, seed=0, status=FINISHED):
    return Trial(f"{name} s{seed}", {"x": name, "seed": seed}, status, history=({SCORE: score},))


def test_the_best_point_pools_its_seeds_as_the_tables_do():
    trials = [trial("a", 0.9, 0), trial("a", 0.5, 1), trial("b", 0.8, 0), trial("b", 0.8, 1),
              trial("c", 0.99, 0, status=FAILED)]
    here, score = best_point(trials)
    assert {t.point for t in here} == {"b"} and score == pytest.approx(0.8)  # a's best seed alone would win
    assert best_point([trial("a", math.nan)]) is None


def test_a_table_exports_as_markdown_latex_and_csv():
    table = render([["mask \\ aspect", "(1, 1)"], ["(0, 0.2)", "60.0 (±1.0)"], ["a|b", "—"]], title="LoL Table 3")
    assert str(table).splitlines()[0] == "LoL Table 3"
    markdown = table.formatted("github")
    assert markdown.startswith("**LoL Table 3**") and "| (0, 0.2)" in markdown and "a\\|b" in markdown
    latex = table.formatted("latex_booktabs")
    assert "\\toprule" in latex and "60.0 (±1.0)" in latex
    assert table.csv().splitlines()[1] == "\"(0, 0.2)\",60.0 (±1.0)"


def test_the_closing_lines_name_trials_that_predict_one_class():
    """RINE's score is ACC + AP and AP varies, so trials can differ in score while each calls every
    image real: the closing lines count them. The per-class accuracies tell, whatever the balance."""
    from trainables.summary import outcome

    def ended(name, score, real_fake):
        final = {SCORE: score, **{f"test/{s}/{k}": v for s, (r, f) in real_fake.items()
                                  for k, v in (("real_acc", r), ("fake_acc", f))}}
        return Trial(f"{name} s0", {"x": name, "seed": 0}, FINISHED, final=final, history=(final,))

    learned = ended("a", 1.8, {"progan": (0.9, 0.8), "crn": (0.7, 0.2)})
    all_real = [ended(n, score, {"progan": (1.0, 0.0), "crn": (1.0, 0.0)}) for n, score in (("b", 1.1), ("c", 1.2))]
    mixed = ended("d", 1.0, {"progan": (1.0, 0.0), "crn": (0.0, 1.0)})  # one class per set, not for every image
    line = "2 of 4 finished trials call every test image real, or every one fake"
    trials = [learned, *all_real, mixed]
    assert line in outcome(trials, best_point(trials), RINE.selection)
    assert "2 of 2 finished trials call every test image" in outcome(all_real, best_point(all_real), RINE.selection)
    assert "call every test image" not in outcome([learned, mixed], best_point([learned, mixed]), RINE.selection)
