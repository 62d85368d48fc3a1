"""The competition files: read, validate, and the label list.

Label columns are the emotion columns of sample_submission.csv (anger ... trust in the competition);
train.csv must have the same ones. Every validation failure is a UserError naming the file and,
where there is one, the row (CSV record number as a spreadsheet shows it, header = row 1) and column.
"""
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
        """Hash of train IDs and labels: folds and trained models record it to detect stale state."""
        h = hashlib.sha256()
        h.update(",".join(self.labels).encode())
        h.update("\n".join(self.train[ID]).encode())
        h.update(np.ascontiguousarray(self.y).tobytes())
        return h.hexdigest()[:16]


def _read_text(path: Path) -> str:
    if not path.exists():
        raise UserError(f"{path}: file not found (see input/README.md for how to get the competition files)")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")  # with or without BOM
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise UserError(f"{where(path, line)}: not UTF-8 (byte 0x{raw[e.start]:02x} at offset {e.start}); "
                        "save the file as UTF-8") from None
    if not text.strip():
        raise UserError(f"{path}: file is empty")
    return text


def read_csv(path: Path, required: list[str], label_cols: list[str] | None = None) -> pd.DataFrame:
    """Read one CSV as strings, checking the header: required columns present, none duplicated."""
    text = _read_text(path)
    header = next(csv.reader(io.StringIO(text)))
    header = [h.strip() for h in header]
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise UserError(f"{where(path, 1)}: duplicated column(s) {', '.join(dup)}")
    missing = [c for c in required if c not in header]
    if missing:
        raise UserError(f"{where(path, 1)}: missing column(s) {', '.join(missing)}{_delimiter_hint(header)}")
    extra = [c for c in header if c not in required]
    if extra:
        log.warn(f"{path}: ignoring extra column(s) {', '.join(extra)}")
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, ValueError) as e:
        raise UserError(f"{path}: cannot parse as CSV: {str(e).splitlines()[0]}") from None
    df.columns = [c.strip() for c in df.columns]
    if len(df) == 0:
        raise UserError(f"{path}: has a header but no rows")
    df = df[required].copy()
    _check_ids(df, path)
    if label_cols:
        for col in label_cols:
            vals = df[col].str.strip()
            bad = ~vals.isin(["0", "1"])
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                shown = repr(df[col].iloc[i]) if df[col].iloc[i] != "" else "a blank"
                raise UserError(f"{where(path, i + 2, col)}: label must be 0 or 1, got {shown} "
                                f"(ID {df[ID].iloc[i]!r}; {int(bad.sum())} bad value(s) in this column)")
            df[col] = vals.astype(np.int8)
    return df


def _delimiter_hint(header: list[str]) -> str:
    if len(header) == 1 and any(d in header[0] for d in ";\t|"):
        return f" (the header is one column {header[0][:60]!r}: is the file comma-separated?)"
    return ""


def _check_ids(df: pd.DataFrame, path: Path) -> None:
    ids = df[ID].str.strip()
    blank = ids == ""
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
    df[ID] = ids


def read_sample(path: Path) -> tuple[pd.DataFrame, list[str]]:
    text = _read_text(path)
    header = [h.strip() for h in next(csv.reader(io.StringIO(text)))]
    if ID not in header:
        raise UserError(f"{where(path, 1)}: missing column(s) {ID}{_delimiter_hint(header)}")
    labels = [h for h in header if h != ID]
    if not labels:
        raise UserError(f"{where(path, 1)}: no label columns besides {ID}")
    df = read_csv(path, [ID, *labels])
    return df, labels


def load(input_dir: str | Path) -> CompetitionData:
    """Read and validate train.csv, test.csv and sample_submission.csv from `input_dir`."""
    input_dir = Path(input_dir)
    sample, labels = read_sample(input_dir / "sample_submission.csv")
    train = read_csv(input_dir / "train.csv", [ID, TEXT, *labels], label_cols=labels)
    test = read_csv(input_dir / "test.csv", [ID, TEXT])
    _check_same_ids(test, sample, input_dir / "test.csv", input_dir / "sample_submission.csv")
    for name, df in (("train.csv", train), ("test.csv", test)):
        empty = df[TEXT].str.strip() == ""
        if empty.any():
            log.warn(f"{input_dir / name}: {int(empty.sum())} row(s) with empty tweet text are kept "
                     f"(first: row {int(np.flatnonzero(empty.to_numpy())[0]) + 2})")
    return CompetitionData(train=train.reset_index(drop=True), test=test.reset_index(drop=True),
                           sample=sample.reset_index(drop=True), labels=labels, input_dir=input_dir)


def _check_same_ids(test: pd.DataFrame, sample: pd.DataFrame, test_path: Path, sample_path: Path) -> None:
    t, s = set(test[ID]), set(sample[ID])
    if t == s:
        return
    only_t, only_s = sorted(t - s), sorted(s - t)
    parts = []
    if only_t:
        i = int(np.flatnonzero(test[ID].isin(only_t).to_numpy())[0])
        parts.append(f"{len(only_t)} ID(s) in {test_path} are not in {sample_path} (first: {only_t[0]!r} at row {i + 2})")
    if only_s:
        i = int(np.flatnonzero(sample[ID].isin(only_s).to_numpy())[0])
        parts.append(f"{len(only_s)} ID(s) in {sample_path} are not in {test_path} (first: {only_s[0]!r} at row {i + 2})")
    raise UserError("test IDs differ from sample_submission IDs: " + "; ".join(parts))
