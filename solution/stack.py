"""A second-stage stacker over every model's OOF probabilities for every label.

For each label, a logistic regression on the logits of all models x all labels: it learns how much
to trust each model per label and uses label correlations (anger with disgust, joy with optimism and
love). Its OOF is honest: for fold k it is fit on the other folds' OOF rows only. For test, the stacker
fit on all OOF rows is applied to the fold-averaged test probabilities.
"""
from __future__ import annotations

import numpy as np

EPS = 1e-6


def features(stack: np.ndarray) -> np.ndarray:
    """(M, n, L) probabilities -> (n, M*L) clipped logits."""
    p = np.clip(np.asarray(stack, dtype=np.float64), EPS, 1 - EPS)
    logit = np.log(p) - np.log1p(-p)
    m, n, l = logit.shape
    return logit.transpose(1, 0, 2).reshape(n, m * l)


def fit(X: np.ndarray, y: np.ndarray, C: float = 0.1, seed: int = 0) -> dict:
    """Per-label logistic regressions (models.linear, shared with the linear members), kept as plain arrays
    so report.json can carry them to `predict`; a label with one value in these rows keeps its rate."""
    from sklearn.linear_model import LogisticRegression

    from solution.models.linear import fit_per_label

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
