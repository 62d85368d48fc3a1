"""--engine ray on a two-node Ray cluster on this machine (ray.cluster_utils, CPU only): the files of --engine local,
a lost node's job done again on the other, a node without the backbone, fake GPUs, and Ray not installed."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from tiny_models import tiny_data, tiny_models  # noqa: F401  (session fixtures)

import solution.train
from solution import cli, hardware
from solution.train.fold import run_job

pytestmark = pytest.mark.ray

MODELS = "tfidf-lr,minilm-emb-lr,minilm-lora"
HUB_ID = "example/tiny-bert"  # a backbone no node has but through SOLUTION_WEIGHTS


@pytest.fixture(scope="module")
def cluster(tiny_models):
    """(cluster, worker node): the head node maps HUB_ID to the tiny BERT, the worker node does not."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    cores = hardware.usable_cores()  # a CPU job's threads, as a local run's: the same floats
    c = Cluster(initialize_head=True, head_node_args={
        "num_cpus": cores, "env_vars": {"HF_HUB_OFFLINE": "1", "SOLUTION_WEIGHTS": f"{HUB_ID}={tiny_models['bert']}"}})
    worker = c.add_node(num_cpus=cores, env_vars={"HF_HUB_OFFLINE": "1", "SOLUTION_WEIGHTS": ""})
    yield c, worker
    ray.shutdown()
    c.shutdown()


def run_argv(tiny_data, out, *extra, models=MODELS, weights=""):
    input_dir, folds_dir = tiny_data
    sets = ["minilm-lora.epochs=1", "minilm-lora.batch_size=8", "minilm-lora.max_length=32"]
    if weights:
        sets += [f"minilm-emb-lr.weights={weights}", f"minilm-lora.weights={weights}"]
    argv = ["run", "--models", models, "--input", input_dir, "--folds-dir", folds_dir, "--n-splits", "2",
            "--output", out, *extra]
    for s in sets:
        if s.split(".")[0] in models.split(","):
            argv += ["--set", s]
    return [str(a) for a in argv]


@pytest.fixture(scope="module")
def local_run(tiny_data, tiny_models, tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    assert cli.main(run_argv(tiny_data, out, weights=tiny_models["bert"])) == 0
    return out


def same_files(a: Path, b: Path, models: list[str]) -> None:
    for m in models:
        for name in ("oof.csv", "test.csv", "fold0/oof.csv", "fold1/test.csv"):
            assert (a / m / name).read_bytes() == (b / m / name).read_bytes(), (m, name)


def no_partial_files(out: Path) -> None:
    """Every fold folder is whole (DONE written last), and no temp file is left."""
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".") and p.name != ".lock"]
    for fold_dir in out.glob("*/fold*"):
        assert (fold_dir / "DONE.json").exists() and (fold_dir / "oof.csv").exists(), fold_dir


def test_two_nodes_write_the_files_of_a_local_run(cluster, local_run, tiny_data, tiny_models, tmp_path, capfd):
    c, _ = cluster
    capfd.readouterr()
    assert cli.main(run_argv(tiny_data, tmp_path, "--engine", "ray", "--ray-address", c.address,
                             weights=tiny_models["bert"])) == 0
    out, err = capfd.readouterr()
    assert "2 node(s), 2 worker(s)" in err and "on Ray worker 1" in err, err
    assert "plan on 2 worker(s)" in out
    same_files(local_run, tmp_path, MODELS.split(","))
    assert (local_run / "submission.csv").read_bytes() == (tmp_path / "submission.csv").read_bytes()
    no_partial_files(tmp_path)
    # resume as a local run does: only folds that are not done train
    (tmp_path / "tfidf-lr" / "fold1" / "DONE.json").unlink()
    capfd.readouterr()
    assert cli.main(run_argv(tiny_data, tmp_path, "--engine", "ray", "--ray-address", c.address,
                             weights=tiny_models["bert"])) == 0
    err = capfd.readouterr().err
    assert "tfidf-lr: training fold(s) [1]" in err and "minilm-lora: training fold(s)" not in err
    same_files(local_run, tmp_path, ["tfidf-lr"])


def test_a_node_without_the_backbone_passes_its_jobs_on(cluster, tiny_data, tmp_path, capfd):
    """The worker node has no copy of HUB_ID: one line names it and the model; the head node trains the folds.
    A backbone no node has: that model fails in one line, the others make the submission."""
    c, worker = cluster
    argv = run_argv(tiny_data, tmp_path / "moved", "--engine", "ray", "--ray-address", c.address,
                    "--set", f"minilm-lora.backbone={HUB_ID}", models="minilm-lora")  # a fold on each node
    capfd.readouterr()
    assert cli.main(argv) == 0
    err = capfd.readouterr().err
    moved = [line for line in err.splitlines() if f"node {worker.node_id[:8]}" in line and "cannot train" in line]
    assert moved and all("minilm-lora fold" in line and f"cannot load weights for {HUB_ID}" in line
                         and "the job moves to another node" in line for line in moved), err
    assert (tmp_path / "moved" / "minilm-lora" / "oof.csv").exists()

    argv = run_argv(tiny_data, tmp_path / "none", "--engine", "ray", "--ray-address", c.address,
                    "--set", "minilm-lora.backbone=example/absent", models="tfidf-lr,minilm-lora")
    assert cli.main(argv) == 0
    out, err = capfd.readouterr()
    assert "no node of the Ray cluster could load its backbone" in err
    assert "  minilm-lora  failed: minilm-lora: no node of the Ray cluster could load its backbone" in out, out
    assert (tmp_path / "none" / "tfidf-lr" / "oof.csv").exists() and (tmp_path / "none" / "submission.csv").exists()


def test_a_job_on_a_lost_node_is_done_again_on_the_other(cluster, local_run, tiny_data, tmp_path, monkeypatch):
    """The worker node is killed while it trains a fold: Ray runs that job again on the head node."""
    from solution.train import ray_engine

    c, worker = cluster
    victim, marker = worker.node_id, tmp_path / "started"

    def hang_on_the_victim(cfg, data, fold, k, mdir):  # pickled by value into the task
        import ray

        if ray.get_runtime_context().get_node_id() == victim:
            marker.write_text(f"{cfg.name} fold {k}")
            time.sleep(600)
        return run_job(cfg, data, fold, k, mdir)

    def kill_when_started():
        while not marker.exists():
            time.sleep(0.1)
        c.remove_node(worker, allow_graceful=False)

    monkeypatch.setattr(ray_engine, "run_job", hang_on_the_victim)
    killer = threading.Thread(target=kill_when_started, daemon=True)
    killer.start()
    assert cli.main(run_argv(tiny_data, tmp_path / "out", "--engine", "ray", "--ray-address", c.address,
                             models="tfidf-lr")) == 0
    killer.join(5)
    assert marker.exists() and not killer.is_alive()  # a job did start on the node that died
    same_files(local_run, tmp_path / "out", ["tfidf-lr"])
    no_partial_files(tmp_path / "out")


def test_fake_gpus_run_two_jobs_at_once_each_on_its_own_gpu(cluster, tiny_data, tmp_path, monkeypatch, capfd):
    """A node declaring two GPUs: a GPU model's two folds run together, each task seeing one CUDA device."""
    from solution.train import ray_engine

    c, _ = cluster
    c.add_node(num_cpus=2, num_gpus=2)
    seen = tmp_path / "seen"
    seen.mkdir()

    def record(cfg, data, fold, k, mdir):  # pickled by value into the task
        import os

        started = time.time()
        time.sleep(2)
        (seen / f"{k}.json").write_text(json.dumps({"gpu": os.environ.get("CUDA_VISIBLE_DEVICES"),
                                                     "start": started, "end": time.time()}))
        return {"model": cfg.name, "fold": k, "wall_time_s": time.time() - started}

    monkeypatch.setattr(ray_engine, "run_job", record)
    input_dir, folds_dir = tiny_data
    capfd.readouterr()
    assert cli.main(["train", "minilm-lora", "--engine", "ray", "--ray-address", c.address, "--input", str(input_dir),
                     "--folds-dir", str(folds_dir), "--output", str(tmp_path / "out")]) == 0
    out, err = capfd.readouterr()
    assert "2 worker(s) (2 GPU(s))" in err and "plan on 2 worker(s)" in out
    a, b = (json.loads((seen / f"{k}.json").read_text()) for k in (0, 1))
    assert {a["gpu"], b["gpu"]} == {"0", "1"}
    assert a["start"] < b["end"] and b["start"] < a["end"]  # at the same time


def test_a_job_no_live_node_can_take_ends_in_one_line(cluster, tiny_data, tmp_path, monkeypatch):
    """Its only fitting node is gone: the job waits a while for a replacement, then fails, and the run goes on."""
    import ray

    from solution import config
    from solution import data as data_mod
    from solution.train import ray_engine
    from solution.train.budget import Job

    monkeypatch.setattr(ray_engine, "CHECK_EVERY_S", 0.0)
    monkeypatch.setattr(ray_engine, "INFEASIBLE_S", 0.0)
    pool = ray_engine.connect(cluster[0].address, data_mod.load(tiny_data[0]), None, False)
    monkeypatch.setattr(pool, "can_run", lambda cfg_dict: False)
    worker = ray_engine.RayWorker(0, pool, tmp_path)
    worker.job, worker.cfg_dict = Job("tfidf-lr", 1), config.get("tfidf-lr").to_dict()
    worker.ref = ray.remote(lambda: None).options(num_gpus=8).remote()  # never placed
    r = worker.collect(0)
    assert r.job == Job("tfidf-lr", 1) and not worker.busy
    assert r.error == (f"tfidf-lr fold 1: no live node of the Ray cluster has 0 GPU(s) and {pool.cpus_per_job} "
                       f"CPU(s) for it; add a node and rerun the same command")


def test_without_ray_one_line_says_how_to_install_it(tiny_data, tmp_path, monkeypatch, capsys):
    input_dir, folds_dir = tiny_data
    with monkeypatch.context() as m:  # put back before the cluster's teardown needs ray
        m.setitem(sys.modules, "ray", None)  # as if not installed
        m.delitem(sys.modules, "solution.train.ray_engine", raising=False)  # loaded by the tests above
        m.delattr(solution.train, "ray_engine", raising=False)
        code = cli.main(["train", "tfidf-lr", "--engine", "ray", "--input", str(input_dir), "--folds-dir",
                         str(folds_dir), "--output", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("error: --engine ray needs Ray") and "pip install 'ray>=2.10'" in err
    assert not (tmp_path / "tfidf-lr").exists()  # refused before any work


def test_the_commands_load_ray_only_for_engine_ray():
    code = ("import sys, solution.cli, solution.run, solution.train.train; "
            "assert 'ray' not in sys.modules, 'ray imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
