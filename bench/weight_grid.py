"""Would blend weights tuned for macro-F1 beat equal weights? An honest check on trained OOF.

    .venv/bin/python bench/weight_grid.py --input ../shared/data/semeval2018-ec \
        --folds-dir /tmp/bench-cpu-profile/folds --output /tmp/bench-cpu-profile/output [--step 0.1]

Searches non-negative weights on a grid (summing to 1) for the highest OOF macro-F1 with per-label
thresholds tuned on the same rows, then repeats the search inside each fold split (weights and thresholds
chosen on k-1 folds, applied to the held-out fold) and prints the pooled held-out macro-F1 next to equal
weights through the same procedure. The gap between in-sample and held-out is what the search overfits.
"""
from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

from solution import data as data_mod
from solution import folds as folds_mod
from solution import metrics, thresholds
from solution.blend import _held_out_macro_f1, combine, discover, load_probs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True)
    p.add_argument("--folds-dir", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--step", type=float, default=0.1)
    p.add_argument("models", nargs="*")
    args = p.parse_args()
    data = data_mod.load(args.input)
    folds_dir, output = Path(args.folds_dir), Path(args.output)
    fold = folds_mod.load(data, folds_dir)
    names = args.models or discover(output)
    oof = np.stack([load_probs(output, n, data, folds_dir, "mean", fold)[0] for n in names])
    y, k = data.y, int(round(1 / args.step))
    grid = [np.array(c) / k for c in itertools.product(range(k + 1), repeat=len(names)) if sum(c) == k]

    def search(rows):
        scores = [metrics.macro_f1(y[rows], p, thresholds.tune(y[rows], p)) for p in (combine(oof[:, rows], w) for w in grid)]
        i = int(np.argmax(scores))
        return grid[i], scores[i]

    w_all, s_all = search(np.ones(len(y), bool))
    print(f"{len(grid)} weightings of {', '.join(names)}")
    print(f"in-sample best: {dict(zip(names, w_all.round(2).tolist()))} macro-F1 {s_all:.4f}")
    held, fold_t = np.zeros(oof.shape[1:]), []
    for f in range(int(fold.max()) + 1):
        tr = fold != f
        w, _ = search(tr)
        held[fold == f] = combine(oof[:, fold == f], w)
        fold_t.append(thresholds.tune(y[tr], combine(oof[:, tr], w)))
    nested = float(metrics.f1_per_class(y, thresholds.cv_predict(held, fold, np.array(fold_t))).mean())
    eq = _held_out_macro_f1(y, combine(oof, np.full(len(names), 1 / len(names))), fold)
    print(f"held-out macro-F1: searched weights {nested:.4f}, equal weights {eq:.4f}")


if __name__ == "__main__":
    main()
