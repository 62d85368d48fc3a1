"""The model family of each config kind, imported when a fold model is built (torch only where needed)."""
from __future__ import annotations

from solution.errors import UserError


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
