"""A trained model's folder read back: the one rule for "is this fold done?" and the one reader of its
fold probability files. `train` (resume, assembly), `blend` and `predict` all go through here, so they
can never disagree about which folds count.

A fold is done when its DONE.json (written last by training) is readable and carries the fingerprint of
the config the folder was trained with, and its oof.csv and test.csv read as probabilities. A marker without a
fingerprint, or with another one, is not done; nor is a fold whose files hold a NaN (an older run's), so that
resuming retrains it instead of failing when the folds are put together.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from solution.data import ID, CompetitionData
from solution.errors import UserError
from solution.io import read_json, read_prob_table

DONE = "DONE.json"  # a fold's marker, written last by training


def folds_signature(folds_dir: Path) -> dict:
    """What a model folder records of the folds it was trained on (checked by train, blend and predict)."""
    from solution import folds as folds_mod

    m = folds_mod.meta(folds_dir)
    return {k: m.get(k) for k in ("fingerprint", "n_splits", "seed")}


def fold_done(fold_dir: Path, fingerprint: str | None) -> bool:
    """True when fold_dir/DONE.json names `fingerprint` (a None fingerprint: never done) and the fold's
    probability files are readable (bad_probs)."""
    return marked_done(fold_dir, fingerprint) and bad_probs(fold_dir) is None


def marked_done(fold_dir: Path, fingerprint: str | None) -> bool:
    """True when fold_dir/DONE.json is readable and names `fingerprint`."""
    p = Path(fold_dir) / DONE
    if fingerprint is None or not p.exists():
        return False
    try:
        done = read_json(p)
    except UserError:
        return False
    return isinstance(done, dict) and done.get("config_fingerprint") == fingerprint


def bad_probs(fold_dir: Path) -> str | None:
    """Why the fold's oof.csv or test.csv cannot be read as probabilities of its model's labels, or None."""
    fold_dir = Path(fold_dir)
    try:
        labels = read_json(fold_dir.parent / "config.json").get("labels")
        if not isinstance(labels, list):
            return f"{fold_dir.parent / 'config.json'}: no labels"
        for name in ("oof.csv", "test.csv"):
            read_prob_table(fold_dir / name, labels)
    except UserError as e:
        return str(e)
    return None


def missing_folds(mdir: Path, fingerprint: str | None, n_splits: int) -> list[int]:
    return [k for k in range(n_splits) if not fold_done(Path(mdir) / f"fold{k}", fingerprint)]


def read_record(mdir: Path, data: CompetitionData, folds_dir: Path) -> dict:
    """config.json of a model folder, refused unless it was trained on these folds and labels."""
    mdir, name = Path(mdir), Path(mdir).name
    if not (mdir / "config.json").exists():
        raise UserError(f"{mdir}: no trained model {name!r}; train it with `python -m solution train {name}`")
    rec = read_json(mdir / "config.json")
    if rec.get("folds") != folds_signature(folds_dir):
        raise UserError(f"{mdir} was trained with other folds than {Path(folds_dir) / 'folds.csv'}; "
                        f"retrain it with `python -m solution train {name} --force`")
    if rec.get("labels") != data.labels:
        raise UserError(f"{mdir} was trained with other labels than {data.input_dir / 'sample_submission.csv'}")
    return rec


def fold_probs(mdir: Path, data: CompetitionData, fold: np.ndarray, fingerprint: str | None
               ) -> tuple[np.ndarray, list[np.ndarray]]:
    """(OOF in train order, [test probabilities of each fold in test order]) from a model's fold files.

    Refuses (UserError) a fold that is not done, OOF rows that are not exactly that fold's train rows
    (so the folds' OOF covers every train row once), and test rows that are not test.csv's.
    """
    mdir, name = Path(mdir), Path(mdir).name
    n_splits = int(fold.max()) + 1
    missing = missing_folds(mdir, fingerprint, n_splits)
    unreadable = [why for k in missing if marked_done(mdir / f"fold{k}", fingerprint)
                  for why in [bad_probs(mdir / f"fold{k}")] if why]
    if unreadable:  # trained, but its files cannot be used: `train` redoes such a fold
        raise UserError(f"{unreadable[0]}; run `python -m solution train {name}` to retrain that fold")
    if missing:
        raise UserError(f"{mdir}: fold(s) {missing} not trained; run `python -m solution train {name}` to finish them")
    retrain = f"retrain with `python -m solution train {name} --force`"
    pos = {i: r for r, i in enumerate(data.train[ID])}
    oof = np.full((len(data.train), len(data.labels)), np.nan)
    tests = []
    for k in range(n_splits):
        fdir = mdir / f"fold{k}"
        o = read_prob_table(fdir / "oof.csv", data.labels)
        rows = [pos.get(i, -1) for i in o[ID]]
        if -1 in rows or sorted(rows) != np.flatnonzero(fold == k).tolist():
            raise UserError(f"{fdir / 'oof.csv'}: its IDs are not fold {k}'s train rows of the folds; {retrain}")
        oof[rows] = o[data.labels].to_numpy()
        t = read_prob_table(fdir / "test.csv", data.labels).set_index(ID)
        try:
            tests.append(t.loc[data.test[ID], data.labels].to_numpy())
        except KeyError:
            raise UserError(f"{fdir / 'test.csv'}: its IDs do not match {data.input_dir / 'test.csv'}; {retrain}") from None
    return oof, tests  # the folds partition the train rows, so every row is now filled exactly once
