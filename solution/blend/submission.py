"""The submission file: exactly sample_submission's IDs in its order and its columns, 0/1 integers."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from solution import hints
from solution.blend.metrics import binarize
from solution.data import ID
from solution.errors import UserError
from solution.io import read_table, write_csv


def build(sample: pd.DataFrame, labels: list[str], test_ids, probs: np.ndarray, thresholds) -> pd.DataFrame:
    """0/1 predictions in sample_submission's row order, from test probabilities (in `test_ids` order)."""
    pred = pd.DataFrame(binarize(probs, thresholds), columns=labels)
    pred.insert(0, ID, list(test_ids))
    pred = pred.set_index(ID)
    missing = [i for i in sample[ID] if i not in pred.index]
    if missing:
        raise UserError(f"no prediction for {len(missing)} sample_submission ID(s), first {missing[0]!r}")
    sub = pred.loc[sample[ID]].reset_index()
    return sub[[ID, *labels]]


def check(sub: pd.DataFrame, sample: pd.DataFrame, name: str = "submission") -> None:
    """Raise a UserError naming the first problem: columns, row count, IDs and their order, values."""
    if list(sub.columns) != list(sample.columns):
        raise UserError(f"{name}: columns {list(sub.columns)} differ from sample_submission's {list(sample.columns)}")
    if len(sub) != len(sample):
        raise UserError(f"{name}: {len(sub)} rows, sample_submission has {len(sample)}")
    ids = sub[ID].astype(str).to_numpy()
    want = sample[ID].astype(str).to_numpy()
    if (ids != want).any():
        i = int(np.flatnonzero(ids != want)[0])
        what = "order differs" if set(ids) == set(want) else "IDs differ"
        raise UserError(f"{name}, row {i + 2}, column {ID!r}: {what} from sample_submission "
                        f"(got {ids[i]!r}, expected {want[i]!r})")
    for col in sample.columns[1:]:
        vals = sub[col]
        ok = vals.astype(str).str.strip().isin(["0", "1"])
        if not ok.all():
            i = int(np.flatnonzero(~ok.to_numpy())[0])
            raise UserError(f"{name}, row {i + 2}, column {col!r}: value {vals.iloc[i]!r} is not 0 or 1")


def read(path: Path, dirs=None) -> pd.DataFrame:
    """`dirs`: the run's locations, for the hint that makes a missing file."""
    path = Path(path)
    if not path.exists():
        make = hints.command("blend", dirs=dirs) if dirs else hints.command("blend", output=path.parent)
        raise UserError(f"{path}: file not found; make it with `{make}`")
    return read_table(path)


def write(sub: pd.DataFrame, sample: pd.DataFrame, path: Path) -> Path:
    """Check, then write atomically: a bad submission is never written."""
    check(sub, sample, str(path))
    sub = sub.copy()
    for col in sample.columns[1:]:
        sub[col] = sub[col].astype(int)
    return write_csv(sub, path)
