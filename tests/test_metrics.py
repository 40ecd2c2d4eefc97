import math

import numpy as np
import pytest

from aigid.metrics import average_precision, binary_metrics, mean_std, per_subset_summary


def test_average_precision_hand_computed():
    # ranks: fake(P=1, R=.5), real, fake(P=2/3, R=1), real -> AP = .5*1 + .5*2/3
    assert average_precision([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]) == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert average_precision([0.1, 0.2, 0.3], [1, 1, 0]) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert average_precision([0.5, 0.5, 0.5], [1, 0, 0]) == pytest.approx(1 / 3)  # one tied threshold
    assert average_precision([0.9, 0.1], [1, 0]) == 1.0
    assert math.isnan(average_precision([0.3, 0.4], [0, 0]))


def test_ties_do_not_depend_on_order():
    scores, labels = [0.5, 0.5, 0.9, 0.1], [0, 1, 1, 0]
    assert average_precision(scores, labels) == average_precision(scores[::-1], labels[::-1])


def test_binary_metrics_hand_computed():
    m = binary_metrics([0.2, 0.7, 0.5, 0.4, 0.9], [0, 0, 1, 1, 1])
    # predictions at 0.5 (>= is fake): 0, 1, 1, 0, 1 -> correct: T F T F T
    assert m["acc"] == pytest.approx(3 / 5)
    assert m["real_acc"] == pytest.approx(1 / 2)
    assert m["fake_acc"] == pytest.approx(2 / 3)
    assert m["n"] == 5
    with pytest.raises(ValueError, match="differ in length"):
        binary_metrics([0.1], [0, 1])


def test_per_subset_summary_is_unweighted_mean():
    flat = per_subset_summary({"adm": {"acc": 1.0, "ap": 0.5}, "glide": {"acc": 0.5, "ap": 1.0}})
    assert flat["test/adm/acc"] == 1.0 and flat["test/glide/ap"] == 1.0
    assert flat["test/mean/acc"] == pytest.approx(0.75)
    assert flat["test/mean/ap"] == pytest.approx(0.75)


def test_mean_std():
    assert mean_std([0.9, 0.91, 0.92, 0.93, 0.94]) == pytest.approx((0.92, np.std([0.9, 0.91, 0.92, 0.93, 0.94])))
    assert all(math.isnan(v) for v in mean_std([]))
