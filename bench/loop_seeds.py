"""Two training loops, several seeds: is the gap between them larger than what a seed changes?

Trains MODEL on every fold with each seed, once with the kit in this tree and once with the kit as of a git
commit (--baseline-ref, e.g. 6f29fb2, the hand-written loop before the accelerate rewrite; or --baseline-dir,
an unpacked copy of its `solution/` package, where the machine has no git history). Both sides read the same
folds and the same --set overrides; each run is its own `python -m solution train` process. Both sides' OOF
files are scored here by this tree's code: macro-F1 with thresholds tuned on all OOF rows ("tuned") and with
thresholds tuned on four folds and applied to the fifth ("CV"). Prints one row per run, then the mean and the
sample standard deviation per side and the mean paired difference (same seed) with its standard error.

    .venv/bin/python bench/loop_seeds.py --input ../shared/data/semeval2018-ec --folds-dir folds \\
        --model minilm-ft --seeds 42,7,13 --baseline-ref 6f29fb2 --work /tmp/loop-seeds [--jobs 2] \\
        [--set precision=fp32]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def train(side: str, kit_root: Path, seed: int, args) -> dict:
    out = Path(args.work) / f"{side}-seed{seed}"
    cmd = [sys.executable, "-m", "solution", "train", args.model, "--input", args.input, "--folds-dir",
           args.folds_dir, "--output", str(out), "--set", f"seed={seed}"]
    for item in args.set:
        cmd += ["--set", item]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(kit_root), os.environ.get("PYTHONPATH", "")])}
    log = out.with_suffix(".log")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as fh:  # the kit's progress lines, to read afterwards
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=kit_root)
    if proc.returncode != 0:
        sys.exit(f"{side} seed {seed} failed (exit {proc.returncode}); see {log}")
    return {"side": side, "seed": seed, **score(out / args.model, args)}


def score(mdir: Path, args) -> dict:
    """Tuned and cross-validated OOF macro-F1 of one run, read by the kit's own reader (blend.load_probs:
    train order, refused if the run used other folds)."""
    from solution import blend, metrics, thresholds
    from solution import data as data_mod
    from solution import folds as folds_mod

    d = data_mod.load(args.input)
    fold = folds_mod.load(d, Path(args.folds_dir))
    probs, _ = blend.load_probs(mdir.parent, mdir.name, d, Path(args.folds_dir), fold=fold)
    tuned = metrics.macro_f1(d.y, probs, thresholds.tune(d.y, probs))
    cv_pred = thresholds.cv_predict(probs, fold, thresholds.cv_thresholds(d.y, probs, fold))
    cv = float(metrics.f1_per_class(d.y, cv_pred).mean())
    return {"rows": len(probs), "tuned": round(tuned, 4), "cv": round(cv, 4)}


def summary(rows: list[dict], sides: list[str]) -> list[str]:
    lines = []
    for key in ("tuned", "cv"):
        for side in sides:
            v = [r[key] for r in rows if r["side"] == side]
            sd = statistics.stdev(v) if len(v) > 1 else float("nan")
            lines.append(f"{key:5s} {side:12s} mean {statistics.mean(v):.4f} sd {sd:.4f} (n={len(v)})")
        by = {(r["side"], r["seed"]): r[key] for r in rows}
        diffs = [by[(sides[0], s)] - by[(sides[1], s)] for (side, s) in by if side == sides[0] and (sides[1], s) in by]
        if len(diffs) > 1:
            se = statistics.stdev(diffs) / len(diffs) ** 0.5
            lines.append(f"{key:5s} {sides[0]} - {sides[1]}: mean {statistics.mean(diffs):+.4f} se {se:.4f} "
                         f"(paired by seed, n={len(diffs)})")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True, help="train.csv, test.csv, sample_submission.csv")
    p.add_argument("--folds-dir", required=True, help="folds.csv made by `python -m solution folds`")
    p.add_argument("--model", default="minilm-ft")
    p.add_argument("--seeds", default="42,7,13")
    p.add_argument("--baseline-ref", default=None, help="the other side: the kit as of this git commit")
    p.add_argument("--baseline-dir", default=None, help="or a folder holding that kit's solution/ package")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="an override for both sides")
    p.add_argument("--baseline-only", action="store_true", help="train and score only the other side (e.g. a "
                   "variant, against this tree's rows of an earlier run with the same seeds); no paired summary")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time (a GPU has room for several small ones)")
    p.add_argument("--work", required=True, help="where each run's output and log go")
    p.add_argument("--out", default=None, help="also write the rows and the summary as JSON here")
    args = p.parse_args(argv)
    args.input, args.folds_dir = str(Path(args.input).resolve()), str(Path(args.folds_dir).resolve())
    if bool(args.baseline_ref) == bool(args.baseline_dir):
        p.error("give one of --baseline-ref or --baseline-dir")
    if args.baseline_ref:
        from train_speed import checkout

        base, name = checkout(args.baseline_ref), f"kit@{args.baseline_ref}"
    else:
        base, name = Path(args.baseline_dir).resolve(), f"kit@{Path(args.baseline_dir).name}"
    sides = {"kit": ROOT, name: base}
    runs = [(side, root, int(s)) for s in args.seeds.split(",") for side, root in sides.items()
            if not (args.baseline_only and side == "kit")]
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = []
        for r in pool.map(lambda run: train(*run, args), runs):
            print(json.dumps(r), flush=True)
            rows.append(r)
    lines = summary(rows, list(sides)) if not args.baseline_only else []
    print("\n".join(lines))
    if args.out:
        Path(args.out).write_text(json.dumps({"rows": rows, "summary": lines, "set": args.set}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
