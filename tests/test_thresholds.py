"""Per-class threshold tuning: exact best F1, reproducible with `probs >= threshold`, ties kept together."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from solution.blend import metrics, thresholds
from solution.blend.thresholds import best_threshold, tune


def f1_at(y, p, t) -> float:
    return float(f1_score(y, (np.asarray(p) >= t).astype(int), zero_division=0))


def brute_force(y, p):
    """(best F1, smallest predicted-positive count reaching it) over every cut `p >= v`, v a distinct value."""
    best, best_k = 0.0, 0
    for v in sorted(set(np.asarray(p).tolist()), reverse=True):
        pred = np.asarray(p) >= v
        f = f1_at(y, p, v)
        if f > best + 1e-12:
            best, best_k = f, int(pred.sum())
    return best, best_k


def _random_label(rng):
    n = int(rng.integers(1, 60))
    y = (rng.random(n) < rng.uniform(0.05, 0.7)).astype(int)
    p = np.clip(0.3 * y + rng.random(n) * 0.8, 0, 1)
    if rng.random() < 0.5:  # many ties
        p = np.round(p, 1)
    return y, p


@pytest.mark.parametrize("seed", range(40))
def test_best_threshold_is_exact_and_reproducible(seed):
    rng = np.random.default_rng(seed)
    y, p = _random_label(rng)
    t, f = best_threshold(y, p)
    assert 0.0 <= t <= 1.0
    assert f1_at(y, p, t) == pytest.approx(f, abs=1e-12)  # probs >= threshold reproduces the F1 returned
    best, best_k = brute_force(y, p)
    assert f == pytest.approx(best, abs=1e-12)  # no cut does better
    if y.sum() > 0:
        assert int((p >= t).sum()) == best_k  # among equal F1, the fewest positives (highest threshold)
    assert f >= f1_at(y, p, 0.5) - 1e-12


@pytest.mark.parametrize("seed", range(5))
def test_tuned_f1_at_least_f1_at_half_every_label(seed):
    rng = np.random.default_rng(100 + seed)
    n, L = 200, 11
    y = (rng.random((n, L)) < rng.uniform(0.03, 0.4, size=L)).astype(np.int8)
    probs = np.clip(rng.normal(0.3 + 0.3 * y, 0.2), 0, 1)
    t = tune(y, probs)
    assert t.shape == (L,)
    tuned = metrics.scores(y, probs, t)
    half = metrics.scores(y, probs, 0.5)
    for j in range(L):
        f_t = tuned["per_class"][str(j)]["f1"]
        assert f_t >= half["per_class"][str(j)]["f1"] - 1e-12
        assert f_t == pytest.approx(best_threshold(y[:, j], probs[:, j])[1], abs=1e-12)
    assert tuned["macro_f1"] >= half["macro_f1"]


def test_exact_small_cases():
    # separable: cut halfway between the lowest positive and the highest negative
    t, f = best_threshold(np.array([1, 1, 0, 0]), np.array([0.9, 0.8, 0.3, 0.2]))
    assert (t, f) == (pytest.approx(0.55), 1.0)
    # unsorted input gives the same answer
    t, f = best_threshold(np.array([0, 1, 0, 1]), np.array([0.3, 0.8, 0.2, 0.9]))
    assert (t, f) == (pytest.approx(0.55), 1.0)
    # one negative above a positive: taking all three (F1 = 4/5) beats taking the top one (2/3)
    t, f = best_threshold(np.array([1, 0, 1, 0]), np.array([0.9, 0.7, 0.6, 0.1]))
    assert f == pytest.approx(0.8) and t == pytest.approx(0.35)
    # everything positive: the cut is below the lowest probability
    t, f = best_threshold(np.array([1, 1, 1]), np.array([0.4, 0.2, 0.3]))
    assert f == 1.0 and t == pytest.approx(0.1)
    # a single positive row
    t, f = best_threshold(np.array([1]), np.array([0.7]))
    assert f == 1.0 and 0.7 >= t > 0


def test_no_positive_predicts_none():
    y = np.zeros(5, dtype=int)
    p = np.array([0.9, 0.1, 0.95, 0.3, 0.2])
    t, f = best_threshold(y, p)
    assert f == 0.0 and t > 0.95 and not (p >= t).any()
    t, f = best_threshold(np.zeros(3, dtype=int), np.array([1.0, 0.2, 0.1]))
    assert f == 0.0 and t == 1.0
    assert best_threshold(np.array([], dtype=int), np.array([])) == (0.5, 0.0)


def test_ties_all_in():
    y = np.array([1, 1, 1, 0, 0])
    p = np.array([0.9, 0.7, 0.7, 0.7, 0.1])
    t, f = best_threshold(y, p)
    # cuts: {0.9} F1 = 2/4, {0.9, 0.7 x3} F1 = 6/7, all F1 = 6/8; the tie can't be split
    assert f == pytest.approx(6 / 7) and t == pytest.approx(0.4)
    assert (p >= t).tolist() == [True, True, True, True, False]


def test_ties_all_out():
    y = np.array([1, 1, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.6, 0.6, 0.6, 0.6, 0.6, 0.1])
    t, f = best_threshold(y, p)
    # splitting the tie would allow F1 1.0 (top 2 by index), but tied rows must be all in or all out
    assert f == pytest.approx(2 / 3)  # {0.9}: 2*1/(1+2) beats {0.9, 0.6 x5}: 2*2/(6+2)
    assert t == pytest.approx(0.75)
    pred = p >= t
    assert len(set(pred[p == 0.6])) == 1
    assert f1_at(y, p, t) == pytest.approx(f)


def test_equal_f1_goes_to_higher_threshold():
    y = np.array([1, 0, 0, 1, 0])
    p = np.array([0.9, 0.8, 0.8, 0.7, 0.1])
    # {0.9}: 2/3; {0.9, 0.8, 0.8, 0.7}: 2*2/(4+2) = 2/3 -> the fewer positives win
    t, f = best_threshold(y, p)
    assert f == pytest.approx(2 / 3) and t == pytest.approx(0.85)


def test_adjacent_floats_reproduce_f1():
    """The midpoint of two adjacent floats rounds onto one of them: the lower one must stay out."""
    hi = np.nextafter(0.5, 1.0)
    y, p = np.array([1, 0]), np.array([hi, 0.5])
    t, f = best_threshold(y, p)
    assert f == 1.0
    assert (p >= t).tolist() == [True, False]
    for lo in (0.1, 0.3, 1e-300, 0.0):
        p = np.array([np.nextafter(lo, 1.0), lo])
        t, f = best_threshold(y, p)
        assert (p >= t).tolist() == [True, False] and f == 1.0, lo


def test_tune_shrink_moves_toward_half():
    rng = np.random.default_rng(7)
    y = (rng.random((150, 6)) < 0.25).astype(int)
    probs = np.clip(rng.normal(0.25 + 0.3 * y, 0.15), 0, 1)
    t0 = tune(y, probs)
    np.testing.assert_array_equal(t0, [best_threshold(y[:, j], probs[:, j])[0] for j in range(6)])
    prev = np.abs(t0 - 0.5)
    for s in (0.25, 0.5, 0.75):
        ts = tune(y, probs, shrink=s)
        np.testing.assert_allclose(ts, (1 - s) * t0 + s * 0.5)
        dist = np.abs(ts - 0.5)
        assert (dist <= prev + 1e-15).all()
        prev = dist
    np.testing.assert_allclose(tune(y, probs, shrink=1.0), 0.5)
    np.testing.assert_allclose(tune(y, probs, shrink=0.5, center=0.3), 0.5 * t0 + 0.15)


# --- what the blend uses: ties kept together, the F1 curve, at least one label, the cross-validated choice ---

def test_best_threshold_never_splits_ties_and_is_order_independent():
    y = np.array([1, 0, 1, 0])
    p = np.array([0.8, 0.8, 0.5, 0.2])
    # the two 0.8s are in or out together: k=2 -> .5, k=3 -> .8, k=4 -> .667
    t, f1 = thresholds.best_threshold(y, p)
    assert t == pytest.approx(0.35) and f1 == pytest.approx(0.8)
    rng = np.random.default_rng(0)
    for _ in range(10):
        perm = rng.permutation(len(y))
        assert thresholds.best_threshold(y[perm], p[perm]) == (t, f1)
    # many ties: the chosen cut reproduces the reported F1 whatever the row order
    y2 = rng.integers(0, 2, 500)
    p2 = np.round(rng.random(500) * 0.5 + 0.4 * y2, 1)  # only a few distinct values
    t2, f2 = thresholds.best_threshold(y2, p2)
    for _ in range(5):
        perm = rng.permutation(500)
        assert thresholds.best_threshold(y2[perm], p2[perm]) == (t2, f2)
    assert metrics.f1_per_class(y2[:, None], (p2 >= t2)[:, None])[0] == pytest.approx(f2)


def test_f1_curve_matches_binarized_f1():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    p = np.round(rng.random(300), 2)
    grid = np.linspace(0, 1, 51)
    curve = thresholds.f1_curve(y, p, grid)
    direct = [metrics.f1_per_class(y[:, None], (p >= g)[:, None])[0] for g in grid]
    assert curve == pytest.approx(direct)
    t, f1 = thresholds.best_threshold(y, p)
    assert curve.max() <= f1 + 1e-12


def test_predict_min_one_label_uses_argmax_of_prob_over_threshold():
    probs = np.array([[0.2, 0.3, 0.1], [0.9, 0.1, 0.8], [0.05, 0.1, 0.3]])
    t = np.array([0.4, 0.6, 0.5])
    off = thresholds.predict(probs, t)
    assert off.tolist() == [[0, 0, 0], [1, 0, 1], [0, 0, 0]]
    on = thresholds.predict(probs, t, min_one=True)
    # row 0: ratios .5, .5, .2 -> first max (label 0); row 2: .125, .167, .6 -> label 2; row 1 untouched
    assert on.tolist() == [[1, 0, 0], [1, 0, 1], [0, 0, 1]]


def _onehot_case(seed=0, n=600, L=4, empty_rate=0.0):
    rng = np.random.default_rng(seed)
    y = np.zeros((n, L), dtype=np.int8)
    y[np.arange(n), rng.integers(0, L, n)] = 1
    y[rng.random(n) < empty_rate] = 0
    probs = np.where(y == 1, rng.uniform(0.2, 0.7, (n, L)), rng.uniform(0.0, 0.5, (n, L)))
    fold = np.arange(n) % 5
    return y, probs, fold


def test_select_cross_validates_the_shrink_and_min_one():
    y, probs, fold = _onehot_case()
    sel = thresholds.select(y, probs, fold)
    assert sel["shrink"] in thresholds.SHRINK_GRID
    best = max(g["cv_macro_f1"] for g in sel["grid"])
    assert sel["min_one"]["cv_macro_f1_off"] == pytest.approx(best)
    # the reported CV score is reproducible by hand: tune on 4 folds, cut the fifth, pool
    pred = np.zeros_like(y)
    for k in range(5):
        tr, va = fold != k, fold == k
        t = thresholds.tune_guarded(y[tr], probs[tr], sel["shrink"], sel["center"])
        pred[va] = thresholds.predict(probs[va], t, sel["min_one"]["used"])
    assert metrics.f1_per_class(y, pred).mean() == pytest.approx(sel["cv_macro_f1"])
    # every tweet has exactly one emotion here: at-least-one-label helps and auto keeps it
    assert sel["min_one"]["cv_macro_f1_on"] > sel["min_one"]["cv_macro_f1_off"]
    assert sel["min_one"]["used"] is True
    assert sel["thresholds"] == pytest.approx(
        (1 - sel["shrink"]) * thresholds.tune(y, probs) + sel["shrink"] * sel["center_value"])
    assert thresholds.select(y, probs, fold, min_one="off")["min_one"]["used"] is False


def test_select_auto_drops_min_one_when_it_hurts():
    y, probs, fold = _onehot_case(seed=3, empty_rate=0.6)
    sel = thresholds.select(y, probs, fold, min_one="auto")
    assert sel["min_one"]["cv_macro_f1_on"] < sel["min_one"]["cv_macro_f1_off"]
    assert sel["min_one"]["used"] is False
    assert thresholds.select(y, probs, fold, min_one="on")["min_one"]["used"] is True
    fixed = thresholds.select(y, probs, fold, shrinks=(0.5,), centers=("0.5",))
    assert [(g["shrink"], g["center"]) for g in fixed["grid"]] == [(0.5, "0.5")]
