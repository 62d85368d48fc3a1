"""The fold loop: train a model once per fold, write OOF/test probabilities, metrics and weights.

Layout under output/<model>/:
  config.json                       resolved config + fingerprints of the config, data and folds
  fold<k>/oof.csv, fold<k>/test.csv ID + one probability per label (validation rows / test rows)
  fold<k>/metrics.json              scores at 0.5 and at thresholds tuned on the fold, speed, memory
  fold<k>/model/                    what `predict` reloads (adapter + head, or the sklearn pipeline)
  fold<k>/DONE.json                 written last: a fold without it is redone from scratch
  oof.csv, test.csv                 all folds assembled (train order; test averaged over folds)
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import resource
import shutil
import time
from pathlib import Path

import numpy as np

from solution import config as config_mod
from solution import folds as folds_mod
from solution import lock, log, metrics, thresholds
from solution.data import ID, TEXT, CompetitionData
from solution.errors import UserError, rejected_setting
from solution.io import prob_table, read_json, read_prob_table, remove_stale_tmp, write_csv, write_json
from solution.models import model_class
from solution.trained import DONE, folds_signature  # noqa: F401  (train.DONE: the marker's name)


def model_dir(output: Path, name: str) -> Path:
    return Path(output) / name


def _check_or_write_config(cfg, mdir: Path, signature: dict, labels: list[str], force: bool) -> None:
    """One config -> one folder: a folder trained with another config or other folds is never mixed in."""
    path = mdir / "config.json"
    record = {"name": cfg.name, "config": cfg.to_dict(), "config_fingerprint": cfg.fingerprint(),
              "folds": signature, "labels": labels}
    if path.exists():
        old = read_json(path)
        new = json.loads(json.dumps(record["config"]))  # as stored: tuples read back as lists
        diff = sorted(k for k, v in new.items()
                      if k not in config_mod.RUNTIME_FIELDS and old.get("config", {}).get(k) != v)
        if old.get("config_fingerprint") != record["config_fingerprint"]:
            problem = f"another config (differs in: {', '.join(diff) or '?'})"
        elif old.get("folds") != signature or old.get("labels") != labels:
            problem = "other folds or data than the current folds/"
        else:
            problem = None
        finished = any(mdir.glob(f"fold*/{DONE}"))  # none: nothing to lose, e.g. a setting the library refused
        if problem and finished and not force:
            raise UserError(f"{mdir} holds a model trained with {problem}; rerun with --force to retrain it, "
                            f"or use another --output")
        if problem:
            why = "--force given" if finished else "no fold finished"
            log.info(f"{mdir}: trained with {problem}; {why}, removing it")
            lock.clear(mdir)
    write_json(record, path)


def fold_done(fold_dir: Path, cfg) -> bool:
    from solution.trained import fold_done as done  # the one rule, shared with blend and predict

    return done(fold_dir, cfg.fingerprint())


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def train_fold(cfg, data: CompetitionData, fold: np.ndarray, k: int, mdir: Path) -> dict:
    from solution.hardware import is_main_process

    fold_dir = mdir / f"fold{k}"
    writes = is_main_process()  # data-parallel (accelerate launch): every process trains, one writes
    if writes and fold_dir.exists():  # a killed run's leftovers: start this fold cleanly
        shutil.rmtree(fold_dir)
    if writes:
        fold_dir.mkdir(parents=True)
    tr, va = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
    y = data.y
    texts = data.train[TEXT].tolist()
    cls = model_class(cfg.kind)
    model = cls(cfg, data.labels)
    model.fold_name = f"{cfg.name} fold {k}"
    t0, once0 = time.time(), _once_seconds(cfg)
    res, test_probs, fit_s = fit_and_predict(model, [texts[i] for i in tr], y[tr], [texts[i] for i in va], y[va],
                                             data.test[TEXT].tolist(), fold_dir)
    if not writes:
        return {"model": cfg.name, "fold": k, "wall_time_s": time.time() - t0}
    model.save(fold_dir / "model")
    ids = data.train[ID].to_numpy()
    write_csv(prob_table(ids[va], res.val_probs, data.labels), fold_dir / "oof.csv")
    write_csv(prob_table(data.test[ID], test_probs, data.labels), fold_dir / "test.csv")
    tuned = thresholds.tune(y[va], res.val_probs)
    m = {
        "model": cfg.name, "fold": k, "seed": cfg.seed, "n_train": len(tr), "n_val": len(va),
        "at_0.5": metrics.scores(y[va], res.val_probs, 0.5, data.labels),
        "at_tuned_thresholds": metrics.scores(y[va], res.val_probs, tuned, data.labels),
        "note": "tuned thresholds are fit on this fold's validation rows (optimistic); the blend tunes them on all OOF",
        "kept_epoch": res.kept_epoch, "history": res.history,
        "wall_time_s": time.time() - t0, "once_s": _once_seconds(cfg) - once0, "fit_time_s": fit_s,
        "peak_rss_mb": peak_rss_mb(), **res.extra, "overflow_retry": getattr(model, "overflow_retry", ""),
        "machine": _machine(), "config_fingerprint": cfg.fingerprint(),
    }
    write_json(m, fold_dir / "metrics.json")
    write_json({"fold": k, "seed": cfg.seed, "config_fingerprint": cfg.fingerprint()}, fold_dir / DONE)
    return m


def fit_and_predict(model, train_texts, y_train, val_texts, y_val, test_texts, fold_dir: Path):
    """(FitResult, test probabilities, fit seconds); outputs must be finite, and after a non-finite loss or output
    a model with a numerically safer form (HFModel.make_safe: fp16 overflow) trains the fold once more in it."""
    from solution.models import NonFinite

    t0 = time.time()
    while True:
        try:
            res = model.fit(train_texts, y_train, val_texts, y_val, log_dir=fold_dir)
            check_finite(res.val_probs, model.fold_name, "validation")
            fit_s = time.time() - t0
            test_probs = check_finite(model.predict(test_texts), model.fold_name, "test")
            return res, test_probs, fit_s
        except NonFinite as e:
            if not getattr(model, "make_safe", lambda e: False)(e):
                raise


def check_finite(probs, who: str, split: str):
    from solution.models import NonFinite

    probs = np.asarray(probs)
    bad = int((~np.isfinite(probs)).reshape(len(probs), -1).any(axis=1).sum())
    if bad:
        raise NonFinite(f"{who}: non-finite probabilities on {bad} of {len(probs)} {split} rows")
    return probs


def run_job(cfg, data: CompetitionData, fold: np.ndarray, k: int, mdir: Path) -> dict:
    """One (model, fold) job as a worker runs it: the libraries' talk to train.log, a setting the library
    refuses as one line naming it."""
    with log.library_log(mdir / "train.log"), rejected_setting(cfg):
        return train_fold(cfg, data, fold, k, mdir)


def _once_seconds(cfg) -> float:
    """This process's seconds in once-per-model passes (frozen blocks, models/frozen.py; an embedding member's
    encoder, models/embed.py): a fold that ran one records them apart (once_s), so that budget.measured prices them
    once per process, not per fold, and the run's estimator can read this CPU's speed off the pass."""
    if cfg.kind == "embed":
        from solution.models import embed

        return embed.seconds()
    if not getattr(cfg, "frozen_layers", 0):
        return 0.0
    from solution.models import frozen

    return frozen.seconds()


def _machine() -> str:
    from solution.budget import machine_id

    return machine_id()


def assemble(cfg, data: CompetitionData, fold: np.ndarray, mdir: Path) -> bool:
    """Write oof.csv (train order) and test.csv (mean over folds) once every fold is done."""
    from solution.trained import fold_probs, missing_folds  # the one reader of fold files, shared with blend

    if missing_folds(mdir, cfg.fingerprint(), int(fold.max()) + 1):
        return False
    oof, tests = fold_probs(mdir, data, fold, cfg.fingerprint())
    write_csv(prob_table(data.train[ID], oof, data.labels), mdir / "oof.csv")
    write_csv(prob_table(data.test[ID], np.mean(tests, axis=0), data.labels), mdir / "test.csv")
    return True


def folds_to_train(cfg, mdir: Path, wanted: list[int], force: bool) -> list[int]:
    return list(wanted) if force else [k for k in wanted if not fold_done(mdir / f"fold{k}", cfg)]


def prepare_model_dir(cfg, data: CompetitionData, dirs, wanted: list[int], force: bool) -> list[int]:
    """Check (or write) the model folder's config and return the folds to train; --force clears their markers."""
    mdir = model_dir(dirs.output, cfg.name)
    _check_or_write_config(cfg, mdir, folds_signature(dirs.folds), data.labels, force)
    todo = folds_to_train(cfg, mdir, wanted, force)
    for k in todo:
        (mdir / f"fold{k}" / DONE).unlink(missing_ok=True)
    skipped = sorted(set(wanted) - set(todo))
    if skipped:
        log.info(f"{cfg.name}: fold(s) {skipped} already done, skipping (--force retrains)")
    if todo:
        log.info(f"{cfg.name}: training fold(s) {todo} into {mdir}/")
    return todo


@dataclasses.dataclass
class Outcome:
    complete: list  # models with every fold done and oof.csv/test.csv assembled
    skipped: dict  # model -> why the time budget left it out
    folds: dict  # model -> {fold: metrics} trained in this run
    failed: dict = dataclasses.field(default_factory=dict)  # model -> the one-line error that stopped it

    def merge(self, later: "Outcome") -> "Outcome":
        """This run's outcome followed by a later one's (other models: the budget's climb goes on)."""
        return Outcome(self.complete + later.complete, {**self.skipped, **later.skipped}, {**self.folds, **later.folds},
                       {**self.failed, **later.failed})

    def raise_failures(self) -> None:
        """After what could be done is done: the first failure as the run's error (exit 2)."""
        if self.failed:
            first = next(iter(self.failed.values()))
            more = f" (and {len(self.failed) - 1} more model(s) failed)" if len(self.failed) > 1 else ""
            raise UserError(f"{first}{more}; the other models' finished folds are kept: fix the cause, then rerun "
                            f"the same command to train the rest")


def train_models(cfgs, data: CompetitionData, dirs, only_folds=None, force: bool = False, budget_s=None,
                 on_model_done=None, verbose: bool = False, clock=None, estimate=None) -> Outcome:
    """Every (model, fold) job of `cfgs`, on one worker per GPU (or in this process), within the budget.

    on_model_done(names) is called with the complete models each time one more completes (the run blends
    there, so a submission exists as early as possible)."""
    from solution import budget as budget_mod
    from solution import hardware, schedule

    n_gpus = hardware.check_gpus()  # refuse a GPU this torch cannot run before any model loads
    data_parallel = hardware.world_size() > 1  # accelerate launch: these processes train each fold together
    if data_parallel:
        n_gpus = 1
        if budget_s is not None:  # processes planning apart could part ways at a fold and wait forever
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
        for c in cfgs if hardware.is_main_process() else []:  # one run per model folder: a second is refused
            held.enter_context(lock.hold(model_dir(dirs.output, c.name)))
            remove_stale_tmp(model_dir(dirs.output, c.name))
        todo = folds_together(cfgs, data, dirs, wanted, force) if data_parallel else \
            {c.name: prepare_model_dir(c, data, dirs, wanted, force) for c in cfgs}
        run = JobRun(by_name, data, fold, dirs, todo, budget_s, clock or budget_mod.Clock(), max(1, n_gpus), estimate)
        workers = schedule.make_workers(n_gpus, run.run_in_process, dirs, verbose)
        try:
            run.drive(workers, on_model_done)
        finally:
            for w in workers:
                w.close()
    return Outcome(run.complete, run.skipped, run.trained, run.failed)


def folds_together(cfgs, data, dirs, wanted, force) -> dict:
    """Data-parallel: every process reads the folds to train before the first one changes the folders."""
    from accelerate import PartialState

    from solution.hardware import is_main_process

    state = PartialState()
    todo = {c.name: folds_to_train(c, model_dir(dirs.output, c.name), wanted, force) for c in cfgs}
    state.wait_for_everyone()
    if is_main_process():
        for c in cfgs:
            prepare_model_dir(c, data, dirs, wanted, force)
    state.wait_for_everyone()
    return todo


class JobRun:
    """The parent's side of a training run: estimates, the plan, the jobs' results, assembling models."""

    def __init__(self, cfgs: dict, data, fold, dirs, todo: dict, budget_s, clock, n_workers: int, estimate=None):
        from solution import budget as budget_mod

        self.cfgs, self.data, self.fold, self.dirs, self.clock = cfgs, data, fold, dirs, clock
        self.budget_s, self.n_workers = budget_s, n_workers
        self.machine = budget_mod.machine_id()
        self.estimate = estimate or budget_mod.Estimator(data, int((fold != 0).sum()), budget_mod.device_class(),
                                                         self.machine, dirs.output)
        self.values = budget_mod.expected_values(cfgs, dirs.output, metrics.constant_f1(data.y))
        self.pending = {n: [budget_mod.Job(n, k) for k in todo[n]] for n in cfgs if todo[n]}
        if budget_s is not None:
            self.calibrate()
        self.base_cost = {n: self.estimate.base(c) for n, c in cfgs.items()}  # corrected in cost()
        self.todo, self.skipped, self.trained, self.failed, self.dead = todo, {}, {}, {}, set()
        self.running, self.loaded = {}, set()  # worker -> (job, started, its uncorrected FoldCost, load included)
        self.complete = [n for n in cfgs if not todo[n] and assemble(cfgs[n], data, fold, self.mdir(n))]
        self.announce()

    def mdir(self, name: str) -> Path:
        return model_dir(self.dirs.output, name)

    def cost(self) -> dict:
        """Estimates now: cost-model ones scaled by what the finished folds of their kind measured against theirs."""
        return {n: self.estimate.corrected(self.cfgs[n], c) for n, c in self.base_cost.items()}

    def plan(self, free_at: list):
        from solution import budget as budget_mod

        left = None if self.budget_s is None else self.budget_s - self.clock.now() - budget_mod.BLEND_SECONDS
        jobs = {n: js for n, js in self.pending.items() if js}
        return budget_mod.choose(jobs, self.cost(), self.values, free_at, left, self.loaded)

    def calibrate(self) -> None:
        """On a GPU, time the first fine-tuned model of the plan's order before planning (gpu_calibration); the
        table's guess stays where that fails."""
        from solution import budget as budget_mod
        from solution import gpu_calibration

        est = self.estimate
        if est.device == "cpu" or est.rate is not None:
            return
        hf = [n for n in budget_mod.choose(self.pending, {n: est.base(self.cfgs[n]) for n in self.pending},
                                           self.values, [0.0], None, set()).models
              if self.cfgs[n].kind == "hf" and est.base(self.cfgs[n]).modelled]
        if not hf:
            return
        cfg = self.cfgs[hf[0]]
        try:
            with log.library_log(self.dirs.output / "plan.log"):
                est.rate = gpu_calibration.calibrate(cfg, self.data.labels, budget_mod.tokens_per_tweet(cfg, est.chars))
        except Exception as e:  # a plan from the table beats no run
            log.warn(f"could not time {cfg.name}'s training step on this GPU ({type(e).__name__}: {e}); planning "
                     f"with the table's guess for a {est.device}")
            return
        log.info(f"calibrated on {self.machine}: {cfg.name}'s training step runs at {est.rate[1] / 1e12:.1f} TFLOP/s "
                 f"+ {est.rate[0] * 1e3:.1f} ms a sample; planning with it")

    def announce(self) -> None:
        from solution import budget as budget_mod
        from solution.hardware import is_main_process

        if not is_main_process():
            return
        p = self.plan([0.0] * self.n_workers)
        print(budget_mod.format_plan(p, self.cost(), {n: self.pending.get(n, []) for n in self.cfgs},
                                     {n: len(self.fold_ids()) for n in self.complete}, self.budget_s,
                                     self.n_workers, self.machine), flush=True)

    def fold_ids(self) -> list[int]:
        return list(range(int(self.fold.max()) + 1))

    def next_job(self, worker: int):
        """The job the plan starts now on this worker, or None; models the plan cannot fit are dropped."""
        now = self.clock.now()
        # a busy worker frees at its job's estimate as corrected now, at least a minute from now if it overruns; a
        # dead one never
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
        from solution import schedule

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
        if len(self.cfgs) > 1 or self.n_workers > 1:
            log.info(f"{job.model} fold {job.fold}" + (f" on GPU worker {worker.index}" if self.n_workers > 1 else "")
                     + f" (about {est / 60:.1f} min)")
        worker.submit(job, self.cfgs[job.model].to_dict())

    def finish(self, r, on_model_done) -> None:
        job = r.job
        _, started, job_cost = self.running.pop(next(w for w, v in self.running.items() if v[0] == job))
        if r.error:  # the model cannot complete in this run; the other models go on (a dead worker takes no more)
            self.failed.setdefault(job.model, r.error)
            dropped = self.pending.pop(job.model, [])
            log.warn(f"{r.error}" + (f"; not training {job.model}'s other fold(s) {[j.fold for j in dropped]} in "
                                     f"this run" if dropped else ""))
            return
        m = r.metrics
        self.trained.setdefault(job.model, {})[job.fold] = m
        if "at_0.5" not in m:  # a data-parallel process that does not write: nothing to report or assemble
            return
        if m.get("overflow_retry") and not self.cfgs[job.model].overflow_safe:  # its other folds start safe
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
        from solution.models.hf import release_cached_base

        self.pending.pop(name, None)
        release_cached_base()
        try:
            if not assemble(self.cfgs[name], self.data, self.fold, self.mdir(name)):
                return  # only some folds were asked for (--folds)
        except UserError as e:  # its folds cannot join a blend: the other models go on
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
    """One model, all (or some) folds, in this process: what `train MODEL` does without a budget."""
    from solution.cli import Dirs

    dirs = Dirs(data.input_dir, Path(folds_dir), Path(output))
    out = train_models([cfg], data, dirs, only_folds, force)
    return {"folds": out.folds.get(cfg.name, {}), "complete": cfg.name in out.complete}


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config setting, cast to its type (repeatable), e.g. --set epochs=2")
    p.add_argument("--report-to", choices=["none", "wandb"], default=None, help="optional Weights & Biases logging")
    p.add_argument("--time-budget", default=None, metavar="DURATION",
                   help="e.g. 28m, 2h, 11h30m, or none: train only what fits, in an order that gives a submission "
                        "early (default: on Kaggle the 12-hour session less 20 minutes; `run` of the cpu profile on a "
                        "CPU 28m; else none)")


def configs_from_args(names: list[str], args) -> list:
    """Each model's config with the --set overrides that reach it.

    KEY=VALUE goes to every model that has the setting (to the only model, where an unknown key is an
    error); MODEL.KEY=VALUE to that model alone (model names may hold dots: the last dot before '=' splits)."""
    overrides = list(args.overrides)
    if getattr(args, "report_to", None):
        overrides.append(f"report_to={args.report_to}")
    common, per_model = split_overrides(overrides)
    for model in per_model:
        if model not in names:
            raise UserError(f"--set {model}.{per_model[model][0]}: {model!r} is not among the models of this run "
                            f"({', '.join(names)})")
    bases = {n: config_mod.get(n).to_dict() for n in names}
    unknown = [o for o in common if len(names) > 1 and not any(o.split("=", 1)[0].strip() in b for b in bases.values())]
    if unknown:
        raise UserError(f"--set {unknown[0]}: no model of this run ({', '.join(names)}) has that setting; "
                        f"`python -m solution train NAME --set x=1` lists a model's settings")
    cfgs = []
    for n in names:
        applicable = common if len(names) == 1 else [o for o in common if o.split("=", 1)[0].strip() in bases[n]]
        cfgs.append(config_mod.get(n, [*applicable, *per_model.get(n, [])]))
    return cfgs


def split_overrides(overrides: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """(KEY=VALUE items, {model: [KEY=VALUE, ...]} from MODEL.KEY=VALUE items)."""
    common, per_model = [], {}
    for o in overrides:
        key, eq, value = o.partition("=")
        model, dot, setting = key.strip().rpartition(".")
        if dot and model:
            per_model.setdefault(model, []).append(f"{setting}{eq}{value}")
        else:
            common.append(o)
    return common, per_model


def overrides_for(name: str, overrides: list[str]) -> list[str]:
    """The --set items that reach model `name` in a run of several models (common ones it has, then its own)."""
    common, per_model = split_overrides(overrides)
    base = config_mod.get(name).to_dict()
    return [o for o in common if o.split("=", 1)[0].strip() in base] + per_model.get(name, [])


def default_profile() -> str:
    from solution.hardware import cuda_count

    return "gpu" if cuda_count() else "cpu"


def parse_folds(s: str | None):
    if s is None:
        return None
    try:
        return sorted({int(x) for x in s.split(",") if x.strip()})
    except ValueError:
        raise UserError(f"--folds {s!r}: expected comma-separated fold numbers, e.g. 0,2") from None


def main(argv=None) -> int:
    from solution.cli import common_parser, resolve_data

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
    args = p.parse_args(argv)
    names = args.models or config_mod.profile_models(args.profile or default_profile())
    cfgs = configs_from_args(names, args)  # validate every config before any work
    data, dirs = resolve_data(args)
    budget_s = parse_budget(args)
    train_models(cfgs, data, dirs, parse_folds(args.folds), force=args.force, budget_s=budget_s,
                 verbose=args.verbose).raise_failures()
    return 0


def parse_budget(args, default_s=None):
    """--time-budget in seconds; `none` for no budget; else Kaggle's session limit, else `default_s`."""
    from solution import budget as budget_mod

    given = getattr(args, "time_budget", None)
    if given and given.strip().lower() in ("none", "off", "0"):
        return None
    if given:
        return budget_mod.parse_duration(given)
    kaggle = budget_mod.kaggle_session_budget()
    return kaggle if kaggle is not None else default_s
