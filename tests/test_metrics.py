"""Macro metrics over the classes present in the test labels, checked against a hand computation."""
import warnings

import numpy as np
import pytest

from dcatkit.metrics import classification_metrics


def _by_hand(y_true, y_pred, num_classes):
    """Per-class precision / recall / F1 from TP, FP, FN counts, averaged over classes in y_true."""
    present = sorted(set(y_true))
    p, r, f = [], [], []
    for c in present:
        tp = sum(t == c and q == c for t, q in zip(y_true, y_pred))
        fp = sum(t != c and q == c for t, q in zip(y_true, y_pred))
        fn = sum(t == c and q != c for t, q in zip(y_true, y_pred))
        pc = tp / (tp + fp) if tp + fp else 0.0
        rc = tp / (tp + fn)
        p.append(pc), r.append(rc), f.append(2 * pc * rc / (pc + rc) if pc + rc else 0.0)
    conf = np.zeros((num_classes, num_classes), int)
    for t, q in zip(y_true, y_pred):
        conf[t, q] += 1
    absent = [c for c in range(num_classes) if c not in present]
    return np.mean(p), np.mean(r), np.mean(f), conf, absent


def test_macro_over_present_classes_and_absent_ones_reported():
    # 5 classes; class 3 never occurs in y_true but is predicted once, class 4 neither occurs nor is predicted
    y_true = [0, 0, 0, 1, 1, 2, 2, 2, 2, 1]
    y_pred = [0, 1, 0, 1, 3, 2, 2, 0, 2, 1]
    p, r, f, conf, absent = _by_hand(y_true, y_pred, 5)
    assert absent == [3, 4] and np.isclose(f, (2 / 3 + 2 / 3 + 6 / 7) / 3)   # F1 per class: 2/3, 2/3, 6/7
    with pytest.warns(UserWarning, match=r"2 of 5 classes have no sample.*\[3, 4\]"):
        m = classification_metrics(y_true, y_pred, 5)
    assert np.isclose(m["precision"], p) and np.isclose(m["recall"], r) and np.isclose(m["f1"], f)
    assert m["absent_classes"] == [3, 4] and m["accuracy"] == 0.7
    np.testing.assert_array_equal(m["confusion"], conf)       # all 5 classes, incl. the absent ones
    assert m["confusion"].shape == (5, 5) and m["confusion"][1, 3] == 1


def test_all_classes_present_matches_hand_computation_without_warning():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 4, 50).tolist()
    y_pred = [t if rng.random() < 0.6 else int(rng.integers(0, 4)) for t in y_true]
    p, r, f, conf, absent = _by_hand(y_true, y_pred, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = classification_metrics(y_true, y_pred, 4)
    assert absent == [] and m["absent_classes"] == []
    np.testing.assert_allclose([m["precision"], m["recall"], m["f1"]], [p, r, f])
    np.testing.assert_array_equal(m["confusion"], conf)


def test_a_present_class_never_predicted_scores_zero_precision():
    """A model that predicts class 0 for everything: class 1 is present but never predicted, so
    its precision is 0 (no prediction can be right), not 1: macro precision (0.5 + 0) / 2 = 0.25,
    recall (1 + 0) / 2 = 0.5, F1 (2/3 + 0) / 2 = 1/3, as the hand computation gives."""
    y_true, y_pred = [0, 0, 1, 1], [0, 0, 0, 0]
    p, r, f, _, _ = _by_hand(y_true, y_pred, 2)
    m = classification_metrics(y_true, y_pred, 2)
    assert (p, r, f) == pytest.approx((0.25, 0.5, 1 / 3))
    assert (m["precision"], m["recall"], m["f1"]) == pytest.approx((p, r, f))


def test_bad_labels():
    with pytest.raises(ValueError, match=r"y_pred holds labels in \[0, 3\], expected \[0, 2\]"):
        classification_metrics([0, 1], [0, 3], 3)
    with pytest.raises(ValueError, match="as many predictions"):
        classification_metrics([0, 1], [0], 3)
