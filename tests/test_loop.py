"""The accelerate training loop's pieces (solution/models/loop.py) and the precision rule (solution/hardware.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_models import tiny_data, tiny_models  # noqa: F401  (session fixtures)

from solution import config as config_mod
from solution import hardware
from solution.errors import UserError
from solution.models import loop
from solution.models.hf import HFModel


def _model(tiny_models, arch="bert", *sets):
    cfg = config_mod.get("minilm-lora", [f"weights={tiny_models[arch]}", "num_threads=1", "batch_size=4", *sets])
    m = HFModel(cfg, [f"l{i}" for i in range(3)])
    m._build()
    return m


def _seqs(n=37, seed=0):
    rng = np.random.default_rng(seed)
    return [[int(t) for t in rng.integers(5, 50, size=int(rng.integers(1, 30)))] for _ in range(n)]


@pytest.mark.parametrize("group", [True, False])
def test_train_batches_cover_every_row_once_padded_and_reproducible(tiny_models, group):
    m = _model(tiny_models, "bert", f"group_by_length={group}")
    seqs = _seqs()
    epochs = [[b["idx"].tolist() for b in loop.train_loader(m, seqs, seed=3)] for _ in range(2)]
    assert epochs[0] == epochs[1]  # same seed, same batches
    for batch in loop.train_loader(m, seqs, seed=3):
        ids, mask = batch["input_ids"], batch["attention_mask"]
        for row, i in enumerate(batch["idx"].tolist()):  # right-padded to the batch's longest tweet
            n = len(seqs[i])
            assert ids[row, :n].tolist() == seqs[i] and mask[row].sum() == n and mask[row, :n].all()
            assert (ids[row, n:] == m.tokenizer.pad_token_id).all()
    flat = sorted(i for b in epochs[0] for i in b)
    assert flat == list(range(len(seqs))) and max(len(b) for b in epochs[0]) == 4
    if group:  # the longest tweet comes in the first batch, so an OOM shows at step 1
        longest = max(range(len(seqs)), key=lambda i: len(seqs[i]))
        assert len(seqs[longest]) == max(len(seqs[i]) for i in epochs[0][0])


def test_length_groups_come_in_shuffled_order():
    """transformers' grouping alone keeps each mega-batch sorted longest to shortest; the kit shuffles the
    batches (after the longest), so no stretch of steps sweeps from long tweets to short ones."""
    lengths = [int(n) for n in np.random.default_rng(1).integers(1, 60, size=400)]
    batches = list(loop.LengthGroups(lengths, 4, torch.Generator().manual_seed(0)))
    longest = [max(lengths[i] for i in b) for b in batches]
    assert longest[0] == max(lengths) and sorted(i for b in batches for i in b) == list(range(400))
    assert all(max(lengths[i] for i in b) - min(lengths[i] for i in b) <= 8 for b in batches)  # still grouped
    falls = sum(a >= b for a, b in zip(longest[1:], longest[2:]))
    assert 0.3 < falls / (len(longest) - 2) < 0.7  # sorted runs would give ~1.0


@pytest.mark.parametrize("seed", range(6))
def test_length_groups_shard_over_processes_without_losing_rows(seed):
    """Under accelerate launch each process takes every p-th batch; 37 rows in batches of 4 leave one short
    batch, which must stay last (accelerate drops a group whose last batch is short)."""
    from accelerate.data_loader import BatchSamplerShard

    lengths = [int(n) for n in np.random.default_rng(seed).integers(1, 60, size=37)]
    seen = []
    for k in (0, 1):
        shard = BatchSamplerShard(loop.LengthGroups(lengths, 4, torch.Generator().manual_seed(seed)), 2, k)
        batches = list(shard)
        assert len(batches) == len(shard)
        seen += [i for b in batches for i in b]
    assert set(seen) == set(range(37))


def test_schedule_warms_up_then_decays_to_zero():
    cfg = config_mod.get("minilm-lora", ["epochs=2", "grad_accum=2", "warmup_ratio=0.25", "lr=0.1", "head_lr=0.1"])
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched = loop.lr_schedule(opt, cfg, batches_per_epoch=7)  # 4 optimizer steps an epoch, 8 in all
    lrs = []
    for _ in range(8):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == 0 and lrs[2] == pytest.approx(0.1) and lrs[1] == pytest.approx(0.05)
    assert all(a > b for a, b in zip(lrs[2:], lrs[3:])) and opt.param_groups[0]["lr"] == pytest.approx(0)


def test_head_gets_its_own_learning_rate_and_norms_no_decay(tiny_models):
    m = _model(tiny_models, "bert", "lr=1e-4", "head_lr=1e-2")
    groups = loop.param_groups(m.model, m.cfg)
    names = {id(p): n for n, p in m.model.named_parameters()}
    for g in groups:
        for p in g["params"]:
            head = "classifier" in names[id(p)]
            assert g["lr"] == (1e-2 if head else 1e-4)
            assert (g["weight_decay"] == 0) == (p.ndim < 2 or "norm" in names[id(p)].lower())
    assert sum(len(g["params"]) for g in groups) == sum(p.requires_grad for p in m.model.parameters())


def test_layer_decay_scales_each_block_below_the_top(tiny_models):
    m = _model(tiny_models, "bert", "adapter=none", "lr=1e-3", "head_lr=1e-2", "layer_decay=0.5")
    n_layers = m.model.config.num_hidden_layers
    lr_of = {id(p): g["lr"] for g in loop.param_groups(m.model, m.cfg) for p in g["params"]}
    for name, p in m.model.named_parameters():
        block = loop.BLOCK.search(name)
        if "classifier" in name:
            want = 1e-2
        elif block:
            want = 1e-3 * 0.5 ** (n_layers - 1 - int(block.group(1)))
        elif "embeddings" in name:
            want = 1e-3 * 0.5 ** n_layers
        else:  # the pooler
            want = 1e-3
        assert lr_of[id(p)] == pytest.approx(want), name
    assert loop.layer_scale("encoder.layer.0.attention.self.query.weight", 4, 1.0) == 1.0


def test_layer_decay_outside_its_range_is_refused():
    with pytest.raises(UserError, match="layer_decay must be in"):
        config_mod.get("minilm-lora", ["layer_decay=0"])


@pytest.mark.parametrize("capability,expected", [((7, 5), "fp16"), ((8, 0), "bf16"), ((9, 0), "bf16"),
                                                 ((6, 1), "fp16")])
def test_auto_precision_follows_the_gpu_capability(capability, expected):
    """is_bf16_supported() says yes on a T4 (emulated bf16); the rule reads the compute capability instead."""
    assert hardware.mixed_precision("auto", "cuda", capability) == expected
    assert hardware.mixed_precision("fp32", "cuda", capability) == "no"
    assert hardware.mixed_precision("bf16", "cuda", capability) == "bf16"


def test_precision_on_cpu(monkeypatch):
    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: True)
    assert hardware.mixed_precision("auto", "cpu") == "bf16"
    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: False)
    assert hardware.mixed_precision("auto", "cpu") == "no"
    with pytest.raises(UserError, match="fp16 needs a CUDA GPU"):
        hardware.mixed_precision("fp16", "cpu")


ARCHS = ["sm_70", "sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120", "compute_120"]


@pytest.mark.parametrize("capability,ok", [((6, 0), False), ((7, 5), True), ((8, 9), True), ((12, 1), True),
                                           ((6, 1), False)])
def test_a_gpu_this_torch_cannot_run_is_refused_by_name(capability, ok):
    problem = hardware.gpu_problem(0, "Tesla P100-PCIE-16GB", capability, ARCHS, "2.6.0+cu124")
    assert (problem is None) == ok
    if not ok:
        assert "Tesla P100-PCIE-16GB" in problem and f"{capability[0]}.{capability[1]}" in problem
        assert "NvidiaTeslaT4" in problem and "\n" not in problem


def test_check_gpus_raises_before_any_model_loads(monkeypatch):
    monkeypatch.setattr(hardware, "cuda_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: ARCHS)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: "Tesla P100-PCIE-16GB")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i: (6, 0))
    with pytest.raises(UserError, match="P100.*compute capability 6.0"):
        hardware.check_gpus()


def test_a_non_finite_loss_stops_the_fold_with_one_line_and_writes_nothing(tiny_models, tiny_data, tmp_path,
                                                                          monkeypatch, capsys):
    from solution.cli import main

    real = loop.make_loss

    def nan_loss(cfg, y, device):
        base = real(cfg, y, device)
        return lambda logits, t: base(logits, t) * float("nan")

    monkeypatch.setattr(loop, "make_loss", nan_loss)
    input_dir, folds_dir = tiny_data
    code = main(["train", "minilm-lora", "--input", str(input_dir), "--folds-dir", str(folds_dir), "--output",
                 str(tmp_path), "--set", f"weights={tiny_models['bert']}", "--set", "num_threads=1",
                 "--set", "epochs=1"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    line = next(ln for ln in err.splitlines() if ln.startswith("error:"))
    assert "minilm-lora fold 0: the loss is nan at step 1 of epoch 1" in line
    assert "it diverged: lower its learning rate (--set minilm-lora.lr=" in line  # no fp16 here: no overflow retry
    fold = tmp_path / "minilm-lora" / "fold0"
    assert not (fold / "oof.csv").exists() and not (fold / "DONE.json").exists()
    assert not (tmp_path / "minilm-lora" / "oof.csv").exists()
