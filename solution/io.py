"""The kit's files: atomic writes and the stale-temp sweep, the one CSV reader, JSON records checked for their
shape, and the probability tables."""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import re
import shutil
import tempfile
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from solution import lock
from solution.errors import UserError, where

TMP_SUFFIX = ".tmp"
# atomic_path's names: "." + the file's name + mkstemp's 8 random characters + TMP_SUFFIX
TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}" + re.escape(TMP_SUFFIX))
PARTIAL_SUFFIX = ".partial"  # a model folder being saved (models/hf.py)


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


def remove_stale_tmp(folder, recursive: bool = True, lock_of=None) -> list[Path]:
    """Delete the temp files and partial folders a killed writer left in `folder` (and below it if recursive).

    Only the kit's own names, and only under the lock of `lock_of` (default `folder`) that every writer there
    holds: no file of a run still alive looks stale."""
    folder = Path(folder)
    if not lock.held(lock_of or folder):
        raise RuntimeError(f"remove_stale_tmp({folder}) without holding the lock of {lock_of or folder}")
    if not folder.is_dir():
        return []
    found = folder.rglob("*") if recursive else folder.iterdir()
    stale = sorted(p for p in found if is_temp(p))
    for p in stale:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return stale


def is_temp(path: Path) -> bool:
    """atomic_path's temp file, or a model folder being saved."""
    if TEMP_NAME.fullmatch(path.name):
        return True
    return path.name.endswith(PARTIAL_SUFFIX) and path.is_dir() and not path.is_symlink()


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


# --- records the kit wrote, read back: checked for their shape, not only parsed -------------------

@dataclasses.dataclass(frozen=True)
class Kind:
    words: str  # what the error says the field should be
    ok: Callable[[object], bool]
    each: "Kind | None" = None  # a container's items: the error names the first bad one


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


STRING = Kind("a string", lambda v: isinstance(v, str))
OBJECT = Kind("an object", lambda v: isinstance(v, dict))
FINITE = Kind("a finite number", _finite)
COUNT = Kind("a whole number above 0", lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0)
SECONDS = Kind("a finite number >= 0", lambda v: _finite(v) and v >= 0)
STRINGS = Kind("a list of strings", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), STRING)
ROWS = Kind("a list of objects", lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v), OBJECT)
NUMBERS = Kind("an object of finite numbers", lambda v: isinstance(v, dict) and all(map(_finite, v.values())),
               FINITE)


@dataclasses.dataclass(frozen=True)
class Record:
    required: dict  # field -> Kind
    optional: dict = dataclasses.field(default_factory=dict)  # checked where present and not null


CONFIG_JSON = Record({"name": STRING, "config": OBJECT, "config_fingerprint": STRING, "folds": OBJECT,
                      "labels": STRINGS})
DONE_JSON = Record({"config_fingerprint": STRING})
METRICS_JSON = Record({"config_fingerprint": STRING, "n_train": COUNT, "wall_time_s": SECONDS},
                      {"once_s": SECONDS, "machine": STRING, "at_tuned_thresholds": OBJECT})
# which fields a report needs depends on its method and its reader: predict.read_blend says which are missing
REPORT_JSON = Record({}, {"models": STRINGS, "thresholds": NUMBERS, "labels": STRINGS, "weights": NUMBERS,
                          "stacker": OBJECT, "fold_average": STRING, "min_one_label": OBJECT, "weights_info": OBJECT,
                          "scores": OBJECT, "submission_sha256": STRING, "run_models": ROWS})


def read_checked(path, record: Record) -> dict:
    """A JSON object the kit wrote, each field of `record` of its kind; anything else is one UserError naming
    the file and the field."""
    obj = read_json(path)
    for key, kind in {**record.required, **record.optional}.items():
        if key not in record.required and obj.get(key) is None:
            continue
        if key not in obj:
            raise UserError(f"{path}: no {key!r} field; not a record the kit wrote")
        if not kind.ok(obj[key]):
            name, value, words = _first_bad(key, obj[key], kind)
            shown = json.dumps(value, default=str)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise UserError(f"{path}: {name} is {shown}, not {words}")
    return obj


def _first_bad(key: str, value, kind: Kind) -> tuple[str, object, str]:
    """(name, value, expected) of what breaks `kind`: the container, or its first bad item."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    if kind.each is not None:
        for k, v in items:
            if not kind.each.ok(v):
                return f"{key}[{k!r}]", v, kind.each.words
    return repr(key), value, kind.words


# --- the one CSV reader ----------------------------------------------------------------------------

class NotText(ValueError):
    """Bytes that are not UTF-8 text: the first bad byte (None: a NUL, binary data), its offset and line."""

    def __init__(self, byte: int | None, offset: int, line: int):
        super().__init__(byte, offset, line)
        self.byte, self.offset, self.line = byte, offset, line


def decode_text(raw: bytes) -> str:
    """UTF-8 with a BOM dropped; NotText for bytes that are not UTF-8 or hold a NUL."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise NotText(raw[e.start], e.start, raw.count(b"\n", 0, e.start) + 1) from None
    if "\x00" in text:
        at = raw.index(b"\x00")
        raise NotText(None, at, raw.count(b"\n", 0, at) + 1)
    return text


def read_text(path) -> str:
    """UTF-8 without a BOM; refuses a missing, non-UTF-8, binary (NUL bytes) or empty file."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: file not found")
    raw = path.read_bytes()  # a folder: IsADirectoryError, worded by errors.os_error
    try:
        text = decode_text(raw)
    except NotText as e:
        what = (f"not UTF-8 (byte 0x{e.byte:02x} at offset {e.offset}); save the file as UTF-8" if e.byte is not None
                else "a NUL byte (binary data); save the file as UTF-8 text")
        raise UserError(f"{where(path, e.line)}: {what}") from None
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
