"""On a CUDA out-of-memory error a fold restarts with half the micro-batch and twice the accumulation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from solution import config
from solution.errors import UserError
from solution.models import loop
from solution.models.base import FitResult
from solution.models.hf import HFModel
from solution.models.loop import OOM


def _model(batch_size=16, grad_accum=1):
    cfg = config.get("minilm-lora", [f"batch_size={batch_size}", f"grad_accum={grad_accum}"])
    return HFModel(cfg, ["a", "b"])


def test_oom_halves_the_micro_batch_and_doubles_accumulation(monkeypatch, capsys):
    seen = []

    def fake_fit(self, *args):
        seen.append((self.cfg.batch_size, self.cfg.grad_accum))
        if len(seen) < 3:
            raise OOM[0]("CUDA out of memory")
        return FitResult(val_probs=np.zeros((1, 2)))

    monkeypatch.setattr(loop, "fit_once", fake_fit)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    res = _model(16, 1).fit([], np.zeros((0, 2)), [], np.zeros((0, 2)))
    assert seen == [(16, 1), (8, 2), (4, 4)]  # the effective batch stays 16
    assert res.extra["oom_retries"] == 2
    assert "restarting the fold with micro-batch 8 x accumulation 2" in capsys.readouterr().err


def test_oom_at_micro_batch_one_is_a_clear_error(monkeypatch):
    def fake_fit(self, *args):
        raise OOM[0]("CUDA out of memory")

    monkeypatch.setattr(loop, "fit_once", fake_fit)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    with pytest.raises(UserError, match="out of memory even at micro-batch 1"):
        _model(1, 4).fit([], np.zeros((0, 2)), [], np.zeros((0, 2)))


def test_a_collapsed_first_epoch_restarts_at_half_the_learning_rate(monkeypatch, capsys):
    from solution.models.loop import Collapsed, constant_f1

    seen = []

    def fake_fit(self, *args):
        guard = args[-1]
        seen.append((self.cfg.lr, guard))
        if guard:
            raise Collapsed("training collapsed in epoch 1")
        return FitResult(val_probs=np.zeros((1, 2)))

    monkeypatch.setattr(loop, "fit_once", fake_fit)
    m = _model()
    lr = m.cfg.lr
    res = m.fit([], np.zeros((0, 2)), [], np.zeros((0, 2)))
    # two guarded retries at half the rate each, then a last unguarded attempt whose result is kept
    assert seen == [(lr, True), (lr / 2, True), (lr / 4, False)]
    assert res.extra["collapse_retries"] == 2 and res.extra["lr"] == lr / 4
    assert "restarting the fold with half the learning rates" in capsys.readouterr().err
    assert constant_f1(np.array([[1, 0], [0, 0]])) == pytest.approx((2 * 0.5 / 1.5 + 0) / 2)
