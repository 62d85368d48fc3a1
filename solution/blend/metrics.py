"""Scores from probabilities and per-class thresholds (predicted: probability >= threshold).

An undefined per-class precision/recall/F1 is 0, as in Kaggle's macro-F1; the sample Jaccard of a tweet with
no true and no predicted label is 1, SemEval-2018 E-c's convention.
"""
from __future__ import annotations

import numpy as np

EPS = 1e-7


def binarize(probs: np.ndarray, thresholds=0.5) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    t = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (probs.shape[1],))
    return (probs >= t).astype(np.int8)


def _safe_div(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.divide(a, b, out=np.zeros_like(a), where=b > 0)


def per_class_counts(y: np.ndarray, pred: np.ndarray):
    y, pred = np.asarray(y, dtype=bool), np.asarray(pred, dtype=bool)
    tp = (y & pred).sum(0)
    fp = (~y & pred).sum(0)
    fn = (y & ~pred).sum(0)
    return tp, fp, fn


def f1_per_class(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    tp, fp, fn = per_class_counts(y, pred)
    return _safe_div(2 * tp, 2 * tp + fp + fn)


def macro_f1(y, probs, thresholds=0.5) -> float:
    return float(f1_per_class(y, binarize(probs, thresholds)).mean())


def constant_f1(y) -> float:
    """Macro-F1 of predicting every label for every tweet: per label 2r/(1+r), r its positive rate."""
    r = np.asarray(y, dtype=np.float64).mean(0)
    return float((2 * r / (1 + r)).mean())


def log_loss(y, probs) -> float:
    """Mean binary cross-entropy over all tweet-label cells."""
    p = np.clip(np.asarray(probs, dtype=np.float64), EPS, 1 - EPS)
    y = np.asarray(y, dtype=np.float64)
    return float(-(y * np.log(p) + (1 - y) * np.log1p(-p)).mean())


def scores(y, probs, thresholds=0.5, labels: list[str] | None = None) -> dict:
    """macro/micro F1, subset accuracy, sample Jaccard, log loss and per-class P/R/F1/support."""
    y = np.asarray(y, dtype=np.int8)
    probs = np.asarray(probs, dtype=np.float64)
    if y.shape != probs.shape:
        raise ValueError(f"labels {y.shape} and probabilities {probs.shape} differ in shape")
    pred = binarize(probs, thresholds)
    tp, fp, fn = per_class_counts(y, pred)
    precision = _safe_div(tp, tp + fp)
    recall = _safe_div(tp, tp + fn)
    f1 = _safe_div(2 * tp, 2 * tp + fp + fn)
    micro = float(_safe_div(2 * tp.sum(), 2 * tp.sum() + fp.sum() + fn.sum()))
    inter = (y.astype(bool) & pred.astype(bool)).sum(1)
    union = (y.astype(bool) | pred.astype(bool)).sum(1)
    jacc = np.where(union == 0, 1.0, _safe_div(inter, union))
    labels = labels or [str(i) for i in range(y.shape[1])]
    t = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (y.shape[1],))
    return {
        "macro_f1": float(f1.mean()),
        "micro_f1": micro,
        "subset_accuracy": float((pred == y).all(1).mean()),
        "jaccard": float(jacc.mean()),
        "log_loss": log_loss(y, probs),
        "per_class": {
            lab: {"precision": float(precision[j]), "recall": float(recall[j]), "f1": float(f1[j]),
                  "support": int(y[:, j].sum()), "threshold": float(t[j])}
            for j, lab in enumerate(labels)
        },
    }


SUMMARY_KEYS = ("macro_f1", "micro_f1", "subset_accuracy", "jaccard", "log_loss")


def summary_line(s: dict) -> str:
    return " ".join(f"{k}={s[k]:.4f}" for k in SUMMARY_KEYS)
