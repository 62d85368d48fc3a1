"""Several GPUs: one worker process per GPU takes (model, fold) jobs from one queue; the parent assembles.

No GPU here: the parent is told there are two (hardware.cuda_count / check_gpus), and the two spawned workers
train on the CPU; everything else is the real path (processes, pipes, fold folders, assembly, blend)."""
from __future__ import annotations

import re

from conftest import make_input_dir
from tiny_models import tiny_data, tiny_models  # noqa: F401  (session fixtures)

from solution import cli, hardware
from solution.train import schedule

MODELS = "tfidf-lr,minilm-emb-lr"  # uneven jobs: the embedding model's first fold encodes every tweet


def _run(inp, folds, out, encoder):
    """`run` of both models; the embedding model reads a tiny random BERT (the real path, a fraction of the time)."""
    return cli.main(["run", "--models", MODELS, "--input", str(inp), "--folds-dir", str(folds), "--output", str(out),
                     "--set", "tfidf-lr.C=2.0", "--set", f"minilm-emb-lr.weights={encoder}"])


def _same(a, b, models=MODELS.split(",")):
    for m in models:
        for name in ("oof.csv", "test.csv"):
            assert (a / m / name).read_bytes() == (b / m / name).read_bytes(), (m, name)
    assert (a / "submission.csv").read_bytes() == (b / "submission.csv").read_bytes()


def test_two_gpu_workers_match_a_serial_run_and_a_killed_worker_is_redone(tiny_models, tmp_path, monkeypatch, capfd):
    inp, folds, bert = make_input_dir(tmp_path / "input"), tmp_path / "folds", tiny_models["bert"]
    assert _run(inp, folds, tmp_path / "serial", bert) == 0

    monkeypatch.setattr(hardware, "cuda_count", lambda: 2)
    monkeypatch.setattr(hardware, "check_gpus", lambda: 2)
    capfd.readouterr()
    assert _run(inp, folds, tmp_path / "par", bert) == 0
    err = capfd.readouterr().err
    assert "one worker process per GPU" in err
    assert "on GPU worker 0" in err and "on GPU worker 1" in err  # both GPUs took jobs
    _same(tmp_path / "serial", tmp_path / "par")

    # a worker killed mid-job: that fold is reported, the other model still completes (and makes the submission),
    # a rerun trains the rest
    real_submit = schedule.ProcessWorker.submit

    def submit_then_kill(worker, job, cfg_dict):
        real_submit(worker, job, cfg_dict)
        if (job.model, job.fold) == ("tfidf-lr", 3):
            worker.proc.kill()

    monkeypatch.setattr(schedule.ProcessWorker, "submit", submit_then_kill)
    assert _run(inp, folds, tmp_path / "killed", bert) == 0
    out, err = capfd.readouterr()
    assert "died while training tfidf-lr fold 3" in err
    assert re.search(r"\n  tfidf-lr +failed: the worker on GPU \d died while training tfidf-lr fold 3", out), out
    assert "rerun the same command" in out and (tmp_path / "killed" / "submission.csv").exists()
    assert not (tmp_path / "killed" / "tfidf-lr" / "fold3" / "DONE.json").exists()
    assert (tmp_path / "killed" / "minilm-emb-lr" / "oof.csv").exists()
    monkeypatch.setattr(schedule.ProcessWorker, "submit", real_submit)
    assert _run(inp, folds, tmp_path / "killed", bert) == 0
    err = capfd.readouterr().err
    assert "tfidf-lr: training fold(s) [" in err and "minilm-emb-lr: training fold(s)" not in err
    _same(tmp_path / "serial", tmp_path / "killed")


def test_one_fold_data_parallel_under_torchrun(tiny_models, tiny_data, tmp_path):
    """`accelerate launch` / torchrun: every process trains the fold (its share of each batch), one writes."""
    import json
    import subprocess
    import sys

    import pandas as pd

    input_dir, folds_dir = tiny_data
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "solution", "train",
           "minilm-lora", "--folds", "0", "--input", str(input_dir), "--folds-dir", str(folds_dir), "--output",
           str(out), "--set", f"weights={tiny_models['bert']}", "--set", "epochs=1", "--set", "num_threads=1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    fold = out / "minilm-lora" / "fold0"
    metrics = json.loads((fold / "metrics.json").read_text())
    assert metrics["processes"] == 2 and (fold / "DONE.json").exists()
    folds = pd.read_csv(folds_dir / "folds.csv", dtype=str)
    oof = pd.read_csv(fold / "oof.csv", dtype={"ID": str})
    assert sorted(oof["ID"]) == sorted(folds.loc[folds["fold"] == "0", "ID"])  # gathered: every row once
    assert proc.stdout.count("minilm-lora fold 0: macro-F1") == 1  # one process talks


def test_a_gpu_worker_frees_the_last_models_cached_blocks_when_its_jobs_move_on(tiny_data, monkeypatch):
    """A worker lives for the whole run: a model's cached base and frozen blocks go when its jobs are over."""
    import dataclasses

    from solution import config
    from solution.models import hf

    input_dir, folds_dir = tiny_data
    events = []
    monkeypatch.setattr(hf, "release_cached_base", lambda: events.append("release"))
    monkeypatch.setattr(schedule, "run_job", lambda cfg, data, fold, k, out: events.append(f"{out.name}:{k}") or {})

    cfg = dataclasses.asdict(config.get("tfidf-lr"))

    class Conn:
        msgs = [("a", 0, cfg), ("a", 1, cfg), ("b", 0, cfg), None]

        def recv(self):
            return self.msgs.pop(0)

        def send(self, msg):
            assert msg[0] == "ok", msg

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # worker_main sets it; monkeypatch puts it back
    schedule.worker_main(Conn(), "0", str(input_dir), str(folds_dir), "/tmp/unused", False)
    assert events == ["release", "a:0", "a:1", "release", "b:0"]
