"""Atomic writes and the tidy probability tables (ID + one full-precision probability per label)."""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from solution.errors import UserError


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temp path beside `path`; rename it over `path` only if the block succeeds.

    A killed run leaves at most a `.tmp` file, never a half-written artifact under the real name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_csv(df: pd.DataFrame, path) -> Path:
    with atomic_path(path) as tmp:
        # repr-exact floats: probabilities are saved at full precision, never rounded
        df.to_csv(tmp, index=False, float_format="%.17g", lineterminator="\n")
    return Path(path)


def write_json(obj, path) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n", encoding="utf-8")
    return Path(path)


def write_text(text: str, path) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_json(path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON (line {e.lineno}): {e.msg}") from None


def prob_table(ids, probs: np.ndarray, labels: list[str]) -> pd.DataFrame:
    """The tidy form every model writes: ID, then one float64 probability per label."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape != (len(ids), len(labels)):
        raise ValueError(f"probabilities of shape {probs.shape} for {len(ids)} IDs and {len(labels)} labels")
    df = pd.DataFrame(probs, columns=labels)
    df.insert(0, "ID", list(ids))
    return df


def read_prob_table(path, labels: list[str]) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: file not found")
    # round_trip: the default parser can be 1 ulp off for 17-digit floats (seen on the GPU image's pandas)
    df = pd.read_csv(path, dtype={"ID": str}, encoding="utf-8", float_precision="round_trip")
    missing = [c for c in ["ID", *labels] if c not in df.columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}")
    values = df[labels].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values) | (values < 0) | (values > 1)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise UserError(f"{path}, row {r + 2}, column {labels[c]!r}: probability {values[r, c]!r} not in [0, 1]")
    return df[["ID", *labels]]
