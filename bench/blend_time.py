"""How long the final blend takes as the members and rows grow: the numbers behind the plan's blend reserve.

Copies one trained model's folder as NAME-seedN members, each with its own noise on the logits (identical copies
would be collinear, which no real blend is), and times blend() on 1..K of them.
usage: python bench/blend_time.py --input DATA --output OUT_OF_A_RUN --model tfidf-lr [--max 8]
(OUT_OF_A_RUN: the output folder of `python -m solution run --input DATA --models tfidf-lr`)"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from solution import data as data_mod
from solution.blend import blend as blend_mod
from solution.train import budget


def perturb(mdir: Path, labels: list[str], rng) -> None:
    """Logit noise on every probability file of a model folder."""
    for f in mdir.rglob("*.csv"):
        t = pd.read_csv(f, dtype={"ID": str})
        logit = np.log(t[labels] / (1 - t[labels]).clip(1e-9)).clip(-20, 20) + rng.normal(0, 0.5, (len(t), len(labels)))
        t[labels] = 1 / (1 + np.exp(-logit))
        t.to_csv(f, index=False, float_format="%.17g")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--input", type=Path, required=True)
    p.add_argument("--output", type=Path, required=True, help="a run's output folder holding --model")
    p.add_argument("--folds-dir", type=Path, default=None, help="default: the run's folds (OUTPUT/../folds)")
    p.add_argument("--model", default="tfidf-lr")
    p.add_argument("--max", type=int, default=8)
    args = p.parse_args(argv)
    data = data_mod.load(args.input)
    folds = args.folds_dir or args.output.parent / "folds"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        names = [args.model] + [f"{args.model}-seed{k}" for k in range(1, args.max)]
        for k, n in enumerate(names):
            shutil.copytree(args.output / args.model, out / n)
            if k:
                perturb(out / n, data.labels, np.random.default_rng(k))
        print(f"{'members':>7} {'rows':>6} {'blend s':>8} {'reserve s':>9}")
        for k in sorted({1, 2, 4, args.max}):
            t0 = time.perf_counter()
            blend_mod.blend(data, folds, out, names[:k], echo=False)
            took = time.perf_counter() - t0
            print(f"{k:>7} {len(data.train):>6} {took:>8.1f} {budget.blend_reserve(len(data.train), k):>9.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
