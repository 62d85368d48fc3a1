"""The whole cpu profile (folds -> train -> blend) on a data directory: wall time, peak RSS, OOF macro-F1.

    .venv/bin/python bench/cpu_profile.py --input ../shared/data/semeval2018-ec [--work /tmp/bench-cpu] [-- run options]

Runs `python -m solution run` in a subprocess with fresh folds/ and output/ under --work, then prints
per model and for the blend the OOF macro-F1 at 0.5 and with per-class thresholds tuned on OOF, and a
markdown row for bench/RESULTS.md. Peak RSS is the largest resident set of the run's processes.
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
    p.add_argument("--keep", action="store_true", help="reuse trained folds in --work (timing then covers only the rest)")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="extra `run` options after --")
    args = p.parse_args()
    work = Path(args.work)
    if work.exists() and not args.keep:
        shutil.rmtree(work)
    extra = [a for a in args.rest if a != "--"]
    cmd = [sys.executable, "-m", "solution", "run", "--profile", "cpu", "--input", str(Path(args.input).resolve()),
           "--folds-dir", str(work / "folds"), "--output", str(work / "output"), *extra]
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
    print(f"{'model':>24}  macro-F1@0.5  macro-F1@tuned")
    for name, s in scores.items():
        print(f"{name:>24}  {s['at_0.5']['macro_f1']:.4f}        {s['at_tuned']['macro_f1']:.4f}")
    b = scores["blend"]
    members = ", ".join(f"{n} {s['at_tuned']['macro_f1']:.3f}" for n, s in scores.items() if n != "blend")
    print("\nRESULTS.md row:")
    print(f"| {datetime.date.today()} | cpu profile {' '.join(extra)} | {wall / 60:.1f} min | {peak / 1024:.2f} GB | "
          f"{members} | blend {b['at_0.5']['macro_f1']:.4f} / {b['at_tuned']['macro_f1']:.4f} | {_cores()}-core CPU |")


def _cores() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    main()
