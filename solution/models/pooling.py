"""Mean pooling for encoder classifiers: sentence-transformers checkpoints were trained on the mean of the token
states, so their [CLS] vector carries little."""
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
    """Install `pooling` in place, before any PEFT wrapping."""
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
    """RoBERTa-style encoders: the first token's state becomes the masked mean of all."""
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
