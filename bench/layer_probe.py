"""Which of a frozen encoder's layers an embedding member should read: OOF macro-F1 per (layers, C).

    .venv/bin/python bench/layer_probe.py --input ../shared/data/semeval2018-ec --folds /work/runs/ladder/folds \
        --member minilm-emb-lr --layers 1,2,4 --C 0.25,0.5,1

One encoder pass (the member's own EmbedModel.embed with layers=max, cached under --work as .npy), then for
each (layers, C) the member's one-vs-rest logistic regression on the 5 folds of --folds, scored as the blend
scores a model: OOF macro-F1 with thresholds tuned on OOF and cross-validated (thresholds.select), and the rare
labels' F1. `layers=N` is the member's setting: the last N layers mean-pooled, each L2-normalised, side by side.
Only the member alone; what it buys in the blend: bench/ladder.py --set layers=N.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

RARE = ("trust", "surprise", "anticipation", "pessimism")


def oof_probs(member: str, X, y, fold, C: float, labels) -> np.ndarray:
    """Out-of-fold probabilities of the member's own classifiers (EmbedModel.fit_classifiers) at this C."""
    from solution import config
    from solution.models.embed import EmbedModel
    from solution.models.linear import predict_per_label

    model = EmbedModel(config.get(member, {"C": C}), labels)
    probs = np.zeros(y.shape)
    for k in range(int(fold.max()) + 1):
        tr = fold != k
        probs[~tr] = predict_per_label(model.fit_classifiers(X[tr], y[tr]), X[~tr])
    return probs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", type=Path, required=True)
    p.add_argument("--folds", type=Path, required=True, help="folder with folds.csv (made by `folds`)")
    p.add_argument("--member", default="minilm-emb-lr")
    p.add_argument("--layers", default="1,2,4")
    p.add_argument("--C", default="0.25")
    p.add_argument("--work", type=Path, default=Path("/tmp/layer-probe"))
    args = p.parse_args()
    from solution import config, data, folds, metrics, thresholds
    from solution.models.embed import EmbedModel

    d = data.load(args.input)
    fold, y = folds.load(d, args.folds), d.y
    layers = [int(n) for n in args.layers.split(",")]
    cfg = config.get(args.member, {"layers": max(layers)})
    cache = args.work / f"{args.member}-layers{max(layers)}.npy"
    if not cache.exists():
        t0 = time.time()
        X = EmbedModel(cfg, d.labels).embed(d.train["Tweet"].tolist())
        args.work.mkdir(parents=True, exist_ok=True)
        np.save(cache, X)
        print(f"encoded {len(X)} tweets in {time.time() - t0:.0f}s -> {cache}", flush=True)
    X = np.load(cache)
    width = X.shape[1] // max(layers)
    print(f"{args.member}: layers  C      tuned   CV      " + "  ".join(RARE) + "  fit s")
    for n in layers:
        for C in (float(c) for c in args.C.split(",")):
            t0 = time.time()
            probs = oof_probs(args.member, X[:, -n * width:], y, fold, C, d.labels)
            sel = thresholds.select(y, probs, fold)
            pred = thresholds.predict(probs, sel["thresholds"], sel["min_one"]["used"])
            per = metrics.f1_per_class(y, pred)
            rare = "  ".join(f"{per[d.labels.index(r)]:.3f}" for r in RARE)
            print(f"{'':>{len(args.member)}}  {n:>6}  {C:<5}  {float(per.mean()):.4f}  {sel['cv_macro_f1']:.4f}  "
                  f"{rare}  {time.time() - t0:.0f}", flush=True)


if __name__ == "__main__":
    main()
