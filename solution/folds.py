"""Multilabel-stratified k-fold splits, made once into folds/ and only read afterwards; stale folds are refused."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from solution import hints, lock, log
from solution.data import ID, CompetitionData, read_columns
from solution.errors import UserError
from solution.io import read_json, remove_stale_tmp, write_csv, write_json
from solution.options import common_parser, resolve_data

DEFAULT_FOLDS_DIR = Path("folds")
DEFAULT_N_SPLITS = 5
DEFAULT_SEED = 42


def make_folds(y: np.ndarray, n_splits: int = DEFAULT_N_SPLITS, seed: int = DEFAULT_SEED) -> np.ndarray:
    """Fold index per row (iterstrat's MultilabelStratifiedKFold, shuffled and seeded)."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

    y = np.asarray(y)
    if n_splits < 2:
        raise UserError(f"--n-splits must be at least 2, got {n_splits}")
    if not 0 <= seed < 2**32:
        raise UserError(f"--fold-seed must be in [0, 2**32 - 1], got {seed}")
    if len(y) < n_splits:
        raise UserError(f"cannot make {n_splits} folds from {len(y)} train rows")
    fold = np.full(len(y), -1, dtype=np.int64)
    mskf = MultilabelStratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    for k, (_, val) in enumerate(mskf.split(np.zeros(len(y)), y)):
        fold[val] = k
    return fold


def write(data: CompetitionData, folds_dir: Path, n_splits: int, seed: int) -> Path:
    fold = make_folds(data.y, n_splits, seed)
    folds_dir = Path(folds_dir)
    write_csv(pd.DataFrame({ID: data.train[ID], "fold": fold}), folds_dir / "folds.csv")
    write_json({"fingerprint": data.fingerprint(), "n_splits": n_splits, "seed": seed,
                "n_rows": len(fold), "input_dir": str(data.input_dir)}, folds_dir / "folds.json")
    return folds_dir / "folds.csv"


def meta(folds_dir: Path) -> dict:
    return read_json(Path(folds_dir) / "folds.json")


def load(data: CompetitionData, folds_dir: Path = DEFAULT_FOLDS_DIR) -> np.ndarray:
    """Fold index per train row; refuses missing, stale or hand-broken folds."""
    folds_dir = Path(folds_dir)
    csv_path, meta_path = folds_dir / "folds.csv", folds_dir / "folds.json"
    if not csv_path.exists() or not meta_path.exists():
        raise UserError(f"{csv_path}: no folds yet; make them with {_make(data, folds_dir)}")
    m = read_json(meta_path)
    rebuild = f"rebuild with {_make(data, folds_dir, '--force')}"
    if m.get("fingerprint") != data.fingerprint():
        raise UserError(f"{csv_path} was made from other train data than {data.input_dir / 'train.csv'} "
                        f"(fingerprint {m.get('fingerprint')} vs {data.fingerprint()}); {rebuild} "
                        f"(trained models then retrain)")
    try:
        df = read_columns(csv_path, [ID, "fold"])
    except UserError as e:
        raise UserError(f"{e}; {rebuild}") from None
    fold_col = pd.to_numeric(df["fold"], errors="coerce")
    if fold_col.isna().any() or (fold_col % 1 != 0).any():
        raise UserError(f"{csv_path}: non-integer fold numbers; {rebuild}")
    by_id = dict(zip(df[ID], fold_col.astype(np.int64)))
    fold = np.array([by_id.get(i, -1) for i in data.train[ID]], dtype=np.int64)
    if (fold < 0).any() or len(df) != len(fold):
        raise UserError(f"{csv_path} does not cover train.csv row for row; {rebuild}")
    _check_every_fold(fold, m.get("n_splits"), csv_path, rebuild)
    return fold


def _check_every_fold(fold: np.ndarray, n_splits, csv_path: Path, rebuild: str) -> None:
    """Folds 0..n_splits-1, none empty: an empty fold would train or score on no rows."""
    n = n_splits if type(n_splits) is int and n_splits > 1 else int(fold.max()) + 1
    present = sorted(set(fold.tolist()))
    problems = [f"fold {k} has no rows" for k in range(n) if k not in present]
    problems += [f"fold {k} is beyond n_splits={n}" for k in present if k >= n]
    if len(present) < 2:
        problems.append("a single fold leaves no rows to train on")
    if problems:
        raise UserError(f"{csv_path}: {problems[0]} (it holds fold(s) {', '.join(map(str, present))}; "
                        f"folds.json says n_splits={n_splits}); {rebuild}")


def _make(data: CompetitionData, folds_dir: Path, *args) -> str:
    return f"`{hints.command('folds', *args, input=data.input_dir, folds=folds_dir)}`"


def ensure(data: CompetitionData, folds_dir: Path, n_splits: int = DEFAULT_N_SPLITS, seed: int = DEFAULT_SEED,
           force: bool = False) -> np.ndarray:
    """Make folds unless up-to-date ones exist; only making them takes the lock, so a read-only folder is fine."""
    folds_dir = Path(folds_dir)
    if force or not (folds_dir / "folds.json").exists():
        with lock.hold(folds_dir, wait=True):
            remove_stale_tmp(folds_dir)
            return _ensure(data, folds_dir, n_splits, seed, force)
    return _ensure(data, folds_dir, n_splits, seed, force)


def _ensure(data: CompetitionData, folds_dir: Path, n_splits: int, seed: int, force: bool) -> np.ndarray:
    if (folds_dir / "folds.json").exists() and not force:
        m = meta(folds_dir)
        fold = load(data, folds_dir)  # raises on stale data
        if (m.get("n_splits"), m.get("seed")) != (n_splits, seed):
            asked = [*(["--n-splits", n_splits] if n_splits != DEFAULT_N_SPLITS else []),
                     *(["--fold-seed", seed] if seed != DEFAULT_SEED else [])]
            raise UserError(f"{folds_dir / 'folds.csv'} has n_splits={m.get('n_splits')} seed={m.get('seed')}, "
                            f"not n_splits={n_splits} seed={seed}; rebuild with "
                            f"{_make(data, folds_dir, *asked, '--force')}")
        log.info(f"folds up to date: {folds_dir / 'folds.csv'} ({n_splits} folds, seed {seed})")
        return fold
    path = write(data, folds_dir, n_splits, seed)
    log.info(f"wrote {path} ({n_splits} folds, seed {seed}, {len(data.train)} rows)")
    return load(data, folds_dir)


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n-splits", type=int, default=DEFAULT_N_SPLITS, help="number of folds (default 5)")
    p.add_argument("--fold-seed", type=int, default=DEFAULT_SEED, help="shuffle seed of the folds (default 42)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m solution folds", parents=[common_parser()],
                                description="Make multilabel-stratified folds into folds/folds.csv (once).")
    add_args(p)
    p.add_argument("--force", action="store_true", help="rebuild even if folds exist (stale or other settings)")
    args = p.parse_args(argv)
    data, dirs = resolve_data(args)
    fold = ensure(data, dirs.folds, args.n_splits, args.fold_seed, force=args.force)
    counts = np.bincount(fold)
    print(f"folds: {dirs.folds / 'folds.csv'} sizes {counts.tolist()}")
    return 0
