"""solution.blend.metrics.scores agrees with scikit-learn (with the zero-division choices documented in metrics.py)."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, jaccard_score, precision_recall_fscore_support

from solution.blend import metrics


def _sk(y, pred):
    return {
        "macro_f1": f1_score(y, pred, average="macro", zero_division=0),
        "micro_f1": f1_score(y, pred, average="micro", zero_division=0),
        "subset_accuracy": accuracy_score(y, pred),
        "jaccard": jaccard_score(y, pred, average="samples", zero_division=1),
    }


def _manual_bce(y, p):
    total = 0.0
    for yi, pi in zip(np.ravel(y), np.ravel(p)):
        pi = min(max(float(pi), metrics.EPS), 1 - metrics.EPS)
        total += -np.log(pi) if yi == 1 else -np.log(1 - pi)
    return total / np.size(y)


def _check(y, probs, thresholds=0.5):
    s = metrics.scores(y, probs, thresholds)
    t = np.broadcast_to(np.asarray(thresholds, dtype=float), (y.shape[1],))
    pred = (probs >= t).astype(int)
    for k, v in _sk(y, pred).items():
        assert s[k] == pytest.approx(v, abs=1e-12), k
    assert s["log_loss"] == pytest.approx(_manual_bce(y, probs), rel=1e-12)
    p, r, f, sup = precision_recall_fscore_support(y, pred, average=None, zero_division=0)
    for j in range(y.shape[1]):
        pc = s["per_class"][str(j)]
        assert pc["precision"] == pytest.approx(p[j], abs=1e-12)
        assert pc["recall"] == pytest.approx(r[j], abs=1e-12)
        assert pc["f1"] == pytest.approx(f[j], abs=1e-12)
        assert pc["support"] == sup[j] and isinstance(pc["support"], int)
        assert pc["threshold"] == t[j]
    assert s["macro_f1"] == pytest.approx(np.mean([s["per_class"][str(j)]["f1"] for j in range(y.shape[1])]))
    assert metrics.macro_f1(y, probs, thresholds) == pytest.approx(s["macro_f1"], abs=1e-15)
    return s


@pytest.mark.parametrize("seed", range(25))
def test_scores_match_sklearn_random(seed):
    rng = np.random.default_rng(seed)
    n, L = int(rng.integers(1, 80)), int(rng.integers(2, 12))  # L >= 2: sklearn's multilabel path
    rate = rng.uniform(0.02, 0.6)
    y = (rng.random((n, L)) < rate).astype(np.int8)
    # probabilities correlated with labels, sometimes exactly 0, 1 or 0.5
    probs = np.clip(0.35 * y + rng.random((n, L)) * 0.8, 0, 1)
    probs[rng.random((n, L)) < 0.05] = 0.5
    probs[rng.random((n, L)) < 0.03] = 0.0
    probs[rng.random((n, L)) < 0.03] = 1.0
    _check(y, probs)
    _check(y, probs, rng.uniform(0.05, 0.95, size=L))  # per-class thresholds
    _check(y, probs, float(rng.uniform(0.1, 0.9)))


def test_label_never_true_and_never_predicted_counts_as_zero():
    y = np.array([[1, 0, 1], [0, 0, 1], [1, 0, 0], [0, 0, 0]])
    probs = np.array([[0.9, 0.1, 0.8], [0.2, 0.0, 0.7], [0.6, 0.3, 0.1], [0.1, 0.2, 0.4]])
    s = _check(y, probs)
    assert s["per_class"]["1"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0, "threshold": 0.5}
    assert s["macro_f1"] == pytest.approx((1 + 0 + 1) / 3)  # the empty label drags macro-F1 down (Kaggle's way)
    assert s["micro_f1"] == 1.0  # ... but not micro-F1


def test_all_zero_rows_jaccard_is_one():
    y = np.zeros((4, 3), dtype=int)
    probs = np.full((4, 3), 0.1)
    s = _check(y, probs)
    assert s["jaccard"] == 1.0 and s["subset_accuracy"] == 1.0
    assert s["macro_f1"] == 0.0 and s["micro_f1"] == 0.0
    # a row with no true label but a prediction scores 0; an empty-empty row 1
    probs[0, 0] = 0.9
    s = _check(y, probs)
    assert s["jaccard"] == pytest.approx(3 / 4)


def test_mixed_rows_jaccard():
    y = np.array([[1, 1, 0], [0, 0, 0], [1, 0, 1]])
    probs = np.array([[0.9, 0.2, 0.7], [0.1, 0.1, 0.1], [0.4, 0.4, 0.9]])
    s = _check(y, probs)
    assert s["jaccard"] == pytest.approx((1 / 3 + 1 + 1 / 2) / 3)
    assert s["subset_accuracy"] == pytest.approx(1 / 3)


def test_per_class_thresholds_array():
    y = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    probs = np.array([[0.30, 0.70], [0.25, 0.80], [0.10, 0.75], [0.05, 0.60]])
    assert metrics.scores(y, probs)["macro_f1"] == pytest.approx(0.5 * (0 + 2 * 2 / (4 + 2)))
    s = _check(y, probs, np.array([0.2, 0.72]))
    assert s["macro_f1"] == 1.0 and s["subset_accuracy"] == 1.0
    assert [s["per_class"][k]["threshold"] for k in "01"] == [0.2, 0.72]


def test_threshold_is_inclusive():
    y = np.array([[1, 0], [0, 1]])
    probs = np.array([[0.5, np.nextafter(0.5, 0)], [np.nextafter(0.5, 0), 0.5]])
    s = _check(y, probs)
    assert s["macro_f1"] == 1.0
    np.testing.assert_array_equal(metrics.binarize(probs, 0.5), [[1, 0], [0, 1]])


def test_log_loss_clips_and_matches_manual():
    y = np.array([[1, 0, 1, 0]])
    probs = np.array([[1.0, 0.0, 0.0, 1.0]])  # two perfect, two maximally wrong (clipped at EPS)
    expected = (2 * -np.log1p(-metrics.EPS) + 2 * -np.log(metrics.EPS)) / 4
    assert metrics.log_loss(y, probs) == pytest.approx(expected, rel=1e-9)
    assert np.isfinite(metrics.log_loss(y, probs))
    rng = np.random.default_rng(3)
    y = (rng.random((30, 5)) < 0.4).astype(int)
    p = rng.random((30, 5))
    assert metrics.log_loss(y, p) == pytest.approx(_manual_bce(y, p), rel=1e-12)
    from sklearn.metrics import log_loss as sk_log_loss
    assert metrics.log_loss(y, p) == pytest.approx(sk_log_loss(y.ravel(), p.ravel()), rel=1e-9)


def test_labels_name_per_class_and_summary_line():
    y = np.array([[1, 0], [0, 1]])
    s = metrics.scores(y, np.array([[0.9, 0.1], [0.2, 0.8]]), labels=["joy", "fear"])
    assert list(s["per_class"]) == ["joy", "fear"]
    line = metrics.summary_line(s)
    assert line.startswith("macro_f1=1.0000 micro_f1=1.0000 subset_accuracy=1.0000 jaccard=1.0000 log_loss=")


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.scores(np.zeros((3, 2)), np.zeros((3, 3)))
