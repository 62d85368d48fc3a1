"""The job queue of `train` and `run`: (model, fold) jobs on one worker per GPU, or in this process
(ray_engine.py: on a Ray cluster).

Only the parent writes model-level files, so workers never race.
"""
from __future__ import annotations

import dataclasses
import multiprocessing
import os
import time
from multiprocessing.connection import wait as wait_any
from pathlib import Path

from solution import config as config_mod
from solution import data as data_mod
from solution import folds as folds_mod
from solution import log
from solution.errors import UserError
from solution.train.budget import Job
from solution.train.fold import run_job


@dataclasses.dataclass
class Result:
    job: Job
    metrics: dict | None = None
    error: str | None = None  # a UserError's message, or why a worker died


class InProcessWorker:
    """Runs a job when it is submitted; its result waits for `collect`."""

    def __init__(self, run_job):
        self.run_job, self.result, self.job, self.index = run_job, None, None, 0

    def submit(self, job: Job, cfg_dict: dict) -> None:
        self.job = job
        try:
            self.result = Result(job, metrics=self.run_job(job, cfg_dict))
        except UserError as e:  # as a worker process would: that model stops, the others go on
            self.result = Result(job, error=str(e))

    def collect(self, timeout=None) -> Result | None:
        r, self.result, self.job = self.result, None, None
        return r

    @property
    def busy(self) -> bool:
        return self.job is not None

    def close(self) -> None:
        pass


class ProcessWorker:
    """A spawned process on one GPU, fed jobs over a pipe."""

    def __init__(self, index: int, gpu: str, dirs, verbose: bool):
        ctx = multiprocessing.get_context("spawn")
        self.index, self.gpu, self.job = index, gpu, None
        self.conn, child = ctx.Pipe()
        paths = [str(Path(d).absolute()) for d in (dirs.input, dirs.folds, dirs.output)]
        self.proc = ctx.Process(target=worker_main, args=(child, gpu, *paths, verbose), daemon=True)
        self.proc.start()
        child.close()

    def submit(self, job: Job, cfg_dict: dict) -> None:
        self.job = job
        self.conn.send((job.model, job.fold, cfg_dict))

    def collect(self, timeout=None) -> Result | None:
        if self.job is None:
            return None
        job = self.job
        try:
            if not self.conn.poll(timeout):
                return None
            kind, payload = self.conn.recv()
        except (EOFError, OSError):
            self.proc.join(5)
            kind, payload = "error", (f"the worker on GPU {self.gpu} died while training {job.model} fold {job.fold} "
                                      f"(exit code {self.proc.exitcode})")
        self.job = None
        return Result(job, metrics=payload) if kind == "ok" else Result(job, error=payload)

    @property
    def busy(self) -> bool:
        return self.job is not None

    @property
    def alive(self) -> bool:
        return self.proc.is_alive()

    @staticmethod
    def wait_any(workers: list, timeout: float) -> None:
        """Block until one of these busy workers may have a result."""
        wait_any([w.conn for w in workers] + [w.proc.sentinel for w in workers], timeout=timeout)

    def close(self) -> None:
        try:
            self.conn.send(None)
        except (OSError, BrokenPipeError):
            pass
        self.proc.join(30)
        if self.proc.is_alive():
            self.proc.kill()


def worker_main(conn, gpu: str, input_dir: str, folds_dir: str, output: str, verbose: bool) -> None:
    """A GPU worker: its device is set before torch loads."""
    os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    log.route_libraries(verbose)
    from solution.models.hf import release_cached_base  # lazy: torch

    data = data_mod.load(input_dir)
    fold = folds_mod.load(data, Path(folds_dir))
    last = None
    while True:
        msg = conn.recv()
        if msg is None:
            return
        model, k, cfg_dict = msg
        if model != last:  # jobs come model by model: the last one's base is done with
            release_cached_base()
            last = model
        try:
            cfg = config_mod.from_dict(cfg_dict)
            conn.send(("ok", run_job(cfg, data, fold, k, Path(output) / model)))
        except UserError as e:
            conn.send(("error", str(e)))
        except Exception as e:  # the parent reports one line; the traceback stays in this worker's stderr
            import traceback

            traceback.print_exc()
            conn.send(("error", f"{model} fold {k}: {type(e).__name__}: {e}"))


def make_workers(n_gpus: int, run_job, dirs, verbose: bool) -> list:
    if n_gpus <= 1:
        return [InProcessWorker(run_job)]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    gpus = [g.strip() for g in visible.split(",")] if visible else [str(i) for i in range(n_gpus)]
    log.info(f"{n_gpus} GPUs: one worker process per GPU ({', '.join(gpus[:n_gpus])}), each taking the next fold")
    return [ProcessWorker(i, gpus[i], dirs, verbose) for i in range(n_gpus)]


def next_result(workers: list, poll_s: float = 1.0) -> list[Result]:
    """Block until a busy worker has a result; returns every result ready."""
    while True:
        out = [r for w in workers if w.busy for r in [w.collect(0)] if r is not None]
        if out:
            return out
        waiting = [w for w in workers if w.busy and hasattr(w, "wait_any")]  # an InProcessWorker never waits
        if not waiting:
            return out
        type(waiting[0]).wait_any(waiting, poll_s)
        time.sleep(0.01)
