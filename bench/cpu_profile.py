"""The whole cpu profile (folds -> train -> blend) on a data directory: wall time, peak RSS, OOF macro-F1.

    .venv/bin/python bench/cpu_profile.py --input DATA [--work /tmp/bench-cpu] [--cores 0] [-- run options]

DATA is a folder in the competition's format; the development set of this project is SemEval-2018 Task 1 E-c
(English), at ../shared/data/semeval2018-ec beside the checkout. Runs `python -m solution run` in a
subprocess with fresh folds/ and output/ under --work (its default 28-minute budget, or `-- --time-budget 2h`),
`--cores 0` pins it to CPU 0 (taskset: a one-core machine), then prints per model and for the blend the OOF
macro-F1 at 0.5, tuned on OOF and cross-validated (the honest one), the rare labels' F1, what the budget chose,
and a markdown row for bench/RESULTS.md. Peak RSS is the largest resident set of the run's processes.
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True)
    p.add_argument("--work", default="/tmp/bench-cpu-profile")
    p.add_argument("--keep", action="store_true",
                   help="reuse trained folds in --work (timing then covers only the rest)")
    p.add_argument("--cores", default=None, help="taskset CPU list, e.g. 0 for one core")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="extra `run` options after --")
    args = p.parse_args()
    work = Path(args.work)
    if work.exists() and not args.keep:
        shutil.rmtree(work)
    extra = [a for a in args.rest if a != "--"]
    cmd = [sys.executable, "-m", "solution", "run", "--profile", "cpu", "--input", str(Path(args.input).resolve()),
           "--folds-dir", str(work / "folds"), "--output", str(work / "output"), *extra]
    if args.cores is not None:
        cmd = ["taskset", "-c", args.cores, *cmd]
    print("running:", " ".join(cmd), flush=True)
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=ROOT)
    wall = time.time() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if proc.returncode != 0:
        sys.exit(f"run failed with exit code {proc.returncode}")
    report = json.loads((work / "output" / "blend" / "report.json").read_text())
    scores = report["scores"]
    print(f"\nwall time {wall / 60:.1f} min, peak RSS {peak:.0f} MB, machine: {platform.machine()} "
          f"{_cores()} cores")
    print(f"{'model':>24}  macro-F1@0.5  tuned   CV      trust surprise anticipation pessimism")
    rare = ("trust", "surprise", "anticipation", "pessimism")
    for name, s in scores.items():
        per = s["at_tuned"]["per_class"]
        print(f"{name:>24}  {s['at_0.5']['macro_f1']:.4f}        {s['at_tuned']['macro_f1']:.4f}  "
              f"{s['cv_macro_f1']:.4f}  " + "  ".join(f"{per[r]['f1']:.3f}" for r in rare))
    print("\n".join(report.get("plan") or []))
    b = scores["blend"]
    members = ", ".join(f"{n} {s['cv_macro_f1']:.3f}" for n, s in scores.items() if n != "blend")
    print("\nRESULTS.md row:")
    print(f"| {datetime.date.today()} | cpu profile {' '.join(extra)} cores={args.cores or 'all'} | "
          f"{wall / 60:.1f} min | {peak / 1024:.2f} GB | {members} (CV) | "
          f"blend {b['at_tuned']['macro_f1']:.4f} tuned / {b['cv_macro_f1']:.4f} CV | {_cores()}-core CPU |")


def _cores() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    main()
