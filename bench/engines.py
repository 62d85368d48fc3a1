"""The same CPU members trained with --engine local and with --engine ray on a Ray cluster of two nodes on this
machine (ray.cluster_utils), on the same folds.

    .venv/bin/python bench/engines.py --input ../shared/data/semeval2018-ec --models tfidf-lr,minilm-emb-lr

Reports each engine's training wall time (`train_models`, the step the engines differ in; the cluster's start-up
apart), Ray's overhead per job (the round trip the driver sees less the job's own wall time on its node), and
whether both engines wrote byte-identical fold and OOF files. Each node declares all of this machine's cores, so
two Ray jobs share them: on a small machine the gain is bounded by its cores, not by Ray.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def train(names, args, data, dirs, **engine) -> tuple[float, object]:
    from solution.options import configs_from_args
    from solution.train.train import train_models

    t0 = time.monotonic()
    out = train_models(configs_from_args(names, argparse.Namespace(overrides=[], report_to=None)), data, dirs,
                       **engine)
    out.raise_failures()
    return time.monotonic() - t0, out


def identical(a: Path, b: Path, names: list[str], n_splits: int) -> bool:
    files = [f"{m}/{f}" for m in names for f in ["oof.csv", "test.csv", *(f"fold{k}/oof.csv" for k in range(n_splits))]]
    return all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True)
    p.add_argument("--models", default="tfidf-lr,minilm-emb-lr")
    p.add_argument("--n-splits", type=int, default=5)
    p.add_argument("--nodes", type=int, default=2)
    p.add_argument("--work", default=None, help="folder for the folds and both outputs (default: a temp folder)")
    args = p.parse_args()

    import ray
    from ray.cluster_utils import Cluster

    from solution import data as data_mod
    from solution import folds as folds_mod
    from solution import hardware, log
    from solution.options import Dirs

    log.route_libraries()
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-engines-"))
    names = args.models.split(",")
    data = data_mod.load(args.input)
    folds_mod.ensure(data, work / "folds", args.n_splits, folds_mod.DEFAULT_SEED)
    local_s, _ = train(names, args, data, Dirs(Path(args.input), work / "folds", work / "local"))

    t0, cores = time.monotonic(), hardware.usable_cores()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": cores})
    for _ in range(args.nodes - 1):
        cluster.add_node(num_cpus=cores)
    start_s = time.monotonic() - t0
    try:
        ray_s, out = train(names, args, data, Dirs(Path(args.input), work / "folds", work / "ray"), engine="ray",
                           ray_address=cluster.address)
    finally:
        ray.shutdown()
        cluster.shutdown()
    jobs = [m for folds in out.folds.values() for m in folds.values()]
    overhead = [m["ray"]["round_trip_s"] - m["wall_time_s"] for m in jobs]
    print(f"| engine | jobs | training wall | per job: Ray overhead, median (max) |\n|---|---|---|---|\n"
          f"| local (this process) | {len(jobs)} | {local_s:.0f} s | - |\n"
          f"| ray, {args.nodes} nodes x {cores} CPUs on this machine | {len(jobs)} | {ray_s:.0f} s | "
          f"{statistics.median(overhead):.1f} s ({max(overhead):.1f} s) |")
    print(f"cluster start-up (not in the training wall): {start_s:.0f} s; fold and OOF files byte-identical: "
          f"{identical(work / 'local', work / 'ray', names, args.n_splits)}; machine: "
          f"{hardware.usable_cores()} cores; work folder: {work}")


if __name__ == "__main__":
    main()
