"""Blend what training wrote: average models' OOF/test probabilities, tune per-class thresholds on OOF,
write output/submission.csv and output/blend/report.json. Never retrains."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from solution import log, metrics, thresholds
from solution.data import ID, CompetitionData
from solution.errors import UserError
from solution.io import read_json, read_prob_table, write_json
from solution import submission
from solution.train import DONE, folds_signature

NOT_MODELS = {"blend", "demo", "kernel", "kernel-wheels"}


def discover(output: Path) -> list[str]:
    return sorted(p.name for p in Path(output).iterdir()
                  if p.is_dir() and p.name not in NOT_MODELS and (p / "config.json").exists())


def load_model(output: Path, name: str, data: CompetitionData, folds_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(oof, test) of one model, in train/test order; refuses incomplete or stale models."""
    mdir = Path(output) / name
    if not (mdir / "config.json").exists():
        raise UserError(f"{mdir}: no trained model {name!r}; train it with `python -m solution train {name}`")
    rec = read_json(mdir / "config.json")
    sig = folds_signature(folds_dir)
    if rec.get("folds") != sig:
        raise UserError(f"{mdir} was trained with other folds than {Path(folds_dir) / 'folds.csv'}; "
                        f"retrain it with `python -m solution train {name} --force`")
    if rec.get("labels") != data.labels:
        raise UserError(f"{mdir} was trained with other labels than {data.input_dir / 'sample_submission.csv'}")
    missing = [k for k in range(sig["n_splits"]) if not (mdir / f"fold{k}" / DONE).exists()]
    if missing:
        raise UserError(f"{mdir}: fold(s) {missing} not trained; run `python -m solution train {name}` to finish them")
    oof = read_prob_table(mdir / "oof.csv", data.labels).set_index(ID)
    test = read_prob_table(mdir / "test.csv", data.labels).set_index(ID)
    try:
        return (oof.loc[data.train[ID], data.labels].to_numpy(), test.loc[data.test[ID], data.labels].to_numpy())
    except KeyError:
        raise UserError(f"{mdir}: its oof/test IDs do not match the current train/test files; retrain with --force") from None


def blend(data: CompetitionData, folds_dir: Path, output: Path, names: list[str]) -> dict:
    if not names:
        raise UserError(f"{output}: no trained models to blend; run `python -m solution train` first")
    loaded = {n: load_model(output, n, data, folds_dir) for n in names}
    y = data.y
    weights = np.full(len(names), 1 / len(names))
    oof = sum(w * loaded[n][0] for w, n in zip(weights, names))
    test = sum(w * loaded[n][1] for w, n in zip(weights, names))
    t = thresholds.tune(y, oof)
    rows = {}
    for n in names:
        o = loaded[n][0]
        rows[n] = {"at_0.5": metrics.scores(y, o, 0.5, data.labels),
                   "at_tuned": metrics.scores(y, o, thresholds.tune(y, o), data.labels)}
    rows["blend"] = {"at_0.5": metrics.scores(y, oof, 0.5, data.labels),
                     "at_tuned": metrics.scores(y, oof, t, data.labels)}
    sub = submission.build(data.sample, data.labels, data.test[ID], test, t)
    path = submission.write(sub, data.sample, Path(output) / "submission.csv")
    report = {"models": names, "weights": dict(zip(names, weights.tolist())),
              "thresholds": dict(zip(data.labels, t.tolist())), "scores": rows, "submission": str(path)}
    write_json(report, Path(output) / "blend" / "report.json")
    for n, r in rows.items():
        print(f"{n:>24}: OOF macro-F1 {r['at_0.5']['macro_f1']:.4f} at 0.5, {r['at_tuned']['macro_f1']:.4f} tuned")
    print(f"submission: {path}")
    return report


def main(argv=None) -> int:
    from solution.cli import common_parser, resolve_data

    p = argparse.ArgumentParser(prog="python -m solution blend", parents=[common_parser()],
                                description="Blend trained models' OOF/test probabilities into output/submission.csv.")
    p.add_argument("models", nargs="*", help="models to blend (default: every trained model under --output)")
    args = p.parse_args(argv)
    data, dirs = resolve_data(args)
    blend(data, dirs.folds, dirs.output, args.models or discover(dirs.output))
    return 0
