"""A trained model's folder read back: the one rule for "is this fold done?" and the one reader of its fold
files, so `train`, `blend` and `predict` agree."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from solution import config as config_mod
from solution import folds as folds_mod
from solution import hints, lock, log
from solution.data import ID, CompetitionData
from solution.errors import UserError, os_error
from solution.io import (
    CONFIG_JSON,
    DONE_JSON,
    METRICS_JSON,
    prob_table,
    read_checked,
    read_prob_table,
    write_csv,
    write_json,
)

DONE = "DONE.json"  # written last by training


def folds_signature(folds_dir: Path) -> dict:
    m = folds_mod.meta(folds_dir)
    return {k: m.get(k) for k in ("fingerprint", "n_splits", "seed")}


def fold_done(fold_dir: Path, fingerprint: str | None) -> bool:
    """DONE.json names `fingerprint` (None: never) and the files it vouches for read."""
    return marked_done(fold_dir, fingerprint) and bad_fold(fold_dir) is None


def marked_done(fold_dir: Path, fingerprint: str | None) -> bool:
    p = Path(fold_dir) / DONE
    if fingerprint is None or not p.exists():
        return False
    try:
        return read_checked(p, DONE_JSON)["config_fingerprint"] == fingerprint
    except (UserError, OSError):
        return False


def bad_fold(fold_dir: Path) -> str | None:
    """Why the fold's metrics.json, oof.csv or test.csv cannot be used, or None."""
    fold_dir = Path(fold_dir)
    try:
        labels = read_config(fold_dir.parent)["labels"]
        read_metrics(fold_dir)
        for name in ("oof.csv", "test.csv"):
            read_prob_table(fold_dir / name, labels)
    except UserError as e:
        return str(e)
    except OSError as e:  # a folder where a file belongs, say
        return os_error(e)
    return None


def read_config(mdir: Path) -> dict:
    """The model folder's config.json, checked for its shape."""
    return read_checked(Path(mdir) / "config.json", CONFIG_JSON)


def read_metrics(fold_dir: Path) -> dict:
    return read_checked(Path(fold_dir) / "metrics.json", METRICS_JSON)


def train_hint(mdir: Path, data: CompetitionData, folds_dir: Path | None, *args: str) -> str:
    """`python -m solution train NAME ARGS` with the user's own folders (an unknown folds folder left out)."""
    mdir = Path(mdir)
    return f"`{hints.command('train', mdir.name, *args, input=data.input_dir, folds=folds_dir, output=mdir.parent)}`"


def missing_folds(mdir: Path, fingerprint: str | None, n_splits: int) -> list[int]:
    return [k for k in range(n_splits) if not fold_done(Path(mdir) / f"fold{k}", fingerprint)]


def read_record(mdir: Path, data: CompetitionData, folds_dir: Path) -> dict:
    """config.json, refused unless the model was trained on these folds and labels."""
    mdir, name = Path(mdir), Path(mdir).name
    retrain = f"retrain it with {train_hint(mdir, data, folds_dir, '--force')}"
    if not (mdir / "config.json").exists():
        raise UserError(f"{mdir}: no trained model {name!r}; train it with {train_hint(mdir, data, folds_dir)}")
    try:
        rec = read_config(mdir)
    except UserError as e:
        raise UserError(f"{e}; {retrain}") from None
    if rec["folds"] != folds_signature(folds_dir):
        raise UserError(f"{mdir} was trained with other folds than {Path(folds_dir) / 'folds.csv'}; {retrain}")
    if rec["labels"] != data.labels:
        raise UserError(f"{mdir} was trained with other labels than {data.input_dir / 'sample_submission.csv'}")
    return rec


def fold_probs(mdir: Path, data: CompetitionData, fold: np.ndarray, fingerprint: str | None,
               folds_dir: Path | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """(OOF in train order, [each fold's test probabilities]); folds_dir only for the hints."""
    mdir = Path(mdir)
    n_splits = int(fold.max()) + 1
    missing = missing_folds(mdir, fingerprint, n_splits)
    unreadable = [why for k in missing if marked_done(mdir / f"fold{k}", fingerprint)
                  for why in [bad_fold(mdir / f"fold{k}")] if why]
    if unreadable:  # `train` redoes such a fold
        raise UserError(f"{unreadable[0]}; run {train_hint(mdir, data, folds_dir)} to retrain that fold")
    if missing:
        raise UserError(f"{mdir}: fold(s) {missing} not trained; run {train_hint(mdir, data, folds_dir)} to finish "
                        f"them")
    retrain = f"retrain with {train_hint(mdir, data, folds_dir, '--force')}"
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
            raise UserError(f"{fdir / 'test.csv'}: its IDs do not match {data.input_dir / 'test.csv'}; {retrain}"
                            ) from None
    return oof, tests


def model_dir(output: Path, name: str) -> Path:
    return Path(output) / name


def config_difference(path: Path, record: dict) -> str | None:
    """How the config.json at `path` differs from `record` (None: it does not)."""
    try:
        old = read_config(path.parent)
    except UserError as e:
        return f"whose config.json is damaged ({e})"
    new = json.loads(json.dumps(record["config"]))  # as stored: tuples read back as lists
    diff = sorted(k for k, v in new.items()
                  if k not in config_mod.RUNTIME_FIELDS and old["config"].get(k) != v)
    if old["config_fingerprint"] != record["config_fingerprint"]:
        return f"trained with another config (differs in: {', '.join(diff) or '?'})"
    if old["folds"] != record["folds"] or old["labels"] != record["labels"]:
        return "trained with other folds or data than the current folds/"
    return None


def _check_or_write_config(cfg, mdir: Path, signature: dict, labels: list[str], force: bool) -> None:
    """One config per folder: another config's folds are never mixed in."""
    path = mdir / "config.json"
    record = {"name": cfg.name, "config": cfg.to_dict(), "config_fingerprint": cfg.fingerprint(),
              "folds": signature, "labels": labels}
    if path.exists():
        problem = config_difference(path, record)
        finished = any(mdir.glob(f"fold*/{DONE}"))
        if problem and finished and not force:
            raise UserError(f"{mdir} holds a model {problem}; rerun with --force to retrain it, "
                            f"or use another --output")
        if problem:
            why = "--force given" if finished else "no fold finished"
            log.info(f"{mdir}: a model {problem}; {why}, removing it")
            lock.clear(mdir)
    write_json(record, path)


def assemble(cfg, data: CompetitionData, fold: np.ndarray, mdir: Path, folds_dir: Path | None = None) -> bool:
    """Write oof.csv (train order) and test.csv (mean over folds) once every fold is done."""
    if missing_folds(mdir, cfg.fingerprint(), int(fold.max()) + 1):
        return False
    oof, tests = fold_probs(mdir, data, fold, cfg.fingerprint(), folds_dir)
    write_csv(prob_table(data.train[ID], oof, data.labels), mdir / "oof.csv")
    write_csv(prob_table(data.test[ID], np.mean(tests, axis=0), data.labels), mdir / "test.csv")
    return True


def folds_to_train(cfg, mdir: Path, wanted: list[int], force: bool) -> list[int]:
    return list(wanted) if force else [k for k in wanted if not fold_done(mdir / f"fold{k}", cfg.fingerprint())]


def prepare_model_dir(cfg, data: CompetitionData, dirs, wanted: list[int], force: bool) -> list[int]:
    """Check or write the folder's config; returns the folds to train."""
    mdir = model_dir(dirs.output, cfg.name)
    _check_or_write_config(cfg, mdir, folds_signature(dirs.folds), data.labels, force)
    todo = folds_to_train(cfg, mdir, wanted, force)
    for k in todo:
        (mdir / f"fold{k}" / DONE).unlink(missing_ok=True)
    skipped = sorted(set(wanted) - set(todo))
    if skipped:
        log.info(f"{cfg.name}: fold(s) {skipped} already done, skipping (--force retrains)")
    return todo

