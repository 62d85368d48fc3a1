"""The GPU run's plan and its failures: it buys expected macro-F1 per GPU-minute, takes back a model once finished
folds show that it fits, times the GPU before planning, and a fold that overflows or writes non-finite
probabilities never stops the other models (solution/budget.py, calibration.py, train.py, models/hf.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_input_dir
from tiny_models import tiny_data, tiny_models  # noqa: F401  (session fixtures)

from solution import cli
from solution import config as config_mod
from solution.models import loop
from solution.models.hf import HFModel
from solution.train import budget

SEMEVAL = dict(n_train=5470, n_val=1368, n_test=886, mean_chars=95.0)  # the 6,838-tweet set's sizes, 5 folds
EVERY_LABEL_F1 = 0.33  # about its macro-F1 of predicting every label


def t4_plan(budget_text: str, gpus: int = 2) -> budget.Plan:
    names = config_mod.profile_models("gpu")
    cost = {n: budget.prior(config_mod.get(n), device="T4", **SEMEVAL) for n in names}
    todo = {n: [budget.Job(n, k) for k in range(5)] for n in names}
    values = budget.expected_values({n: config_mod.get(n) for n in names}, "/nonexistent", EVERY_LABEL_F1)
    rows = SEMEVAL["n_train"] + SEMEVAL["n_val"]
    deadline = budget.parse_duration(budget_text) - budget.blend_reserve(rows, len(names))
    return budget.choose(todo, cost, values, [0.0] * gpus, deadline, set())


def test_the_kaggle_t4_plan_trains_the_report_s_best_models_first_and_drops_the_least_gain():
    plan = t4_plan("11h40m")
    assert {"gecko-7b-qlora", "gte-qwen1.5-7b-qlora"} <= set(plan.models)
    assert plan.models.index("gecko-7b-qlora") < plan.models.index("e5-mistral-7b-qlora")  # 0.604 before 0.403
    tight = t4_plan("10h")
    assert list(tight.skipped) == ["e5-mistral-7b-qlora"]  # the report's worst model is the one left out
    assert {"gecko-7b-qlora", "gte-qwen1.5-7b-qlora", "gemma-2b-lora"} <= set(tight.models)


def test_the_plan_keeps_the_set_of_most_value_not_the_cheapest_models():
    cost = {m: budget.FoldCost(s, 0.0, "cost model") for m, s in dict(cheap1=10, cheap2=10, good=25).items()}
    todo = {m: [budget.Job(m, 0)] for m in cost}
    values = dict(cheap1=0.1, cheap2=0.1, good=0.5)
    plan = budget.choose(todo, cost, values, [0.0], deadline=30, loaded=set())
    assert plan.models == ["good"] and set(plan.skipped) == {"cheap1", "cheap2"}
    plan = budget.choose(todo, cost, values, [0.0], deadline=None, loaded=set())
    assert plan.models == ["good", "cheap1", "cheap2"]  # value per second: 0.02 against 0.01


def test_measured_folds_and_unknown_models_get_a_value(tmp_path):
    tfidf, lexicon = config_mod.get("tfidf-lr"), config_mod.get("lexicon-lr")  # lexicon-lr: no expected_f1
    fold = tmp_path / "tfidf-lr" / "fold0"
    fold.mkdir(parents=True)
    (fold / "metrics.json").write_text(json.dumps({"config_fingerprint": tfidf.fingerprint(), "n_train": 100,
                                                   "wall_time_s": 3.0, "at_tuned_thresholds": {"macro_f1": 0.43}}))
    v = budget.expected_values({"tfidf-lr": tfidf, "lexicon-lr": lexicon}, tmp_path, 0.33)
    assert v["tfidf-lr"] == pytest.approx(0.10) and v["lexicon-lr"] == pytest.approx(0.10)


def test_gpu_corrections_carry_across_models_and_cpu_ones_stay_per_backbone(tmp_path):
    import types

    import pandas as pd

    data = types.SimpleNamespace(train=pd.DataFrame({"Tweet": ["a tweet"] * 100}), test=pd.DataFrame({"Tweet": ["x"]}))
    gemma, gecko = config_mod.get("gemma-2b-lora"), config_mod.get("gecko-7b-qlora")
    gpu = budget.Estimator(data, 80, "T4", "Tesla T4", tmp_path)
    before = gpu(gecko).seconds
    gpu.record(gemma, 50.0, 100.0)  # gemma's fold took half its estimate: the 7B estimates halve too
    assert gpu(gecko).seconds == pytest.approx(before / 2)
    cpu = budget.Estimator(data, 80, "cpu", "cpu", tmp_path, cpu_flops=100e9)
    lora, mpnet = config_mod.get("minilm-lora"), config_mod.get("mpnet-lora")
    before = cpu(mpnet).seconds
    cpu.record(lora, 50.0, 100.0)
    assert cpu(mpnet).seconds == pytest.approx(before)


def _run(inp, folds, out, *extra, models="tfidf-lr,tfidf-lr-seed7"):
    seed = ["--set", "tfidf-lr-seed7.C=1.0"] if "seed7" in models else []
    return cli.main(["run", "--models", models, "--input", str(inp), "--folds-dir", str(folds), "--output", str(out),
                     *seed, *extra])


def test_a_model_left_out_at_the_start_comes_back_when_faster_folds_free_the_time(tmp_path, monkeypatch, capsys):
    """Both models are priced at 100 s a fold against 9 minutes: only one fits at the start; tfidf-lr's folds take
    a fraction of a second, the correction shrinks the other's estimate, and it is planned again."""
    inp, folds = make_input_dir(tmp_path / "input"), tmp_path / "folds"
    monkeypatch.setattr(budget, "prior", lambda cfg, *a, **k: budget.FoldCost(100.0, 0.0, "cost model"))
    assert _run(inp, folds, tmp_path / "out", "--time-budget", "10m") == 0
    printed, err = capsys.readouterr()
    assert "SKIPPED: needs" in printed and ": left out of this run" in err
    assert "fits now" in err and "planned again" in err
    report = json.loads((tmp_path / "out" / "blend" / "report.json").read_text())
    assert sorted(report["models"]) == ["tfidf-lr", "tfidf-lr-seed7"] and not report["left_out"]


def test_non_finite_test_probabilities_fail_that_model_only_and_a_rerun_finishes_it(tmp_path, monkeypatch, capsys):
    from solution.models.tfidf import TfidfModel

    inp, folds, out = make_input_dir(tmp_path / "input"), tmp_path / "folds", tmp_path / "out"
    real = TfidfModel.predict

    def predict(self, texts):
        p = real(self, texts)
        test_rows = len(texts) == 20  # make_input_dir's test set; a fold's validation rows are 12
        return np.full_like(p, np.nan) if self.cfg.name == "tfidf-lr-seed7" and test_rows else p

    monkeypatch.setattr(TfidfModel, "predict", predict)
    assert _run(inp, folds, out) == 0  # a failed model is reported, not fatal: the submission exists
    err = capsys.readouterr().err
    assert "tfidf-lr-seed7 fold 0: non-finite probabilities on 20 of 20 test rows" in err.replace("\n", " ")
    assert "Traceback" not in err
    assert not any((out / "tfidf-lr-seed7").glob("fold*/DONE.json"))
    report = json.loads((out / "blend" / "report.json").read_text())
    assert report["models"] == ["tfidf-lr"] and (out / "submission.csv").exists()
    assert report["left_out"][0]["model"] == "tfidf-lr-seed7" and "non-finite" in report["left_out"][0]["reason"]

    monkeypatch.setattr(TfidfModel, "predict", real)
    assert _run(inp, folds, out) == 0
    report = json.loads((out / "blend" / "report.json").read_text())
    assert report["models"] == ["tfidf-lr", "tfidf-lr-seed7"]


HF_SETS = ["epochs=1", "batch_size=8", "max_length=32", "num_threads=1", "pooling=cls"]


def _train_tiny(tiny_data, tiny_models, out):
    input_dir, folds_dir = tiny_data
    argv = ["train", "minilm-lora", "--input", str(input_dir), "--folds-dir", str(folds_dir), "--output", str(out)]
    for s in [f"weights={tiny_models['llama']}", *HF_SETS]:
        argv += ["--set", s]
    return cli.main(argv)


def _overflowing(monkeypatch, always: bool):
    """fp16 on this CPU (as on a T4) and a loss that is NaN until the fold runs in the overflow-safe form."""
    monkeypatch.setattr(HFModel, "overflow_prone", lambda self: not self.cfg.overflow_safe)
    real = loop.make_loss

    def make_loss(cfg, y, device):
        fn = real(cfg, y, device)
        return (lambda logits, t: fn(logits, t) * float("nan")) if always or not cfg.overflow_safe else fn

    monkeypatch.setattr(loop, "make_loss", make_loss)


def test_an_fp16_overflow_retrains_the_fold_once_in_the_safe_form(tiny_data, tiny_models, tmp_path, monkeypatch,
                                                                   capsys):
    _overflowing(monkeypatch, always=False)
    out = tmp_path / "out"
    assert _train_tiny(tiny_data, tiny_models, out) == 0
    err = capsys.readouterr().err
    assert err.count("an fp16 overflow, so the fold is trained again") == 1  # fold 1 starts in the safe form
    m0, m1 = (json.loads((out / "minilm-lora" / f"fold{k}" / "metrics.json").read_text()) for k in (0, 1))
    assert "the loss is nan" in m0["overflow_retry"] and m1["overflow_retry"] == ""
    from solution import run as pipeline
    from solution.train import train

    outcome = train.Outcome(["minilm-lora"], {}, {"minilm-lora": {0: m0, 1: m1}})
    table = pipeline.models_table(pipeline.run_models(["minilm-lora"], outcome))
    assert "minilm-lora  trained: fold(s) [0] overflowed in fp16 and were trained again" in table
    oof = np.loadtxt(out / "minilm-lora" / "oof.csv", delimiter=",", skiprows=1, usecols=range(1, 12))
    assert np.isfinite(oof).all()


def test_an_overflow_the_safe_form_does_not_fix_is_one_line_with_the_fix(tiny_data, tiny_models, tmp_path,
                                                                         monkeypatch, capsys):
    _overflowing(monkeypatch, always=True)
    assert _train_tiny(tiny_data, tiny_models, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "the loss is nan" in err and "--set minilm-lora." in err and "Traceback" not in err
    assert not any((tmp_path / "out" / "minilm-lora").glob("fold*/DONE.json"))


def test_the_calibration_times_the_model_s_own_step(tiny_models):
    from solution.train import calibration

    cfg = config_mod.get("minilm-lora", [f"weights={tiny_models['llama']}", *HF_SETS])
    fixed, flops = calibration.calibrate(cfg, [f"l{i}" for i in range(11)], tokens=12, steps=2, warmup=1)
    assert 0 <= fixed < 1 and 1e6 < flops < 1e15


def test_a_gpu_run_is_planned_at_the_calibrated_rate_and_says_so(tiny_models, tmp_path, monkeypatch, capsys):
    from solution.train import calibration

    monkeypatch.setattr(budget, "device_class", lambda: "T4")
    monkeypatch.setattr(calibration, "calibrate", lambda cfg, labels, tokens: (0.001, 2e12))
    inp, folds = make_input_dir(tmp_path / "input"), tmp_path / "folds"
    sets = [f"minilm-lora.{s}" for s in [f"weights={tiny_models['llama']}", *HF_SETS]]
    argv = [a for s in sets for a in ("--set", s)]
    assert _run(inp, folds, tmp_path / "out", *argv, "--time-budget", "1h", models="tfidf-lr,minilm-lora") == 0
    err = capsys.readouterr().err
    assert "calibrated on" in err and "minilm-lora's training step runs at 2.0 TFLOP/s + 1.0 ms a sample" in err

    def broken(cfg, labels, tokens):
        raise RuntimeError("no kernel image")

    monkeypatch.setattr(calibration, "calibrate", broken)
    assert _run(inp, folds, tmp_path / "out2", *argv, "--time-budget", "1h", models="tfidf-lr,minilm-lora") == 0
    assert "could not time minilm-lora's training step on this GPU (RuntimeError: no kernel image)" in \
        capsys.readouterr().err
