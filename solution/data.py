"""The competition files, read and validated; the labels are sample_submission.csv's emotion columns."""
from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from solution import log
from solution.errors import UserError, where
from solution.io import read_table, read_text

ID, TEXT = "ID", "Tweet"
FILES = ("train.csv", "test.csv", "sample_submission.csv")
DEFAULT_LABELS = [
    "anger", "anticipation", "disgust", "fear", "joy", "love",
    "optimism", "pessimism", "sadness", "surprise", "trust",
]


@dataclass
class CompetitionData:
    train: pd.DataFrame  # ID, Tweet, one int8 column per label, in `labels` order
    test: pd.DataFrame  # ID, Tweet
    sample: pd.DataFrame  # ID + labels, sample_submission's order
    labels: list[str]
    input_dir: Path

    @property
    def y(self) -> np.ndarray:
        return self.train[self.labels].to_numpy(dtype=np.int8)

    def fingerprint(self) -> str:
        """Folds and trained models record it to detect stale state."""
        h = hashlib.sha256()
        h.update(",".join(self.labels).encode())
        h.update("\n".join(self.train[ID]).encode())
        h.update(np.ascontiguousarray(self.y).tobytes())
        return h.hexdigest()[:16]


def read_csv(path: Path, required: list[str], label_cols: list[str] | None = None) -> pd.DataFrame:
    """Read one CSV, checking the header and the IDs."""
    return _checked(read_columns(path, required), Path(path), required, label_cols)


def read_columns(path, required) -> pd.DataFrame:
    """io.read_table, whose refusal also names a required column the file has in another case."""
    try:
        return read_table(path, required)
    except UserError as e:
        hint = _case_hint(path, required)
        if hint:
            raise UserError(f"{e} ({hint})") from None
        raise


def _case_hint(path, required) -> str:
    """"found 'Anger': columns are case-sensitive" for required columns the header has only in another case."""
    try:
        header = next((row for row in csv.reader(io.StringIO(read_text(path))) if row), [])
    except (UserError, OSError, csv.Error):
        return ""
    header = [h.strip() for h in header]
    by_lower = {h.lower(): h for h in header}
    found = [by_lower[c.lower()] for c in required if c not in header and c.lower() in by_lower]
    return f"found {', '.join(map(repr, found))}: columns are case-sensitive" if found else ""


def _checked(df: pd.DataFrame, path: Path, required: list[str], label_cols: list[str] | None) -> pd.DataFrame:
    header = list(df.columns)
    extra = [c for c in header if c not in required]
    if extra:
        log.warn(f"{path}: ignoring extra column(s) {', '.join(extra)}")
    if len(df) == 0:
        raise UserError(f"{path}: has a header but no rows")
    df = df[required].copy()
    _check_ids(df, path)
    for col in label_cols or []:
        vals = df[col].str.strip()
        bad = ~vals.isin(["0", "1"])
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            shown = repr(df[col].iloc[i]) if df[col].iloc[i] != "" else "a blank"
            raise UserError(f"{where(path, i + 2, col)}: label must be 0 or 1, got {shown} "
                            f"(ID {df[ID].iloc[i]!r}; {int(bad.sum())} bad value(s) in this column)")
        df[col] = vals.astype(np.int8)
    return df


def _check_ids(df: pd.DataFrame, path: Path) -> None:
    """IDs stay byte for byte as written: the submission must match sample_submission's."""
    ids = df[ID]
    blank = ids.str.strip() == ""
    if blank.any():
        i = int(np.flatnonzero(blank.to_numpy())[0])
        raise UserError(f"{where(path, i + 2, ID)}: blank ID")
    dup = ids.duplicated(keep=False)
    if dup.any():
        rows = np.flatnonzero(dup.to_numpy())
        first = ids.iloc[rows[0]]
        same = [int(r) + 2 for r in rows if ids.iloc[r] == first]
        raise UserError(f"{where(path, same[1], ID)}: duplicate ID {first!r} (rows {', '.join(map(str, same[:5]))}); "
                        f"{int(ids.duplicated().sum())} duplicate(s) in all")


def read_sample(path: Path) -> tuple[pd.DataFrame, list[str]]:
    df = read_columns(path, [ID])
    labels = [h for h in df.columns if h != ID]
    if not labels:
        raise UserError(f"{where(path, 1)}: no label columns besides {ID}")
    return _checked(df, Path(path), [ID, *labels], None), labels


def load(input_dir: str | Path) -> CompetitionData:
    input_dir = Path(input_dir)
    for name in FILES:
        if not (input_dir / name).exists():
            raise UserError(f"{input_dir / name}: file not found (see input/README.md for how to get the "
                            f"competition files)")
    sample, labels = read_sample(input_dir / "sample_submission.csv")
    train = read_csv(input_dir / "train.csv", [ID, TEXT, *labels], label_cols=labels)
    test = read_csv(input_dir / "test.csv", [ID, TEXT])
    _check_same_ids(test, sample, input_dir / "test.csv", input_dir / "sample_submission.csv")
    _warn_constant_labels(train, labels, input_dir / "train.csv")
    for name, df in (("train.csv", train), ("test.csv", test)):
        empty = df[TEXT].str.strip() == ""
        if empty.any():
            log.warn(f"{input_dir / name}: {int(empty.sum())} row(s) with empty tweet text are kept "
                     f"(first: row {int(np.flatnonzero(empty.to_numpy())[0]) + 2})")
    return CompetitionData(train=train.reset_index(drop=True), test=test.reset_index(drop=True),
                           sample=sample.reset_index(drop=True), labels=labels, input_dir=input_dir)


def _warn_constant_labels(train: pd.DataFrame, labels: list[str], path: Path) -> None:
    """A label train never shows (or always shows) cannot be learned: say so once, where the data is read."""
    y = train[labels]
    groups = [(cols, how) for cols, how in (([c for c in labels if not y[c].any()], "never"),
                                            ([c for c in labels if y[c].all()], "always")) if cols]
    n = sum(len(cols) for cols, _ in groups)
    if n:
        them = "it" if n == 1 else "them"
        what = " and ".join(f"label{'' if len(cols) == 1 else 's'} {', '.join(map(repr, cols))} "
                            f"{'is' if len(cols) == 1 else 'are'} {how} positive" for cols, how in groups)
        log.warn(f"{path}: {what} in its {len(train)} rows: no model can learn {them} (check the file, or expect "
                 f"{them} predicted as train has {them})")


def _check_same_ids(test: pd.DataFrame, sample: pd.DataFrame, test_path: Path, sample_path: Path) -> None:
    t, s = set(test[ID]), set(sample[ID])
    if t == s:
        return
    only_t, only_s = sorted(t - s), sorted(s - t)
    parts = []
    if only_t:
        i = int(np.flatnonzero(test[ID].isin(only_t).to_numpy())[0])
        parts.append(f"{len(only_t)} ID(s) in {test_path} are not in {sample_path} "
                     f"(first: {only_t[0]!r} at row {i + 2})")
    if only_s:
        i = int(np.flatnonzero(sample[ID].isin(only_s).to_numpy())[0])
        parts.append(f"{len(only_s)} ID(s) in {sample_path} are not in {test_path} "
                     f"(first: {only_s[0]!r} at row {i + 2})")
    raise UserError("test IDs differ from sample_submission IDs: " + "; ".join(parts))
