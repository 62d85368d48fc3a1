"""Model families: each builds a fold model from its config.

A fold model has `fit(train_texts, y_train, val_texts, y_val, log_dir) -> FitResult`,
`predict(texts) -> probs`, `save(dir)` and a classmethod `load(dir, cfg, labels)`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from solution.errors import UserError


@dataclass
class FitResult:
    val_probs: np.ndarray  # probabilities of the kept weights on the validation rows
    history: list = field(default_factory=list)  # one dict per epoch
    kept_epoch: int | None = None
    extra: dict = field(default_factory=dict)  # samples/s, peak memory, ...


class NonFinite(UserError):
    """A fold's loss or probabilities are not finite (NaN or infinity)."""


def model_class(kind: str):
    if kind == "tfidf":
        from solution.models.tfidf import TfidfModel

        return TfidfModel
    if kind == "hf":
        from solution.models.hf import HFModel

        return HFModel
    if kind == "embed":
        from solution.models.embed import EmbedModel

        return EmbedModel
    if kind == "lexicon":
        from solution.models.lexicon import LexiconModel

        return LexiconModel
    raise UserError(f"unknown model kind {kind!r}; known kinds: tfidf, hf, embed, lexicon")
