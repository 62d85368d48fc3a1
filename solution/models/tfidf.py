"""TF-IDF word and character n-grams + one-vs-rest logistic regression."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from scipy import sparse

from solution.config import TfidfConfig
from solution.io import atomic_path
from solution.models.base import FitResult
from solution.models.linear import fit_per_label, predict_per_label
from solution.text import prepare


class TfidfModel:
    def __init__(self, cfg: TfidfConfig, labels: list[str]):
        self.cfg, self.labels = cfg, labels
        self.vectorizers, self.classifiers = [], []

    def _features(self, texts, fit: bool):
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = prepare(texts, self.cfg.preprocess)
        if fit:
            common = dict(min_df=self.cfg.min_df, sublinear_tf=True, max_features=self.cfg.max_features,
                          lowercase=True, dtype=np.float32)
            self.vectorizers = [
                TfidfVectorizer(analyzer="word", ngram_range=tuple(self.cfg.word_ngrams),
                                token_pattern=r"(?u)\b\w+\b|[!?]", **common),
                TfidfVectorizer(analyzer="char_wb", ngram_range=tuple(self.cfg.char_ngrams), **common),
            ]
            return sparse.hstack([v.fit_transform(texts) for v in self.vectorizers]).tocsr()
        return sparse.hstack([v.transform(texts) for v in self.vectorizers]).tocsr()

    def fit(self, train_texts, y_train, val_texts, y_val, log_dir=None) -> FitResult:
        from sklearn.linear_model import LogisticRegression

        X = self._features(train_texts, fit=True)
        cw = None if self.cfg.class_weight == "none" else "balanced"
        self.classifiers = fit_per_label(X, y_train, lambda: LogisticRegression(
            C=self.cfg.C, class_weight=cw, max_iter=2000, solver="liblinear", random_state=self.cfg.seed))
        return FitResult(val_probs=self.predict(val_texts))

    def predict(self, texts) -> np.ndarray:
        return predict_per_label(self.classifiers, self._features(texts, fit=False))

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(directory / "model.pkl") as tmp, open(tmp, "wb") as f:
            pickle.dump({"vectorizers": self.vectorizers, "classifiers": self.classifiers}, f)

    @classmethod
    def load(cls, directory: Path, cfg: TfidfConfig, labels: list[str]) -> "TfidfModel":
        m = cls(cfg, labels)
        with open(Path(directory) / "model.pkl", "rb") as f:
            state = pickle.load(f)
        m.vectorizers, m.classifiers = state["vectorizers"], state["classifiers"]
        return m
