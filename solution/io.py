"""The kit's files: atomic writes, the one CSV reader, JSON, and the probability tables."""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np
import pandas as pd

from solution.errors import UserError, where

TMP_SUFFIX = ".tmp"


@contextmanager
def atomic_path(path: str | os.PathLike):
    """A temp path beside `path`, renamed over it if the block succeeds: a killed run leaves no half-written file."""
    path, tmp = Path(path), None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
        os.close(fd)
        yield Path(tmp)
        _commit(Path(tmp), path)
    except OSError as e:
        if e.filename is None or str(e.filename) == str(tmp):
            e.filename = str(path)
        raise
    finally:
        if tmp is not None:
            with suppress(OSError):
                Path(tmp).unlink(missing_ok=True)


def _commit(tmp: Path, path: Path) -> None:
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)


def _umask() -> int:
    """Read from /proc where possible: setting the umask to read it races threads."""
    with suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def usual_mode(folder) -> None:
    """Give files below `folder` the mode a plain open() would: libraries' temp files come out 0600."""
    mode = 0o666 & ~_umask()
    for p in Path(folder).rglob("*"):
        if p.is_file() and not p.is_symlink():
            os.chmod(p, mode)


def remove_stale_tmp(folder) -> list[Path]:
    """Delete what killed writers left below `folder`; hold its lock so no file in flight looks stale."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = sorted({*folder.rglob(f".*{TMP_SUFFIX}"), *folder.rglob("*.partial")})
    for p in stale:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return stale


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


def write_bytes(blob: bytes, path) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(blob)
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
    """A JSON object the kit wrote; anything else is refused."""
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON (line {e.lineno}): {e.msg}") from None
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not valid JSON (not UTF-8: byte 0x{e.object[e.start]:02x} "
                        f"at offset {e.start})") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path}: not valid JSON for the kit (a {type(obj).__name__}, not an object)")
    return obj


# --- the one CSV reader ----------------------------------------------------------------------------

def read_text(path) -> str:
    """UTF-8 without a BOM; refuses a missing, non-UTF-8 or empty file."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: file not found")
    raw = path.read_bytes()  # a folder: IsADirectoryError, worded by errors.os_error
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise UserError(f"{where(path, line)}: not UTF-8 (byte 0x{raw[e.start]:02x} at offset {e.start}); "
                        "save the file as UTF-8") from None
    if not text.strip():
        raise UserError(f"{path}: file is empty")
    return text


def read_table(path, required=()) -> pd.DataFrame:
    """Every CSV the kit reads, every cell a string: an ID such as NA or 007 stays itself."""
    path = Path(path)
    text = read_text(path)
    header = next((row for row in csv.reader(io.StringIO(text)) if row), [])
    header = [h.strip() for h in header]
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise UserError(f"{where(path, 1)}: duplicated column(s) {', '.join(dup)}")
    missing = [c for c in required if c not in header]
    if missing:
        raise UserError(f"{where(path, 1)}: missing column(s) {', '.join(missing)}{_delimiter_hint(header)}")
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, ValueError) as e:
        raise UserError(f"{path}: cannot parse as CSV: {str(e).splitlines()[0]}") from None
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _delimiter_hint(header: list[str]) -> str:
    if len(header) == 1 and any(d in header[0] for d in ";\t|"):
        return f" (the header is one column {header[0][:60]!r}: is the file comma-separated?)"
    return ""


def prob_table(ids, probs: np.ndarray, labels: list[str]) -> pd.DataFrame:
    """ID, then one float64 probability per label."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape != (len(ids), len(labels)):
        raise ValueError(f"probabilities of shape {probs.shape} for {len(ids)} IDs and {len(labels)} labels")
    df = pd.DataFrame(probs, columns=labels)
    df.insert(0, "ID", list(ids))
    return df


def read_prob_table(path, labels: list[str]) -> pd.DataFrame:
    """Refuses a missing column or a value outside [0, 1]."""
    path = Path(path)
    df = read_table(path, ["ID", *labels])
    cells = df[labels]
    try:
        values = cells.to_numpy(dtype=np.float64)  # Python's float(): exact for the repr-exact floats written
    except ValueError:
        values = cells.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values) | (values < 0) | (values > 1)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise UserError(f"{where(path, r + 2, labels[c])}: probability {cells.iat[r, c]!r} not in [0, 1]")
    out = pd.DataFrame(values, columns=labels)
    out.insert(0, "ID", df["ID"].to_numpy(dtype=object))
    return out
