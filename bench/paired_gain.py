"""Is a member's gain in the blend more than noise? A paired bootstrap of the blend with and without it.

    .venv/bin/python bench/paired_gain.py --input ../shared/data/semeval2018-ec \
        --folds-dir /work/runs/bp120d/folds --members /work/runs/bp120d/output,/work/runs/ladder13/asl1 \
        --base tfidf-lr,minilm-emb-lr,minilm-top3-ft,mpnet-top2-ft,minilm-lora,mpnet-top6-ft,mpnet-ft \
        --with mpnet-ft-seed7

Both blends are the `blend` command's weighted average (fine-tuned members x2) with thresholds cross-validated over
the folds (thresholds.select, then every row cut with its own fold's thresholds: the report's CV column). The same
rows are resampled for both (1000 times), so the spread is that of the difference, not of either score; the
per-fold differences show whether the gain holds across folds. bench/ladder.py gives the row's point numbers;
this says how far to trust them.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ladder import find_member

from solution import data as data_mod
from solution import folds as folds_mod
from solution.blend import blend, thresholds
from solution.blend.metrics import macro_f1


def cv_pred(data, folds_dir: Path, fold, dirs: list[Path]) -> np.ndarray:
    """The blend's held-out 0/1 predictions: weighted average, thresholds cross-validated over folds."""
    oofs = [blend.load_probs(d.parent, d.name, data, folds_dir, fold=fold)[0] for d in dirs]
    w = blend.encoder_weights([blend.member_kinds(d.parent, [d.name])[0] for d in dirs])
    probs = blend.combine(np.stack(oofs), w)
    sel = thresholds.select(data.y, probs, fold)
    return thresholds.cv_predict(probs, fold, sel["fold_thresholds"], sel["min_one"]["used"])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True)
    p.add_argument("--folds-dir", required=True)
    p.add_argument("--members", required=True, help="comma-separated folders holding the members' folders")
    p.add_argument("--base", required=True, help="comma-separated members of the blend without the candidate")
    p.add_argument("--with", dest="candidate", required=True, help="comma-separated members added to the base")
    p.add_argument("--n", type=int, default=1000)
    args = p.parse_args(argv)
    data = data_mod.load(args.input)
    folds_dir = Path(args.folds_dir)
    fold = folds_mod.load(data, folds_dir)
    where = [Path(d) for d in args.members.split(",")]
    base = [find_member(m, where) for m in args.base.split(",")]
    more = base + [find_member(m, where) for m in args.candidate.split(",")]
    y, a, b = data.y, cv_pred(data, folds_dir, fold, base), cv_pred(data, folds_dir, fold, more)
    rng = np.random.default_rng(0)
    diffs = []
    for _ in range(args.n):
        rows = rng.integers(0, len(y), len(y))
        diffs.append(macro_f1(y[rows], b[rows]) - macro_f1(y[rows], a[rows]))
    diffs = np.array(diffs)
    gain = [macro_f1(y[fold == k], b[fold == k]) - macro_f1(y[fold == k], a[fold == k]) for k in range(fold.max() + 1)]
    before, after = macro_f1(y, a), macro_f1(y, b)
    print(f"CV macro-F1 {before:.4f} -> {after:.4f} ({after - before:+.4f}); paired bootstrap of the difference: "
          f"mean {diffs.mean():+.4f}, sd {diffs.std():.4f}, P(> 0) {(diffs > 0).mean():.2f}; "
          f"per fold: {' '.join(f'{d:+.4f}' for d in gain)}")


if __name__ == "__main__":
    main()
