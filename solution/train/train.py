"""The fold loop: train each model once per fold into output/<model>/."""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
from pathlib import Path

from solution import config as config_mod
from solution import folds as folds_mod
from solution import hardware, lock, log
from solution.blend import metrics, thresholds
from solution.data import CompetitionData
from solution.errors import UserError
from solution.hardware import is_main_process
from solution.io import read_prob_table, remove_stale_tmp
from solution.options import (
    Dirs,
    add_engine_args,
    add_model_args,
    common_parser,
    configs_from_args,
    default_profile,
    parse_budget,
    parse_folds,
    resolve_data,
)
from solution.train import budget as budget_mod
from solution.train import calibration, schedule
from solution.train.fold import run_job
from solution.train.model_dir import assemble, folds_to_train, model_dir, prepare_model_dir


@dataclasses.dataclass
class Outcome:
    complete: list  # every fold done and assembled
    skipped: dict  # model -> why the budget left it out
    folds: dict  # model -> {fold: metrics} of this run
    failed: dict = dataclasses.field(default_factory=dict)  # model -> its error

    def merge(self, later: "Outcome") -> "Outcome":
        return Outcome(self.complete + later.complete, {**self.skipped, **later.skipped}, {**self.folds, **later.folds},
                       {**self.failed, **later.failed})

    def raise_failures(self) -> None:
        """The first failure as the run's error, once the rest is done."""
        if self.failed:
            first = next(iter(self.failed.values()))
            more = f" (and {len(self.failed) - 1} more model(s) failed)" if len(self.failed) > 1 else ""
            raise UserError(f"{first}{more}; the other models' finished folds are kept: fix the cause, then rerun "
                            f"the same command to train the rest")


def train_models(cfgs, data: CompetitionData, dirs, only_folds=None, force: bool = False, budget_s=None,
                 on_model_done=None, verbose: bool = False, clock=None, estimate=None, announce: bool = True,
                 engine: str = "local", ray_address: str | None = None) -> Outcome:
    """Every (model, fold) job of `cfgs` within the budget; on_model_done(names) as each model completes.

    `announce`: print the plan table (False where the caller printed its own plan)."""
    ray_engine = load_engine(engine, ray_address)
    n_gpus = hardware.check_gpus() if ray_engine is None else 0  # before any model loads
    data_parallel = hardware.world_size() > 1  # accelerate launch
    if data_parallel:
        n_gpus = 1
        if budget_s is not None:  # processes planning apart could diverge and wait forever
            log.info("data-parallel training (accelerate launch): no time budget")
            budget_s = None
    fold = folds_mod.load(data, dirs.folds)
    n_splits = int(fold.max()) + 1
    wanted = list(range(n_splits)) if only_folds is None else list(only_folds)
    bad = [k for k in wanted if not 0 <= k < n_splits]
    if bad:
        raise UserError(f"--folds {bad}: folds are 0..{n_splits - 1}")
    by_name = {c.name: c for c in cfgs}
    with contextlib.ExitStack() as held:
        cluster = None
        if ray_engine is not None:  # before the folders change: a cluster that cannot be joined stops the run here
            held.enter_context(log.library_log(dirs.output / "ray.log"))
            cluster = ray_engine.connect(ray_address, data, fold, verbose)
            estimate = estimate or cluster.estimator(data, int((fold != 0).sum()), dirs.output)
        for c in cfgs if hardware.is_main_process() else []:  # one run per model folder
            held.enter_context(lock.hold(model_dir(dirs.output, c.name)))
            remove_stale_tmp(model_dir(dirs.output, c.name))
        todo = folds_together(cfgs, data, dirs, wanted, force) if data_parallel else \
            {c.name: prepare_model_dir(c, data, dirs, wanted, force) for c in cfgs}
        workers = cluster.workers(dirs.output) if cluster else None  # names the nodes before the plan
        run = JobRun(by_name, data, fold, dirs, todo, budget_s, clock or budget_mod.Clock(),
                     len(workers) if cluster else max(1, n_gpus), estimate)
        if announce:
            run.announce()
        workers = workers or schedule.make_workers(n_gpus, run.run_in_process, dirs, verbose)
        try:
            run.drive(workers, on_model_done)
        finally:
            for w in workers:
                w.close()
    return Outcome(run.complete, run.skipped, run.trained, run.failed)


RAY_INSTALL = "pip install 'ray>=2.10'"


def load_engine(engine: str, ray_address: str | None):
    """The ray_engine module for --engine ray, None for local; one line when Ray is missing."""
    if engine != "ray":
        if ray_address:
            raise UserError("--ray-address is for --engine ray; add --engine ray, or leave it out")
        return None
    if hardware.world_size() > 1:
        raise UserError("--engine ray under accelerate launch: Ray places whole folds; choose one of the two")
    try:
        from solution.train import ray_engine  # lazy: ray
    except ImportError as e:
        if not (e.name or "").startswith("ray"):
            raise
        raise UserError(f"--engine ray needs Ray, which is not installed here: {RAY_INSTALL} (in the kit's folder "
                        f"pip install -e '.[ray]'; ./run.sh --engine ray installs it itself)") from None
    return ray_engine


def folds_together(cfgs, data, dirs, wanted, force) -> dict:
    """Every process reads the folds to train before the main one changes the folders."""
    from accelerate import PartialState

    state = PartialState()
    todo = {c.name: folds_to_train(c, model_dir(dirs.output, c.name), wanted, force) for c in cfgs}
    state.wait_for_everyone()
    if is_main_process():
        for c in cfgs:
            prepare_model_dir(c, data, dirs, wanted, force)
    state.wait_for_everyone()
    return todo


class JobRun:
    """The parent's side of a training run: estimates, the plan, finished jobs, assembly."""

    def __init__(self, cfgs: dict, data, fold, dirs, todo: dict, budget_s, clock, n_workers: int, estimate=None):
        self.cfgs, self.data, self.fold, self.dirs, self.clock = cfgs, data, fold, dirs, clock
        self.budget_s, self.n_workers = budget_s, n_workers
        self.blend_s = budget_mod.blend_reserve(len(data.train), len(cfgs))  # every model may join the blend
        self.machine = estimate.machine if estimate else budget_mod.machine_id()
        self.estimate = estimate or budget_mod.Estimator(data, int((fold != 0).sum()), budget_mod.device_class(),
                                                         self.machine, dirs.output)
        self.values = budget_mod.expected_values(cfgs, dirs.output, metrics.constant_f1(data.y))
        self.pending = {n: [budget_mod.Job(n, k) for k in todo[n]] for n in cfgs if todo[n]}
        if budget_s is not None:
            self.calibrate()
        self.base_cost = {n: self.estimate.base(c) for n, c in cfgs.items()}  # corrected in cost()
        self.todo, self.skipped, self.trained, self.failed, self.dead = todo, {}, {}, {}, set()
        self.running, self.loaded, self.started = {}, set(), set()  # worker -> (job, started, FoldCost)
        self.complete = [n for n in cfgs if not todo[n] and assemble(cfgs[n], data, fold, self.mdir(n), dirs.folds)]

    def mdir(self, name: str) -> Path:
        return model_dir(self.dirs.output, name)

    def cost(self) -> dict:
        """Estimates corrected by the finished folds of their kind."""
        return {n: self.estimate.corrected(self.cfgs[n], c) for n, c in self.base_cost.items()}

    def plan(self, free_at: list):
        left = None if self.budget_s is None else self.budget_s - self.clock.now() - self.blend_s
        jobs = {n: js for n, js in self.pending.items() if js}
        return budget_mod.choose(jobs, self.cost(), self.values, free_at, left, self.loaded)

    def calibrate(self) -> None:
        est = self.estimate
        if est.device == "cpu" or est.rate is not None:
            return
        base = {n: est.base(self.cfgs[n]) for n in self.pending}
        hf = [n for n in budget_mod.choose(self.pending, base, self.values, [0.0], None, set()).models
              if self.cfgs[n].kind == "hf" and base[n].modelled]
        if not hf:
            return
        cfg = self.cfgs[hf[0]]
        try:
            with log.library_log(self.dirs.output / "plan.log"):
                est.rate = calibration.calibrate(cfg, self.data.labels, budget_mod.tokens_per_tweet(cfg, est.chars))
        except Exception as e:  # a plan from the table beats no run
            log.warn(f"could not time {cfg.name}'s training step on this GPU ({type(e).__name__}: {e}); planning "
                     f"with the table's guess for a {est.device}")
            return
        log.info(f"calibrated on {self.machine}: {cfg.name}'s training step runs at {est.rate[1] / 1e12:.1f} TFLOP/s "
                 f"+ {est.rate[0] * 1e3:.1f} ms a sample; planning with it")

    def announce(self) -> None:
        if not is_main_process():
            return
        p = self.plan([0.0] * self.n_workers)
        print(budget_mod.format_plan(p, self.cost(), {n: self.pending.get(n, []) for n in self.cfgs},
                                     {n: len(self.fold_ids()) for n in self.complete}, self.budget_s,
                                     self.n_workers, self.machine, self.blend_s), flush=True)

    def fold_ids(self) -> list[int]:
        return list(range(int(self.fold.max()) + 1))

    def next_job(self, worker: int):
        """The job the plan starts now on this worker, or None."""
        now = self.clock.now()
        # a busy worker frees at its job's estimate (a minute away if over)
        free_at = [math.inf if w in self.dead else
                   max(60.0, self.running[w][1] + self.running_estimate(w) - now) if w in self.running else 0.0
                   for w in range(self.n_workers)]
        p = self.plan(free_at)
        for model in [m for m in self.skipped if m not in p.skipped]:
            why = self.skipped.pop(model)
            if model in p.models:
                log.info(f"{model} fits now ({why} before): planned again")
        for model, why in p.skipped.items():
            if model not in self.skipped:
                log.warn(f"{model}: left out of this run, {why}; it comes back if finished folds free the time, "
                         f"else rerun with a larger --time-budget (or resume in a next session) to train it")
            self.skipped[model] = why
        for job, w, start, _ in p.runs:
            if w == worker and start <= 1e-6:
                self.pending[job.model].remove(job)
                return job
        return None

    def run_in_process(self, job, cfg_dict: dict) -> dict:
        return run_job(self.cfgs[job.model], self.data, self.fold, job.fold, self.mdir(job.model))

    def drive(self, workers: list, on_model_done) -> None:
        while True:
            self.dead |= {w.index for w in workers if not getattr(w, "alive", True) and not w.busy}
            for w in workers:
                job = None if (w.busy or w.index in self.dead) else self.next_job(w.index)
                if job is not None:
                    self.start(w, job)
            results = schedule.next_result(workers)
            if not results:
                break
            for r in results:
                self.finish(r, on_model_done)

    def running_estimate(self, worker: int) -> float:
        job, _, job_cost = self.running[worker]
        return self.estimate.corrected(self.cfgs[job.model], job_cost).seconds

    def start(self, worker, job) -> None:
        c = self.base_cost[job.model]
        load = 0.0 if (worker.index, job.model) in self.loaded else c.load_s
        job_cost = dataclasses.replace(c, seconds=c.seconds + load, load_s=0.0)
        self.running[worker.index] = (job, self.clock.now(), job_cost)
        est = self.running_estimate(worker.index)
        self.loaded = {(w, m) for w, m in self.loaded if w != worker.index} | {(worker.index, job.model)}
        if job.model not in self.started:  # after the plan, in the order the run takes
            self.started.add(job.model)
            log.info(f"{job.model}: training fold(s) {self.todo[job.model]} into {self.mdir(job.model)}/")
        if len(self.cfgs) > 1 or self.n_workers > 1:
            where = getattr(worker, "label", f"GPU worker {worker.index}")
            log.info(f"{job.model} fold {job.fold}" + (f" on {where}" if self.n_workers > 1 else "")
                     + f" (about {est / 60:.1f} min)")
        worker.submit(job, self.cfgs[job.model].to_dict())

    def finish(self, r, on_model_done) -> None:
        job = r.job
        _, started, job_cost = self.running.pop(next(w for w, v in self.running.items() if v[0] == job))
        if r.error:  # the other models go on
            self.failed.setdefault(job.model, r.error)
            dropped = self.pending.pop(job.model, [])
            log.warn(f"{r.error}" + (f"; not training {job.model}'s other fold(s) {[j.fold for j in dropped]} in "
                                     f"this run" if dropped else ""))
            return
        m = r.metrics
        self.trained.setdefault(job.model, {})[job.fold] = m
        if "at_0.5" not in m:  # a data-parallel process that does not write
            return
        if m.get("overflow_retry") and not self.cfgs[job.model].overflow_safe:
            self.cfgs[job.model] = dataclasses.replace(self.cfgs[job.model], overflow_safe=True)
        if job_cost.modelled:
            self.estimate.record(self.cfgs[job.model], self.clock.now() - started, job_cost.seconds)
        if note := self.estimate.probe(self.cfgs[job.model], float(m.get("once_s", 0.0))):
            log.info(note)
        a, t = m["at_0.5"], m["at_tuned_thresholds"]
        print(f"{job.model} fold {job.fold}: macro-F1 {a['macro_f1']:.4f} at 0.5, {t['macro_f1']:.4f} tuned on fold; "
              f"micro-F1 {a['micro_f1']:.4f}; {m['wall_time_s']:.0f}s; peak RSS {m['peak_rss_mb']:.0f} MB", flush=True)
        if self.pending.get(job.model) or any(v[0].model == job.model for v in self.running.values()):
            return
        self.model_complete(job.model, on_model_done)

    def model_complete(self, name: str, on_model_done) -> None:
        from solution.models.hf import release_cached_base  # lazy: torch

        self.pending.pop(name, None)
        release_cached_base()
        try:
            if not assemble(self.cfgs[name], self.data, self.fold, self.mdir(name), self.dirs.folds):
                return  # --folds asked for some
        except UserError as e:  # the other models go on
            self.failed.setdefault(name, str(e))
            log.warn(f"{e}; {name} is left out of the blend")
            return
        self.complete.append(name)
        oof = read_prob_table(self.mdir(name) / "oof.csv", self.data.labels)[self.data.labels].to_numpy()
        s05 = metrics.scores(self.data.y, oof, 0.5)
        st = metrics.scores(self.data.y, oof, thresholds.tune(self.data.y, oof))
        print(f"{name} OOF ({len(self.fold_ids())} folds): macro-F1 {s05['macro_f1']:.4f} at 0.5, "
              f"{st['macro_f1']:.4f} with per-class thresholds tuned on OOF -> {self.mdir(name) / 'oof.csv'}",
              flush=True)
        if on_model_done:
            on_model_done(list(self.complete))


def train_model(cfg, data: CompetitionData, folds_dir: Path, output: Path, only_folds=None, force=False) -> dict:
    """One model's folds in this process, without a budget."""

    dirs = Dirs(data.input_dir, Path(folds_dir), Path(output))
    out = train_models([cfg], data, dirs, only_folds, force)
    return {"folds": out.folds.get(cfg.name, {}), "complete": cfg.name in out.complete}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m solution train", parents=[common_parser()],
                                description="Train models once per fold (reads folds/folds.csv; run `folds` first).")
    p.add_argument("models", nargs="*",
                   help=f"model names (known: {', '.join(config_mod.known())}; NAME-seedN trains NAME with "
                        f"seed N into its own folder, e.g. minilm-lora-seed7)")
    p.add_argument("--profile", choices=sorted(config_mod.PROFILES), default=None,
                   help="train a profile's models (default when no model is named: gpu if CUDA is present, else cpu)")
    p.add_argument("--folds", default=None, help="only these folds, e.g. 0,2 (default: all)")
    p.add_argument("--force", action="store_true", help="retrain folds that are already done")
    add_model_args(p)
    add_engine_args(p)
    args = p.parse_args(argv)
    names = args.models or config_mod.profile_models(args.profile or default_profile())
    cfgs = configs_from_args(names, args)  # validate before any work
    data, dirs = resolve_data(args)
    budget_s = parse_budget(args)
    train_models(cfgs, data, dirs, parse_folds(args.folds), force=args.force, budget_s=budget_s,
                 verbose=args.verbose, engine=args.engine, ray_address=args.ray_address).raise_failures()
    return 0


