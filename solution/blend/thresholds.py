"""Per-label thresholds that maximise F1 on out-of-fold probabilities.

The sweep is exact: every distinct cut of the sorted probabilities is a candidate (F1 of the top k is
2*TP_k / (k + P)), and the threshold is the midpoint between the cut's two probabilities.
"""
from __future__ import annotations

import numpy as np

from solution.blend.metrics import f1_per_class


def best_threshold(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) for one label; ties go to the higher threshold."""
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    n, pos = len(p), int(y.sum())
    if n == 0:
        return 0.5, 0.0
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    tp = np.cumsum(ys)
    k = np.arange(1, n + 1)
    # only cut where the probability changes: tied tweets are all in or all out
    valid = np.append(ps[1:] < ps[:-1], True)
    f1 = np.where(valid, 2 * tp / (k + pos), -1.0) if pos > 0 else np.full(n, -1.0)
    best = int(np.argmax(f1))  # first max = fewest positives = highest threshold
    if pos == 0 or f1[best] <= 0:
        # no positives: predict none (F1 is 0 whatever we do)
        return float(min(1.0, np.nextafter(ps[0], np.inf))) if ps[0] < 1 else 1.0, 0.0
    lo = ps[best + 1] if best + 1 < n else 0.0
    t = (ps[best] + lo) / 2
    if not lo < t:  # adjacent floats: the midpoint rounds onto lo, which must stay out
        t = ps[best]
    return float(t), float(f1[best])


def tune(y: np.ndarray, probs: np.ndarray, shrink: float = 0.0, center: float = 0.5) -> np.ndarray:
    """Best-F1 threshold per label, shrunk toward `center` by `shrink`."""
    y = np.asarray(y)
    probs = np.asarray(probs, dtype=np.float64)
    t = np.array([best_threshold(y[:, j], probs[:, j])[0] for j in range(y.shape[1])])
    return (1 - shrink) * t + shrink * center


# --- guarded tuning: shrink chosen by cross-validating the thresholds themselves -------------------

SHRINK_GRID = (0.0, 0.25, 0.5, 0.75)
CENTERS = ("0.5", "global")
MIN_ONE_MODES = ("auto", "on", "off")
_EPS = 1e-12


def global_threshold(y: np.ndarray, probs: np.ndarray) -> float:
    """One threshold for every label: the best-micro-F1 cut of all cells together."""
    return best_threshold(np.asarray(y).ravel(), np.asarray(probs, dtype=np.float64).ravel())[0]


def center_value(center, y: np.ndarray, probs: np.ndarray) -> float:
    """A number (e.g. "0.5"), or "global" fit on y/probs."""
    if str(center) == "global":
        return global_threshold(y, probs)
    return float(center)


def tune_guarded(y, probs, shrink: float = 0.0, center="0.5") -> np.ndarray:
    return tune(y, probs, shrink, center_value(center, y, probs))


def predict(probs: np.ndarray, t, min_one: bool = False) -> np.ndarray:
    """`probs >= t`; with min_one, a tweet with no label gets its argmax of prob/threshold."""
    probs = np.asarray(probs, dtype=np.float64)
    t = np.broadcast_to(np.asarray(t, dtype=np.float64), (probs.shape[1],))
    pred = (probs >= t).astype(np.int8)
    if min_one and len(pred):
        empty = np.flatnonzero(pred.sum(1) == 0)
        if len(empty):
            ratio = probs[empty] / np.maximum(t, _EPS)
            pred[empty, ratio.argmax(1)] = 1
    return pred


def f1_curve(y: np.ndarray, p: np.ndarray, grid) -> np.ndarray:
    """F1 of `p >= t` for every t in `grid` (one label)."""
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    grid = np.asarray(grid, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    ps, ys = p[order], y[order]
    suffix = np.append(np.cumsum(ys[::-1])[::-1], 0)  # positives among ps[i:]
    idx = np.searchsorted(ps, grid, side="left")
    k = len(ps) - idx
    tp = suffix[idx]
    denom = k + ys.sum()
    return np.divide(2.0 * tp, denom, out=np.zeros(len(grid)), where=denom > 0)


def _macro_f1(y, pred) -> float:
    return float(f1_per_class(y, pred).mean())


def cv_thresholds(y, probs, fold, shrink: float = 0.0, center="0.5") -> np.ndarray:
    """(n_folds, n_labels): fold k's thresholds are tuned on the other folds' rows."""
    y, probs, fold = np.asarray(y), np.asarray(probs, dtype=np.float64), np.asarray(fold)
    return np.stack([tune_guarded(y[fold != k], probs[fold != k], shrink, center) for k in range(int(fold.max()) + 1)])


def cv_predict(probs, fold, fold_thresholds: np.ndarray, min_one: bool = False) -> np.ndarray:
    """Held-out predictions: each row cut with its own fold's thresholds."""
    probs, fold = np.asarray(probs, dtype=np.float64), np.asarray(fold)
    pred = np.zeros(probs.shape, dtype=np.int8)
    for k, t in enumerate(fold_thresholds):
        rows = fold == k
        pred[rows] = predict(probs[rows], t, min_one)
    return pred


def select(y, probs, fold, shrinks=SHRINK_GRID, centers=CENTERS, min_one: str = "auto") -> dict:
    """Thresholds tuned on all OOF rows, with shrink, center and min_one chosen by the held-out macro-F1 of
    k-1-fold thresholds, pooled over folds so rare labels count (ties: less shrink)."""
    y = np.asarray(y, dtype=np.int8)
    probs = np.asarray(probs, dtype=np.float64)
    fold = np.asarray(fold)
    if min_one not in MIN_ONE_MODES:
        raise ValueError(f"min_one must be one of {MIN_ONE_MODES}, got {min_one!r}")
    grid, best, best_folds = [], None, None
    seen = set()
    for s in shrinks:
        for c in centers:
            key = (float(s), str(c) if float(s) > 0 else str(centers[0]))  # shrink 0: any center
            if key in seen:
                continue
            seen.add(key)
            ft = cv_thresholds(y, probs, fold, *key)
            score = _macro_f1(y, cv_predict(probs, fold, ft, min_one == "on"))
            grid.append({"shrink": key[0], "center": key[1], "cv_macro_f1": score})
            if best is None or score > best["cv_macro_f1"] + 1e-12:
                best, best_folds = grid[-1], ft
    off = _macro_f1(y, cv_predict(probs, fold, best_folds, False))
    on = _macro_f1(y, cv_predict(probs, fold, best_folds, True))
    use_min_one = {"on": True, "off": False, "auto": on > off + 1e-12}[min_one]
    unshrunk = tune(y, probs)
    center_v = center_value(best["center"], y, probs)
    t = (1 - best["shrink"]) * unshrunk + best["shrink"] * center_v
    return {
        "thresholds": t, "unshrunk": unshrunk, "shrink": best["shrink"], "center": best["center"],
        "center_value": center_v, "grid": grid, "fold_thresholds": best_folds,
        "cv_macro_f1": on if use_min_one else off,
        "in_sample_macro_f1": _macro_f1(y, predict(probs, t, use_min_one)),
        "min_one": {"mode": min_one, "used": bool(use_min_one), "cv_macro_f1_off": off, "cv_macro_f1_on": on},
    }
