"""The model family of each config kind, imported when a fold model is built (torch only where needed)."""
from __future__ import annotations

from solution.errors import UserError
from solution.models.embed import EmbedModel


def model_class(kind: str):
    if kind == "tfidf":
        from solution.models.tfidf import TfidfModel  # lazy: torch

        return TfidfModel
    if kind == "hf":
        from solution.models.hf import HFModel  # lazy: torch

        return HFModel
    if kind == "embed":

        return EmbedModel
    if kind == "lexicon":
        from solution.models.lexicon import LexiconModel  # lazy: torch

        return LexiconModel
    raise UserError(f"unknown model kind {kind!r}; known kinds: tfidf, hf, embed, lexicon")
