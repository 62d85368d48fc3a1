"""`--engine ray`: each (model, fold) job is a Ray task on a cluster's GPUs, or CPU slots where it has none.

A task trains in a temp folder on its node and returns the fold's files as bytes; the driver alone writes output/,
so the nodes share no filesystem. Ray places the tasks and runs a lost node's job again on another.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import socket
import tempfile
import time
from importlib import metadata
from pathlib import Path

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from solution import config as config_mod
from solution import hardware, log
from solution.errors import UserError
from solution.io import write_bytes
from solution.models import weights
from solution.train import budget as budget_mod
from solution.train.fold import run_job
from solution.train.model_dir import DONE
from solution.train.schedule import Result

MAX_RETRIES = 3  # a job whose node is lost runs again on another
GPU_KINDS = ("hf",)  # on a GPU where the cluster has one (embed's encoder pass runs on the CPU)
CHECK_EVERY_S = 10.0  # how often a waiting job checks that some live node can still take it
INFEASIBLE_S = 120.0  # how long it may wait without one (a replacement node may join)
VERSIONS = ("torch", "transformers", "peft", "scikit-learn", "numpy")  # another version may train differently


@dataclasses.dataclass
class Node:
    id: str
    name: str
    cpus: int
    gpus: int
    accelerator: str  # Ray's accelerator_type (T4, A100, ...), "" if none

    def fits(self, need: dict) -> bool:
        return self.cpus >= need.get("num_cpus", 0) and self.gpus >= need.get("num_gpus", 0)


def node_name(host: str, ip: str, node_id: str) -> str:
    return f"node {node_id[:8]} ({host}, {ip})"


def live_nodes() -> list[Node]:
    out = []
    for n in ray.nodes():
        if n.get("Alive"):
            r = n.get("Resources", {})
            acc = next((k.split(":", 1)[1] for k in r if k.startswith("accelerator_type:")), "")
            out.append(Node(n["NodeID"], node_name(n.get("NodeManagerHostname", "?"), n.get("NodeManagerAddress", "?"),
                                                   n["NodeID"]), int(r.get("CPU", 0)), int(r.get("GPU", 0)), acc))
    return out


_connected = {}  # the address this process joined: later runs in it reuse the connection


def connect(address: str | None, data, fold, verbose: bool) -> "Cluster":
    """Join --ray-address, else RAY_ADDRESS, else start Ray on this machine; the data goes to the object store."""
    wanted = address or os.environ.get("RAY_ADDRESS") or "local"
    log.route_libraries(verbose, transformers=False)  # ray's logger, made as it loaded: to the run's ray.log
    if ray.is_initialized() and _connected.get("address") != wanted:
        ray.shutdown()
    if not ray.is_initialized():
        local = {"include_dashboard": False} if wanted == "local" else {}
        try:
            ray.init(address=wanted, log_to_driver=verbose, logging_level=logging.WARNING, **local)
        except (ConnectionError, ValueError, RuntimeError) as e:
            why = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise UserError(f"--engine ray: cannot join the Ray cluster at {wanted} ({why}); start one with "
                            f"`ray start --head` (docs/parallel.md), or check --ray-address and RAY_ADDRESS") from None
        _connected["address"] = wanted
    return Cluster(ray.get_runtime_context().gcs_address, data, fold, verbose)


class Cluster:
    """The driver's view: its workers, the data in the object store, the nodes that cannot load a backbone."""

    def __init__(self, address: str, data, fold, verbose: bool):
        self.address, self.verbose, self.nodes = address, verbose, live_nodes()
        if not any(n.cpus for n in self.nodes):
            raise UserError(f"--engine ray: the Ray cluster at {address} has no node with a CPU")
        self.gpus = sum(n.gpus for n in self.nodes)
        # a CPU job's slot: the smallest node's CPUs (a GPU's share of them where there are GPUs), so that every
        # node fits one and every job trains with the same threads
        self.cpus_per_job = (max(1, min(n.cpus // n.gpus for n in self.nodes if n.gpus)) if self.gpus
                             else min(n.cpus for n in self.nodes if n.cpus))
        self.n_workers = self.gpus or sum(n.cpus // self.cpus_per_job for n in self.nodes)
        self.data, self.fold = ray.put(data), ray.put(fold)
        self.avoid: dict[tuple, set] = {}  # (backbone, weights) -> ids of the nodes that cannot load it
        self.checked: set[str] = set()  # nodes whose library versions were compared with this driver's

    @property
    def device(self) -> str:
        """The cost model's device class of the cluster's GPUs, or cpu."""
        if not self.gpus:
            return "cpu"
        accelerators = " ".join(n.accelerator for n in self.nodes if n.gpus)
        return next((d for d in budget_mod.DEVICES if d not in ("cpu", "gpu") and d in accelerators), "gpu")

    def describe(self) -> str:
        kind = f"{self.gpus} GPU(s)" if self.gpus else f"CPU slots of {self.cpus_per_job} CPU(s)"
        nodes = "; ".join(f"{n.name}: {n.cpus} CPU(s)" + (f", {n.gpus} GPU(s) {n.accelerator}".rstrip() if n.gpus
                                                           else "") for n in self.nodes)
        return (f"Ray cluster at {self.address}: {len(self.nodes)} node(s), {self.n_workers} worker(s) ({kind}); "
                f"{nodes}")

    def estimator(self, data, n_train: int, output: Path) -> budget_mod.Estimator:
        est = budget_mod.Estimator(data, n_train, self.device, budget_mod.machine_id(), output)
        if self.gpus:  # the driver may have no GPU to time: the table's rate for the cluster's GPUs
            est.machine, est.rate = f"Ray {self.device}", budget_mod.DEVICES[self.device]
        return est

    def resources(self, cfg) -> dict:
        if self.gpus and cfg.kind in GPU_KINDS:
            return {"num_gpus": 1, "num_cpus": 1}
        return {"num_cpus": self.cpus_per_job}

    def launch(self, job, cfg_dict: dict):
        """The job's Ray task, kept off the nodes known not to load its backbone; None if no other node can."""
        cfg = config_mod.from_dict(cfg_dict)
        need = self.resources(cfg)
        options = dict(need)
        bad = self.avoid.get(backbone_key(cfg))
        if bad:
            good = [n for n in live_nodes() if n.id not in bad and n.fits(need)]
            if not good:
                return None
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(good[job.fold % len(good)].id, soft=False)
        task = gpu_task if need.get("num_gpus") else cpu_task
        return task.options(**options).remote(run_job, self.data, self.fold, job.model, job.fold, cfg_dict,
                                              self.verbose)

    def can_run(self, cfg_dict: dict) -> bool:
        cfg = config_mod.from_dict(cfg_dict)
        bad = self.avoid.get(backbone_key(cfg), set())
        return any(n.fits(self.resources(cfg)) for n in live_nodes() if n.id not in bad)

    def check_versions(self, out: dict) -> None:
        """Warn once per node whose libraries differ from this driver's."""
        if out["node_id"] in self.checked:
            return
        self.checked.add(out["node_id"])
        mine = versions()
        diff = [f"{d} {v} (here {mine[d]})" for d, v in out["versions"].items() if v != mine.get(d)]
        if diff:
            log.warn(f"{out['node']} runs {', '.join(diff)}: its folds may differ from this machine's; install the "
                     f"same versions on every node")

    def workers(self, output: Path) -> list:
        log.info(self.describe())
        return [RayWorker(i, self, output) for i in range(self.n_workers)]


class RayWorker:
    """One of the plan's workers: a submitted job becomes a Ray task, and its files land in output/ on collect."""

    def __init__(self, index: int, cluster: Cluster, output: Path):
        self.index, self.cluster, self.output, self.label = index, cluster, Path(output), f"Ray worker {index}"
        self.job = self.ref = self.cfg_dict = self.stuck = None
        self.sent = self.checked = 0.0

    def submit(self, job, cfg_dict: dict) -> None:
        self.job, self.cfg_dict, self.sent, self.stuck = job, cfg_dict, time.monotonic(), None
        self.ref = self.cluster.launch(job, cfg_dict)

    @property
    def busy(self) -> bool:
        return self.job is not None

    def collect(self, timeout=None) -> Result | None:
        if self.job is None:
            return None
        if self.ref is not None and not ray.wait([self.ref], timeout=timeout)[0]:
            return self.unplaceable()
        r = self.result()
        if r is not None:
            self.job = self.ref = None
        return r

    def result(self) -> Result | None:
        job, what = self.job, f"{self.job.model} fold {self.job.fold}"
        if self.ref is None:  # every node failed to load the backbone before this job was sent
            return Result(job, error=f"{job.model}: no node of the Ray cluster could load its backbone")
        try:
            out = ray.get(self.ref)
        except ray.exceptions.RayTaskError as e:  # a bug on the node: one line here, its traceback in ray.log
            logging.getLogger("ray").error(str(e))
            cause = getattr(e, "cause", None) or e
            return Result(job, error=f"{what}: {type(cause).__name__}: {cause} (in its Ray task; see ray.log)")
        except ray.exceptions.RayError as e:
            why = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            return Result(job, error=f"{what}: its Ray task failed, retried {MAX_RETRIES} times ({why})")
        self.cluster.check_versions(out)
        if out["kind"] == "no_weights":
            return self.elsewhere(out)
        if out["kind"] == "error":
            return Result(job, error=f"{out['error']} (on {out['node']})")
        self.install(out)
        return Result(job, metrics={**out["metrics"], "ray": {"node": out["node"],
                                                            "round_trip_s": time.monotonic() - self.sent}})

    def elsewhere(self, out: dict) -> Result | None:
        """A node could not load the backbone: the job moves to one not known to fail, if the cluster has one."""
        job = self.job
        self.cluster.avoid.setdefault(backbone_key(config_mod.from_dict(self.cfg_dict)), set()).add(out["node_id"])
        self.ref = self.cluster.launch(job, self.cfg_dict)
        if self.ref is None:
            return Result(job, error=f"{job.model}: no node of the Ray cluster could load its backbone (last: "
                                     f"{out['node']}: {out['error']})")
        log.warn(f"{out['node']} cannot train {job.model} fold {job.fold}: {out['error']}; the job moves to another "
                 f"node")
        return None

    def unplaceable(self) -> Result | None:
        """None while some live node can take the job; its error after INFEASIBLE_S without one."""
        now = time.monotonic()
        if now - self.checked < CHECK_EVERY_S:
            return None
        self.checked = now
        if self.cluster.can_run(self.cfg_dict):
            self.stuck = None
            return None
        self.stuck = self.stuck or now
        if now - self.stuck < INFEASIBLE_S:
            return None
        ray.cancel(self.ref, force=True)
        job, self.job, self.ref = self.job, None, None
        need = self.cluster.resources(config_mod.from_dict(self.cfg_dict))
        return Result(job, error=f"{job.model} fold {job.fold}: no live node of the Ray cluster has "
                                 f"{need.get('num_gpus', 0)} GPU(s) and {need['num_cpus']} CPU(s) for it; "
                                 f"add a node and rerun the same command")

    def install(self, out: dict) -> None:
        """The fold's files into output/<model>/fold<k>/, each written atomically, DONE last (as a local fold)."""
        mdir = self.output / self.job.model
        fold_dir = mdir / f"fold{self.job.fold}"
        if fold_dir.exists():  # a killed run's leftovers
            shutil.rmtree(fold_dir)
        for rel in sorted(out["files"], key=lambda r: r == DONE):
            write_bytes(out["files"][rel], fold_dir / rel)
        if out["log"]:
            with open(mdir / "train.log", "ab") as f:
                f.write(out["log"])

    @staticmethod
    def wait_any(workers: list, timeout: float) -> None:
        refs = [w.ref for w in workers if w.ref is not None]
        if refs:
            ray.wait(refs, num_returns=1, timeout=timeout)

    def close(self) -> None:
        if self.ref is not None:  # a run stopped early: its job stops too
            ray.cancel(self.ref, force=True)
            self.ref = None


# ---- on a node ---------------------------------------------------------------------------------------------
def train_task(job_fn, data, fold, model: str, k: int, cfg_dict: dict, verbose: bool) -> dict:
    """One (model, fold) job in a temp folder; returns its fold files and metrics, or why not."""
    log.route_libraries(verbose, transformers=cfg_dict["kind"] in GPU_KINDS)
    ctx = ray.get_runtime_context()
    node = {"node": node_name(socket.gethostname(), ray.util.get_node_ip_address(), ctx.get_node_id()),
            "node_id": ctx.get_node_id(), "versions": versions()}
    cfg = config_mod.from_dict(cfg_dict)
    if why := backbone_problem(cfg):
        return {**node, "kind": "no_weights", "error": why}
    cfg = with_threads(cfg, ctx.get_assigned_resources())
    release_between(model)
    with tempfile.TemporaryDirectory(prefix="solution-ray-") as tmp:
        mdir = Path(tmp) / model
        try:
            metrics = job_fn(cfg, data, fold, k, mdir)
        except UserError as e:
            return {**node, "kind": "error", "error": str(e)}
        fold_dir, train_log = mdir / f"fold{k}", mdir / "train.log"
        files = {p.relative_to(fold_dir).as_posix(): p.read_bytes() for p in sorted(fold_dir.rglob("*")) if p.is_file()}
        return {**node, "kind": "ok", "metrics": metrics, "files": files,
                "log": train_log.read_bytes() if train_log.exists() else b""}


cpu_task = ray.remote(max_retries=MAX_RETRIES)(train_task)


@ray.remote(max_retries=MAX_RETRIES, max_calls=1)  # a fresh process for each job frees its GPU memory
def gpu_task(*args) -> dict:
    return train_task(*args)


def backbone_key(cfg) -> tuple:
    return getattr(cfg, "backbone", ""), getattr(cfg, "weights", "")


def backbone_problem(cfg) -> str | None:
    """Why this node cannot load cfg's backbone (the kit's one-line reason), or None."""
    backbone = getattr(cfg, "backbone", "")
    if not backbone:
        return None
    try:
        if weights.resolve(backbone, cfg.weights) == backbone:  # no local copy: the HF cache, else a download
            from transformers import AutoConfig  # lazy: torch

            AutoConfig.from_pretrained(backbone)
    except UserError as e:
        return str(e)
    except Exception as e:  # what from_pretrained would raise in the job
        return weights.not_found_message(backbone, e)
    return None


def with_threads(cfg, assigned: dict):
    """A CPU job trains with the CPUs Ray gave it (at most the node's cores): jobs sharing a node do not fight."""
    if assigned.get("GPU") or getattr(cfg, "num_threads", 1):
        return cfg
    return dataclasses.replace(cfg, num_threads=max(1, min(hardware.usable_cores(), int(assigned.get("CPU", 1)))))


_last_model = {}  # the model this worker process trained last


def release_between(model: str) -> None:
    """A worker process lives on between tasks: the last model's cached base goes when another model comes."""
    if _last_model.get("name") not in (None, model):
        from solution.models.hf import release_cached_base  # lazy: torch

        release_cached_base()
    _last_model["name"] = model


def versions() -> dict:
    out = {}
    for dist in VERSIONS:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out
