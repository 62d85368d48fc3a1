"""Multi-label losses on logits: BCE, BCE with per-label pos_weight, asymmetric (ASL) and focal."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def pos_weight(y: np.ndarray, cap: float = 10.0) -> torch.Tensor:
    """sqrt(neg/pos) per label, in [1, cap]: lifts rare labels without swamping them."""
    pos = y.sum(0).astype(np.float64)
    neg = len(y) - pos
    w = np.sqrt(np.where(pos > 0, neg / np.maximum(pos, 1), 1.0))
    return torch.tensor(np.clip(w, 1.0, cap), dtype=torch.float32)


def asymmetric_loss(logits, targets, gamma_neg=4.0, gamma_pos=0.0, clip=0.05, eps=1e-8):
    """Ridnik et al. 2021: down-weights easy negatives and shifts their probability by `clip`."""
    p = torch.sigmoid(logits)
    p_neg = (p - clip).clamp(min=0) if clip > 0 else p
    loss_pos = targets * torch.log(p.clamp(min=eps)) * (1 - p).pow(gamma_pos)
    loss_neg = (1 - targets) * torch.log((1 - p_neg).clamp(min=eps)) * p_neg.pow(gamma_neg)
    return -(loss_pos + loss_neg).mean()


def focal_loss(logits, targets, gamma=2.0):
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = torch.exp(-bce)
    return ((1 - p_t).pow(gamma) * bce).mean()


def make_loss(cfg, y_train: np.ndarray, device):
    if cfg.loss == "bce":
        return lambda logits, t: F.binary_cross_entropy_with_logits(logits, t)
    if cfg.loss == "bce_pos_weight":
        pw = pos_weight(y_train).to(device)
        return lambda logits, t: F.binary_cross_entropy_with_logits(logits, t, pos_weight=pw)
    if cfg.loss == "asl":
        return lambda logits, t: asymmetric_loss(logits, t, cfg.asl_gamma_neg, cfg.asl_gamma_pos, cfg.asl_clip)
    if cfg.loss == "focal":
        return lambda logits, t: focal_loss(logits, t, cfg.focal_gamma)
    raise ValueError(cfg.loss)
