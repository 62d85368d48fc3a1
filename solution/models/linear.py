"""One logistic regression per label over fixed features: shared by the TF-IDF and embedding members."""
from __future__ import annotations

import numpy as np


def fit_per_label(X, y: np.ndarray, make_classifier) -> list:
    """A fitted classifier per label; a label with one value in these rows keeps its rate (a float)."""
    out = []
    for j in range(y.shape[1]):
        yj = y[:, j]
        out.append(float(yj.mean()) if yj.min() == yj.max() else make_classifier().fit(X, yj))
    return out


def predict_per_label(classifiers: list, X) -> np.ndarray:
    cols = [np.full(X.shape[0], c) if isinstance(c, float) else c.predict_proba(X)[:, 1] for c in classifiers]
    return np.stack(cols, axis=1).astype(np.float64)
