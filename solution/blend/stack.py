"""A second-stage stacker: per label, a logistic regression on the logits of every model's probability for
every label, so it learns whom to trust per label and uses label correlations. Fold k's OOF comes from a fit
on the other folds; test uses the fit on all OOF rows.
"""
from __future__ import annotations

import numpy as np

from solution.models.linear import fit_per_label

EPS = 1e-6


def features(stack: np.ndarray) -> np.ndarray:
    """(M, n, L) probabilities -> (n, M*L) clipped logits."""
    p = np.clip(np.asarray(stack, dtype=np.float64), EPS, 1 - EPS)
    logit = np.log(p) - np.log1p(-p)
    m, n, n_labels = logit.shape
    return logit.transpose(1, 0, 2).reshape(n, m * n_labels)


def fit(X: np.ndarray, y: np.ndarray, C: float = 0.1, seed: int = 0) -> dict:
    """Per-label logistic regressions as plain arrays, so report.json carries them to `predict`."""
    from sklearn.linear_model import LogisticRegression

    fitted = fit_per_label(X, y, lambda: LogisticRegression(C=C, max_iter=2000, random_state=seed))
    coef, intercept = [], []
    for clf in fitted:
        if isinstance(clf, float):
            rate = min(max(clf, EPS), 1 - EPS)
            coef.append(np.zeros(X.shape[1]))
            intercept.append(float(np.log(rate / (1 - rate))))
        else:
            coef.append(clf.coef_[0])
            intercept.append(float(clf.intercept_[0]))
    return {"coef": np.array(coef), "intercept": np.array(intercept), "C": C}


def apply(params: dict, X: np.ndarray) -> np.ndarray:
    z = X @ np.asarray(params["coef"], dtype=np.float64).T + np.asarray(params["intercept"], dtype=np.float64)
    return 1.0 / (1.0 + np.exp(-z))


def oof_and_test(y, stack_oof, stack_test, fold, C: float = 0.1) -> tuple[np.ndarray, np.ndarray, dict]:
    """(stacked OOF, stacked test, parameters fit on all OOF rows)."""
    X, Xt = features(stack_oof), features(stack_test)
    oof = np.zeros(y.shape, dtype=np.float64)
    for k in np.unique(fold):
        tr, va = fold != k, fold == k
        oof[va] = apply(fit(X[tr], y[tr], C), X[va])
    params = fit(X, y, C)
    return oof, apply(params, Xt), params
