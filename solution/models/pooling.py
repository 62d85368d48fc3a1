"""Mean pooling for encoder classifiers.

transformers' encoder classifiers (BERT and kin) classify the [CLS] vector through a dense+tanh pooler.
Sentence-transformers checkpoints such as all-MiniLM-L6-v2 were trained on the mean of the token states
instead, so their [CLS] vector carries little: `pooling=mean` swaps the pooler's input for the mean of the
non-pad token states, fed straight to the classifier (on fold 0 of the shared data, MiniLM + LoRA: tuned
macro-F1 0.605 against 0.597 for [CLS] and 0.591 for the mean through the old dense+tanh). The pooler's dense
layer stays in place, unused, so parameter names, LoRA targets, saving and loading are unchanged.

RoBERTa-style classifiers (MPNet: all-mpnet-base-v2) have no pooler: their head reads the first token's state
through a new dense + tanh. There the mean of the non-pad states takes the first token's place in the
encoder's output, so the head (trained, and saved with the adapter) reads the mean.
"""
from __future__ import annotations

import torch
from torch import nn

from solution.config import POOLINGS
from solution.errors import UserError


class MaskedMeanPooler(nn.Module):
    def __init__(self, original: nn.Module):
        super().__init__()
        self.dense = original.dense  # unused, kept under its name: full fine-tuning checkpoints load cleanly
        self.mask = None  # set by a pre-hook on the encoder from its attention_mask

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        mask = self.mask
        if mask is None or mask.shape[:2] != hidden.shape[:2]:
            mask = torch.ones(hidden.shape[:2], device=hidden.device)
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


def apply_pooling(model: nn.Module, pooling: str) -> nn.Module:
    """Install `pooling` on a *ForSequenceClassification model in place (before any PEFT wrapping)."""
    if pooling == "cls":
        return model
    if pooling not in POOLINGS:
        raise UserError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    encoder = model.base_model
    pooler = getattr(encoder, "pooler", None)
    if pooler is None and hasattr(getattr(model, "classifier", None), "out_proj"):
        encoder.register_forward_hook(_mean_as_first_token, with_kwargs=True)
        return model
    if pooler is None or not hasattr(pooler, "dense"):
        raise UserError(f"pooling={pooling} needs an encoder with a [CLS] pooler (BERT-like) or a head that "
                        f"reads the first token (RoBERTa-like); {type(model).__name__} has neither: use pooling=cls")
    new = MaskedMeanPooler(pooler)
    encoder.pooler = new

    def keep_mask(_module, args, kwargs):
        mask = kwargs.get("attention_mask")
        if mask is None and len(args) > 1:
            mask = args[1]
        new.mask = mask

    encoder.register_forward_pre_hook(keep_mask, with_kwargs=True)
    return model


def _mean_as_first_token(_module, args, kwargs, output):
    """Forward hook of a RoBERTa-style encoder: the first token's state becomes the masked mean of all."""
    mask = kwargs.get("attention_mask")
    if mask is None and len(args) > 1:
        mask = args[1]
    hidden = output[0]
    if mask is None:
        mask = torch.ones(hidden.shape[:2], device=hidden.device)
    m = mask.unsqueeze(-1).to(hidden.dtype)
    mean = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
    states = torch.cat([mean.unsqueeze(1), hidden[:, 1:]], dim=1)
    if isinstance(output, tuple):
        return (states, *output[1:])
    output.last_hidden_state = states
    return output
