"""Pure pieces of the training path: losses, tweet normalisation, config validation."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from solution import config
from solution.errors import UserError
from solution.models.losses import asymmetric_loss, focal_loss, pos_weight
from solution.text import normalize


def test_asymmetric_loss_without_focusing_is_bce():
    torch.manual_seed(0)
    logits, t = torch.randn(8, 5), (torch.rand(8, 5) > 0.5).float()
    assert torch.allclose(asymmetric_loss(logits, t, 0.0, 0.0, 0.0),
                          F.binary_cross_entropy_with_logits(logits, t), atol=1e-6)
    assert torch.allclose(focal_loss(logits, t, 0.0), F.binary_cross_entropy_with_logits(logits, t), atol=1e-6)
    # focusing down-weights easy negatives
    easy_neg = torch.full((1, 1), -4.0)
    assert (asymmetric_loss(easy_neg, torch.zeros(1, 1))
            < F.binary_cross_entropy_with_logits(easy_neg, torch.zeros(1, 1)))


def test_pos_weight_lifts_rare_labels_within_bounds():
    y = np.zeros((100, 3), dtype=np.int8)
    y[:50, 0], y[:5, 1] = 1, 1  # common, rare, absent
    w = pos_weight(y).numpy()
    assert w[0] == pytest.approx(1.0) and w[1] == pytest.approx(np.sqrt(95 / 5))
    assert 1.0 <= w[2] <= 10.0


def test_normalize_tweets():
    assert normalize("#SoHappy @bob http://t.co/x 😂") == "# so happy @user http face with tears of joy"
    assert normalize(None) == "" and normalize("   ") == ""


def test_config_validation_and_overrides():
    with pytest.raises(UserError, match="unknown model 'nope'; known models: .*minilm-lora"):
        config.get("nope")
    with pytest.raises(UserError, match="adapter must be one of"):
        config.get("minilm-lora", ["adapter=prefix"])
    with pytest.raises(UserError, match="4-bit weights cannot be fine-tuned fully"):
        config.get("minilm-lora", ["adapter=none", "quantize=4bit"])
    with pytest.raises(UserError, match="expected int"):
        config.get("minilm-lora", ["epochs=two"])
    with pytest.raises(UserError, match="has no setting 'epoch'"):
        config.get("minilm-lora", ["epoch=2"])
    # NAME-seedN: the registry entry with another seed, under its own name (its own output folder)
    s7 = config.get("minilm-lora-seed7", ["epochs=3"])
    assert (s7.name, s7.seed, s7.epochs) == ("minilm-lora-seed7", 7, 3)
    assert dataclasses.replace(s7, name="minilm-lora", seed=42, epochs=4) == config.get("minilm-lora")
    assert s7.fingerprint() != config.get("minilm-lora", ["epochs=3"]).fingerprint()
    with pytest.raises(UserError, match="unknown model 'nope-seed7'.*NAME-seedN"):
        config.get("nope-seed7")
    with pytest.raises(UserError, match="unknown model 'minilm-lora-seedx'"):
        config.get("minilm-lora-seedx")
    c = config.get("minilm-lora", ["epochs=2", "gradient_checkpointing=true", "target_modules=query,value"])
    assert (c.epochs, c.gradient_checkpointing, c.target_modules) == (2, True, ["query", "value"])
    assert c.fingerprint() != config.get("minilm-lora").fingerprint()
    # runtime settings do not change what a model learns, so not its fingerprint
    assert config.get("minilm-lora", ["eval_batch_size=7"]).fingerprint() == config.get("minilm-lora").fingerprint()
    for name in config.known():
        assert config.get(name).description, name
    assert set(config.profile_models("gpu")) == {"gemma-2b-lora", "gemma-2b-ia3", "e5-mistral-7b-qlora",
                                                 "qwen1.5-7b-qlora", "gecko-7b-qlora", "gte-qwen1.5-7b-qlora"}
    for name in config.profile_models("gpu")[2:]:
        c = config.get(name)
        assert (c.quantize, c.adapter, c.gradient_checkpointing) == ("4bit", "lora", True)


def test_top_block_members_halve_their_familys_batch():
    """minilm-top3-ft and mpnet-top2-ft: their family's recipe (MINILM, MPNET) but for half the batch."""
    for name, family in (("minilm-top3-ft", config.MINILM), ("mpnet-top2-ft", config.MPNET)):
        c = config.get(name)
        assert c.frozen_layers and c.adapter == "none"
        assert c.batch_size == family["batch_size"] // 2
        assert {k: getattr(c, k) for k in family if k != "batch_size"} == {k: v for k, v in family.items()
                                                                         if k != "batch_size"}
    assert config.get("minilm-lora").batch_size == config.MINILM["batch_size"]  # the whole-model members keep it
