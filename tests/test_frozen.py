"""frozen_layers (solution/models/frozen.py): the bottom blocks run once per tweet and are served from a cache.

On tiny random bert and mpnet models (tests/tiny_models.py): the cache serves exactly what the blocks compute,
training moves only the blocks above, a saved fold reloads and predicts again, a resumed fold is byte-identical,
and the planner prices the frozen blocks once per model.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from test_hf_models import COMMON, check_reload, check_run, fold_ids_of, load_data, train_argv
from tiny_models import tiny_data, tiny_models  # noqa: F401  (session fixtures)

from solution import config as config_mod
from solution.cli import main
from solution.errors import UserError
from solution.io import read_json, read_prob_table
from solution.models.hf import HFModel, release_cached_base
from solution.models.loop import predict_encoded
from solution.train import budget

ENTRY = {"bert": "minilm-ft", "mpnet": "mpnet-lora"}


def sets(tiny_models, arch: str, *extra: str) -> list[str]:
    return [f"weights={tiny_models[arch]}", *COMMON, "frozen_layers=1", *extra]


def untrained(cfg, labels) -> HFModel:
    torch.manual_seed(0)
    m = HFModel(cfg, labels)
    m._build()
    return m


@pytest.mark.parametrize("arch", ["bert", "mpnet"])
def test_the_cache_serves_what_the_frozen_blocks_compute(tiny_models, tiny_data, arch):
    """Same weights, with and without frozen_layers: the same probabilities (the cache holds the block's output);
    corrupting the cache changes them (it is read, not bypassed)."""
    data = load_data(tiny_data)
    tweets = data.train["Tweet"].tolist()
    probs = {}
    for k in (0, 1):
        cfg = config_mod.get(ENTRY[arch], sets(tiny_models, arch, "adapter=none", f"frozen_layers={k}"))
        m = untrained(cfg, data.labels)
        probs[k] = predict_encoded(m, m.encode(tweets))
    np.testing.assert_allclose(probs[1], probs[0], rtol=0, atol=1e-6)
    assert len(m.frozen.states) == len(set(map(tuple, m.encode(tweets))))
    for key in m.frozen.states:
        m.frozen.states[key] = torch.ones_like(m.frozen.states[key])
    assert np.abs(predict_encoded(m, m.encode(tweets)) - probs[1]).max() > 1e-4
    release_cached_base()


def trainable_names(cfg, labels, tiny_models) -> set[str]:
    m = untrained(cfg, labels)
    names = {n for n, p in m.model.named_parameters() if p.requires_grad}
    release_cached_base()
    return names


def test_only_the_blocks_above_train(tiny_models, tiny_data):
    labels = load_data(tiny_data).labels
    full = trainable_names(config_mod.get("minilm-ft", sets(tiny_models, "bert", "adapter=none")), labels, tiny_models)
    assert full and all(".layer.1." in n or n.startswith("classifier") or ".pooler." in n for n in full), full
    assert any(".layer.1." in n for n in full) and not any("embeddings" in n or ".layer.0." in n for n in full)
    # MPNet's relative position bias is shared by every block: it stays as the frozen blocks saw it
    mp = trainable_names(config_mod.get("mpnet-lora", sets(tiny_models, "mpnet", "adapter=none")), labels, tiny_models)
    assert not any("relative_attention_bias" in n for n in mp)
    lora = trainable_names(config_mod.get("mpnet-lora", sets(tiny_models, "mpnet")), labels, tiny_models)
    assert any("lora_" in n for n in lora) and not any("layer.0." in n for n in lora if "lora_" in n)


@pytest.mark.parametrize("arch,adapter", [("bert", "none"), ("mpnet", "lora")])
def test_train_reload_and_resume(tiny_models, tiny_data, tmp_path, arch, adapter):
    """Through the real `train` command: the artifacts of any run, a saved fold that reloads and predicts its test
    probabilities again, and a fold trained again alone (a resume: its own prefill pass) byte for byte the same."""
    name, extra = ENTRY[arch], sets(tiny_models, arch, f"adapter={adapter}")
    cfg = config_mod.get(name, extra)
    data = load_data(tiny_data)
    assert main(train_argv(tiny_data, name, extra, tmp_path)) == 0
    mdir = tmp_path / name
    if adapter == "lora":
        check_run(mdir, cfg, data, fold_ids_of(tiny_data))
        assert read_json(mdir / "fold0" / "model" / "adapter_config.json")["layers_to_transform"] == [1]
    check_reload(mdir, data) if adapter == "lora" else _check_full_reload(mdir, data)
    # the frozen pass is timed apart, in the fold that ran it (the later one reads the cache)
    assert (read_json(mdir / "fold0" / "metrics.json")["once_s"] > 0
            == read_json(mdir / "fold1" / "metrics.json")["once_s"])
    before = (mdir / "fold1" / "oof.csv").read_bytes()
    shutil.rmtree(mdir / "fold1")
    (mdir / "oof.csv").unlink()
    assert main(train_argv(tiny_data, name, extra, tmp_path)) == 0
    assert (mdir / "fold1" / "oof.csv").read_bytes() == before


def _check_full_reload(mdir, data) -> None:
    """Full fine-tuning saves fp16 weights (hf.py): the reload predicts within fp16 rounding."""
    cfg = config_mod.from_dict(read_json(mdir / "config.json")["config"])
    model = HFModel.load(mdir / "fold1" / "model", cfg, data.labels)
    probs = model.predict(data.test["Tweet"].tolist())
    saved = read_prob_table(mdir / "fold1" / "test.csv", data.labels)[data.labels].to_numpy()
    np.testing.assert_allclose(probs, saved, rtol=0, atol=1e-3)
    release_cached_base()


def test_settings_are_checked(tiny_models, tiny_data, tmp_path, capsys):
    with pytest.raises(UserError, match="frozen_layers must be >= 0"):
        config_mod.get("minilm-lora", ["frozen_layers=-1"])
    with pytest.raises(UserError, match="quantize=none only"):
        config_mod.get("qwen1.5-7b-qlora", ["frozen_layers=4"])
    extra = [f"weights={tiny_models['bert']}", *COMMON, "frozen_layers=2"]  # the tiny model has 2 blocks
    assert main(train_argv(tiny_data, "minilm-lora", extra, tmp_path)) != 0
    assert "keep at least one to train" in capsys.readouterr().err
    extra = [f"weights={tiny_models['llama']}", *COMMON, "frozen_layers=1", "pooling=cls"]
    assert main(train_argv(tiny_data, "minilm-lora", extra, tmp_path)) != 0
    assert "encoder.layer" in capsys.readouterr().err


def test_the_planner_prices_frozen_blocks_once():
    """A fold runs the top blocks only; the bottom ones are one pass over every tweet, priced with the load."""
    args = dict(n_train=5470, n_val=1368, n_test=886, mean_chars=95.0, device="cpu", cpu_flops=80e9)
    plain, f6, f10 = (budget.prior(config_mod.get("mpnet-lora", ["adapter=none", f"frozen_layers={k}"]), **args)
                      for k in (0, 6, 10))
    fast = budget.CPU_FROZEN_SPEEDUP["sentence-transformers/all-mpnet-base-v2"]  # measured on top-block training
    assert f10.seconds == pytest.approx(plain.seconds * 2 / 12 / fast, rel=0.05)
    assert f6.seconds == pytest.approx(plain.seconds * 6 / 12 / fast, rel=0.05)
    assert f10.load_s > plain.load_s + 60  # ~5 minutes of encoder at 80 GFLOP/s
    assert (f10.load_s - plain.load_s) / (f6.load_s - plain.load_s) == pytest.approx(10 / 6)
    # adapters on the top 6 of mpnet's 12 blocks: backprop over half of them, not all (depth, not MiniLM's 6)
    half = budget.prior(config_mod.get("mpnet-lora", ["adapter_layers=6"]), **args)
    lora = budget.prior(config_mod.get("mpnet-lora"), **args)
    assert half.seconds < lora.seconds * 0.8
