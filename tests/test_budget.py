"""The time budget (solution/budget.py) and per-model settings: what the plan says, what it skips, and that a
budgeted run always ends with a submission that a later, larger run completes into the unbudgeted one."""
from __future__ import annotations

import json
import types

import numpy as np
import pytest
from conftest import make_input_dir

from solution import cli
from solution import config as config_mod
from solution.errors import UserError
from solution.options import configs_from_args
from solution.train import budget


@pytest.mark.parametrize("text,seconds", [("28m", 1680), ("2h", 7200), ("1h30m", 5400), ("90s", 90),
                                          ("11h30m", 41400), ("45", 2700), ("0.5h", 1800)])
def test_durations(text, seconds):
    assert budget.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "-5m", "3x", "0x"])
def test_bad_durations_are_one_line_errors(text):
    with pytest.raises(UserError, match="--time-budget"):
        budget.parse_duration(text)


def _cost(**per_fold):
    return {m: budget.FoldCost(s, 0.0, "test") for m, s in per_fold.items()}


def _jobs(**n):
    return {m: [budget.Job(m, k) for k in range(folds)] for m, folds in n.items()}


def test_plan_keeps_only_models_whose_every_fold_fits_and_tries_cheaper_ones_after():
    p = budget.simulate(_jobs(a=5, big=5, c=5), _cost(a=10, big=100, c=20), [0.0], deadline=400, loaded=set())
    assert set(p.skipped) == {"big"}
    assert [j.model for j, *_ in p.runs] == ["a"] * 5 + ["c"] * 5
    assert max(end for *_, end in p.runs) == pytest.approx(150)


def test_plan_spreads_jobs_over_workers_as_they_free():
    p = budget.simulate(_jobs(a=2, b=3), _cost(a=30, b=10), [0.0, 5.0], deadline=None, loaded=set())
    starts = [(j.model, j.fold, w, s) for j, w, s, _ in p.runs]
    assert starts[:2] == [("a", 0, 0, 0.0), ("a", 1, 1, 5.0)]
    assert {w for _, _, w, _ in starts[2:]} == {0, 1} and not p.skipped  # b's folds go to whichever is free first


def test_loading_the_base_counts_once_per_worker_and_model():
    cost = {"m": budget.FoldCost(10.0, 50.0, "test")}
    p = budget.simulate(_jobs(m=3), cost, [0.0], deadline=None, loaded=set())
    assert [end for *_, end in p.runs] == [60.0, 70.0, 80.0]
    p = budget.simulate(_jobs(m=1), cost, [0.0], deadline=None, loaded={(0, "m")})
    assert p.runs[0][3] == 10.0


def test_the_plan_table_shows_the_once_per_model_minutes_apart_from_the_per_fold_ones():
    """An embedding member's encoder pass (load_s) is paid once: the table shows it beside the time a fold, so 6 s
    a fold ending at minute 10.5 reads as what it is."""
    cost = {"emb": budget.FoldCost(6.0, 600.0, "cost model")}
    todo = _jobs(emb=5)
    table = budget.format_plan(budget.simulate(todo, cost, [0.0], None, set()), cost, todo, {}, 1800.0, 1, "cpu")
    header, row = table.splitlines()[1:3]
    assert "+ once" in header and row.split()[2:4] == ["6s", "10.0m"] and "10.5 min" in row


def test_cost_model_ranks_the_registry_sensibly():
    args = dict(n_train=5470, n_val=1368, n_test=886, mean_chars=95.0)
    # a model's 5 folds, with an embedding model's one encoding pass
    cpu = {n: (lambda c: 5 * c.seconds + c.load_s)(budget.prior(config_mod.get(n), device="cpu", **args))
           for n in ("tfidf-lr", "minilm-emb-lr", "minilm-lora", "minilm-ft")}
    assert max(cpu["tfidf-lr"], cpu["minilm-emb-lr"]) < 120 < cpu["minilm-lora"] < cpu["minilm-ft"] < 3000
    t4 = {n: budget.prior(config_mod.get(n), device="T4", **args) for n in config_mod.PROFILES["gpu"]}
    assert t4["gemma-2b-ia3"].seconds < t4["qwen1.5-7b-qlora"].seconds < t4["e5-mistral-7b-qlora"].seconds
    assert 20 * 60 < t4["qwen1.5-7b-qlora"].seconds < 90 * 60  # the estimate: 30-45 min per 7B fold
    assert t4["qwen1.5-7b-qlora"].load_s > t4["gemma-2b-lora"].load_s > 0


def test_scikit_learn_members_are_priced_apart_from_the_torch_calibration():
    """A slow torch calibration (one core, no bf16) prices the encoder, not scikit-learn's part."""
    args = dict(n_train=5470, n_val=1368, n_test=886, mean_chars=95.0, device="cpu")
    for name in ("tfidf-lr", "minilm-emb-lr", "lexicon-lr"):
        fast, slow = (budget.prior(config_mod.get(name), cpu_flops=f, **args) for f in (230e9, 44e9))
        assert slow.seconds == fast.seconds and (slow.load_s > fast.load_s if name == "minilm-emb-lr" else True)
    lex = {n: budget.prior(config_mod.get(n), **args).seconds for n in ("tfidf-lr", "lexicon-lr", "tfidf-lex-lr")}
    assert lex["tfidf-lex-lr"] == lex["tfidf-lr"] + lex["lexicon-lr"]  # the n-grams, then the lexicon on top


def test_a_calibrated_cpu_is_planned_at_the_speed_a_whole_fold_sustains():
    """calibrate_cpu's few steps read faster than a fold's training or encoder pass runs: a reading that much above
    the reference machine's sustained speed prices every torch part like the reference."""
    args = dict(n_train=5470, n_val=1368, n_test=886, mean_chars=95.0, device="cpu")
    reading = budget.DEVICES["cpu"][1] * budget.CALIBRATION_OVER_SUSTAINED
    for name in ("minilm-lora", "minilm-ft", "mpnet-emb-lr"):
        plain, calibrated = (budget.prior(config_mod.get(name), cpu_flops=f, **args) for f in (None, reading))
        assert (calibrated.seconds, calibrated.load_s) == pytest.approx((plain.seconds, plain.load_s))


def test_finished_folds_correct_later_estimates_of_their_own_kind_only(tmp_path):
    """Fine-tuning that took twice its estimate says nothing about scikit-learn's constants, and the other way
    round; every re-plan (pipeline.train_replanning) reads the same corrected estimates."""
    import pandas as pd

    data = types.SimpleNamespace(train=pd.DataFrame({"Tweet": ["a tweet of about forty characters, no more"] * 100}),
                                 test=pd.DataFrame({"Tweet": ["x"] * 20}))
    est = budget.Estimator(data, 80, "cpu", "this machine", tmp_path, cpu_flops=100e9)
    lora, ft, tfidf = (config_mod.get(n) for n in ("minilm-lora", "minilm-ft", "tfidf-lr"))
    before = {c.name: est(c) for c in (lora, ft, tfidf)}
    est.record(tfidf, 0.5 * before["tfidf-lr"].seconds, before["tfidf-lr"].seconds)
    for took in (2.0, 2.2, 1.8):
        est.record(lora, took * before["minilm-lora"].seconds, before["minilm-lora"].seconds)
    assert est(lora).seconds == pytest.approx(2 * before["minilm-lora"].seconds) and est(lora).modelled
    assert est(ft).seconds == pytest.approx(2 * before["minilm-ft"].seconds) and "x2.00" in est(ft).source
    assert est(tfidf).seconds == pytest.approx(0.5 * before["tfidf-lr"].seconds)
    assert est.base(lora).seconds == pytest.approx(before["minilm-lora"].seconds)  # corrections are not compounded
    mpnet = config_mod.get("mpnet-emb-lr")
    est.record(config_mod.get("minilm-emb-lr"), 30.0, 60.0)  # MiniLM's encoder pass says nothing about mpnet's
    assert est(mpnet).seconds == pytest.approx(est.base(mpnet).seconds)


def test_the_first_minilm_encoder_pass_re_measures_the_cpu_once(tmp_path, monkeypatch):
    """minilm-emb-lr's fp32 pass took half what the calibrated rate priced: every later torch estimate halves (its own
    kind's correction is absorbed, not applied twice); another backbone's pass, a short pass, a GPU, a bf16 pass and a
    second pass change nothing."""
    import pandas as pd

    from solution import hardware

    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: True)
    bf16 = budget.Estimator(types.SimpleNamespace(train=pd.DataFrame({"Tweet": ["x"] * 70}), test=pd.DataFrame(
        {"Tweet": ["x"] * 9})), 56, "cpu", "this machine", tmp_path, cpu_flops=40e9)
    assert not bf16.probes(config_mod.get("minilm-emb-lr"))
    assert bf16.probe(config_mod.get("minilm-emb-lr"), 100.0) is None
    assert bf16.probes(config_mod.get("minilm-emb-lr", ["precision=fp32"]))
    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: False)

    data = types.SimpleNamespace(train=pd.DataFrame({"Tweet": ["a tweet of about forty characters, no more"] * 7000}),
                                 test=pd.DataFrame({"Tweet": ["x"] * 900}))
    est = budget.Estimator(data, 5600, "cpu", "this machine", tmp_path, cpu_flops=40e9)
    emb, top3, mpnet = (config_mod.get(n) for n in ("minilm-emb-lr", "minilm-top3-ft", "mpnet-emb-lr"))
    pass_s, top3_s = est(emb).load_s, est(top3).seconds
    assert pass_s > budget.PROBE_MIN_S * 2  # the test's data make a pass long enough to count
    assert est.probe(mpnet, est(mpnet).load_s / 2) is None and est.probe(emb, budget.PROBE_MIN_S / 2) is None
    assert est.cpu_flops == 40e9 and not est.checked(top3)
    est.record(emb, pass_s / 2 + 5, pass_s + 5)
    note = est.probe(emb, pass_s / 2)
    assert est.cpu_flops == pytest.approx(80e9) and "runs at 80 GFLOP/s" in note
    assert est(emb).load_s == pytest.approx(pass_s / 2) and est(top3).seconds < 0.6 * top3_s
    assert est.probe(emb, pass_s / 4) is None and est.cpu_flops == pytest.approx(80e9)  # once per run
    assert est.checked(top3) and est.checked(mpnet) and not est.checked(config_mod.get("tfidf-lr"))  # torch's work
    gpu = budget.Estimator(data, 5600, "H100", "this machine", tmp_path, cpu_flops=40e9)
    assert not gpu.probes(emb) and gpu.probe(emb, 100.0) is None


def test_per_model_settings_reach_only_their_model():
    args = types.SimpleNamespace(overrides=["tfidf-lr.C=2.0", "seed=3", "qwen1.5-7b-qlora.lr=1e-5"], report_to=None)
    tf, emb, qwen = configs_from_args(["tfidf-lr", "minilm-emb-lr", "qwen1.5-7b-qlora"], args)
    assert tf.C == 2.0 and emb.C == config_mod.get("minilm-emb-lr").C  # C reached tfidf-lr only
    assert qwen.lr == 1e-5 and tf.seed == emb.seed == qwen.seed == 3
    with pytest.raises(UserError, match="'nope' is not among the models"):
        configs_from_args(["tfidf-lr"], types.SimpleNamespace(overrides=["nope.C=1"], report_to=None))
    with pytest.raises(UserError, match="has no setting 'epochs'"):
        configs_from_args(["tfidf-lr", "minilm-lora"], types.SimpleNamespace(overrides=["tfidf-lr.epochs=1"],
                                                                            report_to=None))


MODELS = "tfidf-lr,tfidf-lr-seed7"


def _run(inp, folds, out, *extra):
    return cli.main(["run", "--models", MODELS, "--input", str(inp), "--folds-dir", str(folds), "--output", str(out),
                     "--set", "tfidf-lr-seed7.C=1.0", *extra])


def test_a_small_budget_still_ends_in_a_submission_and_a_larger_one_completes_the_rest(tmp_path, monkeypatch,
                                                                                       capsys):
    inp, folds = make_input_dir(tmp_path / "input"), tmp_path / "folds"
    assert _run(inp, folds, tmp_path / "full") == 0  # no budget: both models

    real_prior = budget.prior

    def prior(cfg, *a, **k):  # the seed-7 model "costs" 10 minutes a fold on this machine
        c = real_prior(cfg, *a, **k)
        return budget.FoldCost(600.0, c.load_s, c.source) if cfg.name == "tfidf-lr-seed7" else c

    monkeypatch.setattr(budget, "prior", prior)
    out = tmp_path / "budgeted"
    capsys.readouterr()
    assert _run(inp, folds, out, "--time-budget", "10m") == 0
    printed, err = capsys.readouterr()
    assert "plan on 1 worker(s)" in printed and "budget 10.0 min" in printed
    assert "tfidf-lr-seed7" in printed and "SKIPPED: needs 50.0 min" in printed
    assert "tfidf-lr-seed7: left out of this run" in err
    report = json.loads((out / "blend" / "report.json").read_text())
    assert report["models"] == ["tfidf-lr"] and (out / "submission.csv").exists()
    assert [d["model"] for d in report["left_out"]] == ["tfidf-lr-seed7"]
    assert report["left_out"][0]["reason"].startswith("out of the time budget: needs ")  # as corrected last
    assert "tfidf-lr-seed7" in (out / "blend" / "report.md").read_text()
    assert not (out / "tfidf-lr-seed7" / "fold0" / "DONE.json").exists()

    capsys.readouterr()
    assert _run(inp, folds, out, "--time-budget", "2h") == 0  # the rest, and the same result as no budget
    printed, err = capsys.readouterr()
    assert "tfidf-lr-seed7: training fold(s) [0, 1, 2, 3, 4]" in err and "tfidf-lr: training fold(s)" not in err
    for name in ("submission.csv", "tfidf-lr/oof.csv", "tfidf-lr-seed7/oof.csv", "tfidf-lr-seed7/test.csv"):
        assert (out / name).read_bytes() == (tmp_path / "full" / name).read_bytes(), name


def test_no_model_within_the_budget_is_one_clear_error(tmp_path, monkeypatch, capsys):
    inp, folds = make_input_dir(tmp_path / "input"), tmp_path / "folds"
    monkeypatch.setattr(budget, "prior", lambda cfg, *a, **k: budget.FoldCost(3600.0, 0.0, "cost model"))
    assert _run(inp, folds, tmp_path / "out", "--time-budget", "5m") == 2
    err = capsys.readouterr().err
    assert "error: no model finished within the time budget" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "submission.csv").exists()


def test_measured_folds_replace_the_cost_model(tmp_path):
    cfg = config_mod.get("tfidf-lr")
    for k, secs in enumerate([10.0, 14.0]):
        d = tmp_path / f"fold{k}"
        d.mkdir()
        (d / "metrics.json").write_text(json.dumps({"machine": "m", "config_fingerprint": cfg.fingerprint(),
                                                    "n_train": 100, "wall_time_s": secs}))
    got = budget.measured(tmp_path, cfg, "m", n_train=200)
    assert got.seconds == pytest.approx(24.0) and "measured (2 folds" in got.source
    assert budget.measured(tmp_path, cfg, "another machine", 200) is None
    # a frozen-blocks member: fold 0 ran the one pass (300 s of its 420); the folds cost 120 s, the pass once
    top2 = config_mod.get("mpnet-top2-ft")
    for k, (secs, once) in enumerate([(420.0, 300.0), (120.0, 0.0)]):
        (tmp_path / f"top2/fold{k}").mkdir(parents=True)
        (tmp_path / f"top2/fold{k}/metrics.json").write_text(json.dumps(
            {"machine": "m", "config_fingerprint": top2.fingerprint(), "n_train": 100, "wall_time_s": secs,
             "once_s": once}))
    got = budget.measured(tmp_path / "top2", top2, "m", n_train=100)
    assert (got.seconds, got.load_s) == (pytest.approx(120.0), pytest.approx(300.0))
    assert budget.correction([(20.0, 10.0), (30.0, 10.0), (10.0, 10.0)]) == pytest.approx(2.0)
    # an encoder pass of 100 s against 80 s estimated, then four fits of 3 s against 5: the pass decides
    assert budget.correction([(100.0, 80.0)] + [(3.0, 5.0)] * 4) == pytest.approx(112 / 100)
    assert np.isclose(budget.correction([]), 1.0)


def test_a_setting_no_model_of_the_run_has_is_an_error():
    with pytest.raises(UserError, match="--set eppchs=1: no model of this run"):
        configs_from_args(["tfidf-lr", "minilm-lora"], types.SimpleNamespace(overrides=["eppchs=1"], report_to=None))


def test_the_blend_reserve_grows_with_rows_and_members_and_a_tiny_budget_still_trains_a_cheap_member(tmp_path, capsys):
    """The reserve is named in the plan and scales: a 40 s budget trains tfidf-lr on small data (a fixed 90 s
    reserve left it nothing), and a 7-member blend of 6,838 rows keeps a minute and a half."""
    assert budget.blend_reserve(60, 1) < budget.blend_reserve(6838, 1) < budget.blend_reserve(6838, 7)
    assert budget.blend_reserve(480, 2) < 15 and 60 < budget.blend_reserve(6838, 7) < 120
    inp, folds = make_input_dir(tmp_path / "input"), tmp_path / "folds"
    assert cli.main(["run", "--models", "tfidf-lr", "--input", str(inp), "--folds-dir", str(folds), "--output",
                     str(tmp_path / "out"), "--time-budget", "40s"]) == 0
    printed = "".join(capsys.readouterr())
    assert "budget 40 s (10 s of it kept for the blend)" in printed and "planned" in printed
    assert (tmp_path / "out" / "submission.csv").exists()
