"""A trained model's folder read back: the one rule for "is this fold done?" and the one reader of its
fold probability files. `train` (resume, assembly), `blend` and `predict` all go through here, so they
can never disagree about which folds count.

A fold is done when its DONE.json (written last by training) is readable and carries the fingerprint of
the config the folder was trained with. A marker without a fingerprint, or with another one, is not done.
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
    """True when fold_dir/DONE.json is readable and names `fingerprint` (a None fingerprint: never done)."""
    p = Path(fold_dir) / DONE
    if fingerprint is None or not p.exists():
        return False
    try:
        done = read_json(p)
    except UserError:
        return False
    return isinstance(done, dict) and done.get("config_fingerprint") == fingerprint


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
