"""Per-class thresholds that maximise each label's F1 on out-of-fold probabilities.

The sweep is exact: sorting a label's probabilities, every distinct cut point is a candidate, and the
F1 of predicting the top-k tweets positive is 2*TP_k / (k + P). The threshold returned is the midpoint
between the last positive-predicted probability and the next one, so `prob >= threshold` reproduces
the chosen cut on these probabilities and generalises symmetrically.
"""
from __future__ import annotations

import numpy as np


def best_threshold(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) maximising F1 of `p >= threshold` for one label; ties go to the higher threshold."""
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
        # no positives to find: predict none (F1 is 0 whatever we do)
        return float(min(1.0, np.nextafter(ps[0], np.inf))) if ps[0] < 1 else 1.0, 0.0
    lo = ps[best + 1] if best + 1 < n else 0.0
    t = (ps[best] + lo) / 2
    if not lo < t:  # adjacent floats: the midpoint rounds onto lo, which must stay out
        t = ps[best]
    return float(t), float(f1[best])


def tune(y: np.ndarray, probs: np.ndarray, shrink: float = 0.0, center: float = 0.5) -> np.ndarray:
    """Best-F1 threshold per label, optionally shrunk toward `center` (0 = none, 1 = all the way)."""
    y = np.asarray(y)
    probs = np.asarray(probs, dtype=np.float64)
    t = np.array([best_threshold(y[:, j], probs[:, j])[0] for j in range(y.shape[1])])
    return (1 - shrink) * t + shrink * center
