"""Should members that fine-tune their encoder weigh more than TF-IDF and frozen-embedding members? Nested CV.

    .venv/bin/python bench/encoder_weight.py --input ../shared/data/semeval2018-ec RUN [RUN ...]

Each RUN is a work folder of bench/cpu_profile.py (RUN/folds, RUN/output). For each, the blend's weighted
average is scored three ways, every choice made on four folds' OOF and scored on the fifth (pooled over the
five): equal weights; members of kind `hf` at blend.ENCODER_WEIGHT; and `auto`, the one of the two with the
higher cross-validated macro-F1 on the four folds (what `blend --weights auto` does on all five). Thresholds
and their shrink are chosen inside the same four folds (thresholds.select), so nothing is scored on rows that
chose it. Prints one line per run and the mean change against equal weights.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from solution import data as data_mod
from solution import folds as folds_mod
from solution.blend import blend as blend_mod
from solution.blend import thresholds
from solution.blend.metrics import f1_per_class


def held_out(y, stack, fold, candidates: dict) -> float:
    """Pooled macro-F1 of each fold cut with weights and thresholds chosen on the other folds."""
    pred = np.zeros(y.shape, dtype=np.int8)
    for k in range(int(fold.max()) + 1):
        rest = fold != k
        inner = np.searchsorted(np.unique(fold[rest]), fold[rest])  # the other folds, numbered 0..n-2
        best = None
        for w in candidates.values():
            sel = thresholds.select(y[rest], blend_mod.combine(stack[:, rest], w), inner)
            if best is None or sel["cv_macro_f1"] > best[0] + 1e-12:
                best = (sel["cv_macro_f1"], w, sel)
        _, w, sel = best
        pred[fold == k] = thresholds.predict(blend_mod.combine(stack[:, fold == k], w), sel["thresholds"],
                                             sel["min_one"]["used"])
    return float(f1_per_class(y, pred).mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True)
    p.add_argument("runs", nargs="+")
    args = p.parse_args()
    data = data_mod.load(args.input)
    gains = {"encoders": [], "auto": []}
    for run in map(Path, args.runs):
        output, folds_dir = run / "output", run / "folds"
        names = blend_mod.discover(output)
        fold = folds_mod.load(data, folds_dir)
        stack = np.stack([blend_mod.load_probs(output, n, data, folds_dir, fold=fold)[0] for n in names])
        enc = blend_mod.encoder_weights(blend_mod.member_kinds(output, names))
        equal = np.full(len(names), 1 / len(names))
        scores = {"equal": held_out(data.y, stack, fold, {"equal": equal}),
                  "encoders": held_out(data.y, stack, fold, {"encoders": enc}),
                  "auto": held_out(data.y, stack, fold, {"equal": equal, "encoders": enc})}
        for m in gains:
            gains[m].append(scores[m] - scores["equal"])
        print(f"{run.name:<10} {', '.join(names)}: equal {scores['equal']:.4f}, encoders x{blend_mod.ENCODER_WEIGHT:g} "
              f"{scores['encoders']:.4f}, auto {scores['auto']:.4f}", flush=True)
    for m, g in gains.items():
        print(f"{m} against equal weights: mean {np.mean(g):+.4f}, {sum(x > 0 for x in g)} of {len(g)} runs up")


if __name__ == "__main__":
    main()
