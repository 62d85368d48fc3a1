"""Reliability: what goes wrong in real use, driven through the real CLI (solution.cli.main), in-process.

One table, CASES: (id, mutate, argv, expected exit code, expected message fragment). Each case starts from
a freshly written valid tiny input dir, lets `mutate` break it (or build some state first, e.g. folds and
a trained model, or make the write helper fail as a full disk or a read-only file system would), then
runs one command and checks, besides the code and the message:
  - a failure is one line on stderr starting with "error:", with no traceback;
  - nothing in the input dir changed (sha256 of every file before and after);
  - no half-written output: no *.tmp / *.partial under the output and folds dirs, no submission.csv when
    the run failed, and never a submission.csv without the blend report that describes it.
Then scenario tests: a training run SIGKILLed in the middle of a fold and rerun gives byte-identical
OOF to an uninterrupted run; a (fake) kaggle key never shows up in anything the kit prints or writes; IDs
that pandas reads as missing go through every reader; a damaged trained model is named by predict; every
numeric setting refuses NaN, infinities and out-of-range values; output files get the usual mode; run.sh
takes user paths against the caller's folder; and, as root, a real full tmpfs and read-only bind mount.
Two processes on one model folder: tests/test_lock.py.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import pytest
from conftest import LABELS, make_input_dir

from solution import cli

REPO = Path(__file__).resolve().parents[1]


# --- the harness -----------------------------------------------------------------------------------

@dataclass
class Env:
    root: Path
    input: Path
    folds: Path
    output: Path
    mp: pytest.MonkeyPatch | None = None  # for faults injected into the kit (undone after the test)

    def fmt(self, argv) -> list[str]:
        m = {"{in}": self.input, "{folds}": self.folds, "{out}": self.output, "{root}": self.root}
        out = []
        for a in argv:
            for k, v in m.items():
                a = a.replace(k, str(v))
            out.append(a)
        return out

    def cli(self, *argv, code: int = 0) -> None:
        """A setup step that must end with `code` (its output is discarded by the harness)."""
        got = cli.main(self.fmt(argv))
        assert got == code, f"setup step {argv} exited {got}, expected {code}"

    # file helpers for mutators
    def path(self, name: str) -> Path:
        return self.input / name

    def frame(self, name: str) -> pd.DataFrame:
        return pd.read_csv(self.path(name), dtype=str, keep_default_na=False)

    def write_frame(self, name: str, df: pd.DataFrame, **kw) -> None:
        self.path(name).write_bytes(df.to_csv(index=False, lineterminator="\n", **kw).encode("utf-8"))

    def text(self, name: str) -> str:
        return self.path(name).read_text(encoding="utf-8")

    def write_text(self, name: str, text: str) -> None:
        self.path(name).write_bytes(text.encode("utf-8"))


COMMON = ("--input", "{in}", "--folds-dir", "{folds}", "--output", "{out}")
RUN = ("run", "--models", "tfidf-lr", *COMMON)
FOLDS = ("folds", *COMMON)
TRAIN = ("train", "tfidf-lr", *COMMON)
BLEND = ("blend", *COMMON, "--no-plots")
PREDICT = ("predict", "--output", "{out}", "a tweet")
SUBMIT = ("submit", *COMMON, "--dry-run")


def sha_tree(directory: Path) -> dict:
    if not directory.exists():
        return {}
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def leftovers(*dirs: Path) -> list[str]:
    """Half-written artifacts: temp files and partial model folders."""
    found = []
    for d in dirs:
        if d.exists():
            found += [str(p) for p in d.rglob("*") if p.name.endswith(".tmp") or ".partial" in p.name]
    return found


# --- mutators: files -------------------------------------------------------------------------------

def rm(name):
    return lambda env: env.path(name).unlink()


def raw(name, data: bytes):
    return lambda env: env.path(name).write_bytes(data)


def header_only(name):
    return lambda env: env.write_text(name, env.text(name).split("\n", 1)[0] + "\n")


def delimiter(name, sep):
    return lambda env: env.write_frame(name, env.frame(name), sep=sep)


def latin1_byte(env):
    """One Latin-1 'é' in data row 3 of train.csv (line 5)."""
    lines = env.path("train.csv").read_bytes().split(b"\n")
    assert lines[4].startswith(b"tr-0003,")
    lines[4] = lines[4].replace(b"tr-0003,", b"tr-0003,caf\xe9 ", 1)
    env.path("train.csv").write_bytes(b"\n".join(lines))


def bom(env):
    for name in ("train.csv", "test.csv", "sample_submission.csv"):
        env.path(name).write_bytes(b"\xef\xbb\xbf" + env.path(name).read_bytes())


def crlf(env):
    for name in ("train.csv", "test.csv", "sample_submission.csv"):
        df = env.frame(name)
        if "Tweet" in df:  # CRLF everywhere, inside quoted tweets too
            df["Tweet"] = df["Tweet"].str.replace("\n", "\r\n")
        env.path(name).write_bytes(df.to_csv(index=False, lineterminator="\r\n").encode("utf-8"))


def set_tweets(value_fn, names=("train.csv", "test.csv"), rows=None):
    def f(env):
        for name in names:
            df = env.frame(name)
            for i in rows if rows is not None else range(len(df)):
                df.loc[i, "Tweet"] = value_fn(i, df.loc[i, "Tweet"])
            env.write_frame(name, df)
    return f


HUGE = set_tweets(lambda i, t: (t + " ") * (10_000 // (len(t) + 1)) + "x" * (10_000 % (len(t) + 1)), rows=[0, 3, 7])
EMOJI = set_tweets(lambda i, t: ["😂😂😂", "❤️🔥", "😡", "🙏✨"][i % 4], rows=range(0, 20, 2))
WHITESPACE = set_tweets(lambda i, t: ["   ", "\t", " \t  "][i % 3], rows=[1, 5, 9])
QUOTED_NL = set_tweets(lambda i, t: f'he said "stop,\nnow"\n\n{t}\n', rows=range(0, 20, 3))


# --- mutators: columns and values ------------------------------------------------------------------

def frame_edit(name, fn):
    def f(env):
        env.write_frame(name, fn(env.frame(name)))
    return f


def set_cell(name, row, col, value):
    def fn(df):
        df.loc[row, col] = value
        return df
    return frame_edit(name, fn)


def dup_header(env):
    env.write_text("train.csv", env.text("train.csv").replace("anger,anticipation", "anger,anger", 1))


def extra_columns(env):
    for name in ("train.csv", "test.csv"):
        df = env.frame(name)
        df.insert(1, "source", "twitter")
        df["lang"] = "en"
        env.write_frame(name, df)


def labels_reordered(env):
    df = env.frame("train.csv")
    env.write_frame("train.csv", df[["Tweet", *reversed(LABELS), "ID"]])


def dup_id(name):
    def fn(df):
        df.loc[5, "ID"] = df.loc[2, "ID"]
        return df
    return frame_edit(name, fn)


# --- mutators: state -------------------------------------------------------------------------------

def steps(*fns):
    def f(env):
        for fn in fns:
            fn(env)
    return f


def do(*argv):
    return lambda env: env.cli(*argv)


def flip_label(env):
    df = env.frame("train.csv")
    df.loc[3, "joy"] = "1" if df.loc[3, "joy"] == "0" else "0"
    env.write_frame("train.csv", df)


def rewrite(rel, fn):
    """Rewrite a file under the output/folds dirs: rel is '{out}/...' or '{folds}/...'."""
    def f(env):
        base, rest = rel.split("/", 1)
        p = (env.output if base == "{out}" else env.folds) / rest
        p.write_text(fn(p.read_text(encoding="utf-8")), encoding="utf-8")
    return f


def fails(*argv):
    return lambda env: env.cli(*argv, code=2)


def write_bytes(rel, data: bytes):
    """Write a file under the output/folds dirs: rel is '{out}/...' or '{folds}/...'."""
    def f(env):
        p = Path(env.fmt([rel])[0])
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return f


def edit_json(rel, fn):
    """Rewrite a JSON file under the output/folds dirs (rel: '{out}/...'): fn(object) -> object, NaN allowed."""
    def f(env):
        p = Path(env.fmt([rel])[0])
        p.write_text(json.dumps(fn(json.loads(p.read_text(encoding="utf-8")))), encoding="utf-8")
    return f


def put(key, value):
    """A JSON edit: obj[key] = value (key 'a.b' reaches into obj['a'])."""
    def fn(obj):
        *path, last = key.split(".")
        inner = obj
        for k in path:
            inner = inner[k]
        inner[last] = value
        return obj
    return fn


def oof_cell(value):
    def fn(text):
        lines = text.split("\n")
        cells = lines[1].split(",")
        cells[3] = value
        lines[1] = ",".join(cells)
        return "\n".join(lines)
    return fn


def fault(err: int, under: str = "{out}", name: str = ""):
    """The write helper (io.atomic_path) fails with OSError `err` for each file written below `under` (whose
    name contains `name`), as on a full disk (ENOSPC) or a read-only file system (EROFS)."""
    def f(env):
        from solution import io as io_mod

        base, real = Path(env.fmt([under])[0]).resolve(), io_mod._commit

        def commit(tmp, path):
            if Path(path).resolve().is_relative_to(base) and name in Path(path).name:
                raise OSError(err, os.strerror(err))
            real(tmp, path)
        env.mp.setattr(io_mod, "_commit", commit)
    return f


def make_file(where):
    def f(env):
        p = Path(env.fmt([where])[0])
        if p.is_dir():
            shutil.rmtree(p)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("not a folder\n")
    return f


def make_folder(rel):
    def f(env):
        p = Path(env.fmt([rel])[0])
        p.unlink(missing_ok=True)
        p.mkdir(parents=True)
    return f


# IDs that pandas' read_csv turns into NaN (or a float) unless told to read them as written
NA_IDS = ["NA", "null", "NaN", "None", "N/A", "#N/A", "-nan", "n/a", "NULL", "1e5", "007", "1.0"]


def na_ids(env):
    for name, ids in (("train.csv", NA_IDS), ("test.csv", NA_IDS[:4]), ("sample_submission.csv", NA_IDS[:4])):
        df = env.frame(name)
        df.loc[: len(ids) - 1, "ID"] = ids
        env.write_frame(name, df)


def oof_out_of_range(text):
    lines = text.split("\n")
    cells = lines[1].split(",")
    cells[3] = "1.5"
    lines[1] = ",".join(cells)
    return "\n".join(lines)


def spaced_ids(env):
    """IDs with a leading or trailing space, the same in test.csv and sample_submission.csv (and in train.csv)."""
    for name in ("train.csv", "test.csv", "sample_submission.csv"):
        df = env.frame(name)
        df.loc[0, "ID"], df.loc[1, "ID"], df.loc[2, "ID"] = " 0042", df.loc[1, "ID"] + " ", "\t" + df.loc[2, "ID"]
        env.write_frame(name, df)


def rename_columns(name, mapping):
    return frame_edit(name, lambda df: df.rename(columns=mapping))


def move_fold(src: int, dst: int, rows=None):
    """Hand-edit folds.csv: the rows of fold `src` (or only the first `rows` of them) go to fold `dst`."""
    def fn(text):
        lines, moved = text.split("\n"), 0
        for i, line in enumerate(lines[1:], 1):
            if line.endswith(f",{src}") and (rows is None or moved < rows):
                lines[i], moved = line[: -len(str(src))] + str(dst), moved + 1
        return "\n".join(lines)
    return rewrite("{folds}/folds.csv", fn)


def constant(**values):
    return frame_edit("train.csv", lambda df: df.assign(**{k: str(v) for k, v in values.items()}))


# --- checks after a successful run -----------------------------------------------------------------

def read_as_written(path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")


def submission_ok(env):
    sub = read_as_written(env.output / "submission.csv")
    sample = read_as_written(env.input / "sample_submission.csv")
    assert list(sub.columns) == list(sample.columns)
    assert sub["ID"].tolist() == sample["ID"].tolist()  # byte for byte, spaces too
    assert set(sub[LABELS].stack()) <= {"0", "1"}
    oof = read_as_written(env.output / "tfidf-lr" / "oof.csv")
    train = pd.read_csv(env.input / "train.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert len(oof) == len(train)  # no tweet lost or split by quotes, newlines, CR, BOM
    assert oof["ID"].tolist() == train["ID"].tolist()


def folds_ok(env):
    assert len(read_as_written(env.folds / "folds.csv")) == 60


def model_ok(env):
    assert len(read_as_written(env.output / "tfidf-lr" / "oof.csv")) == 60


def rm_out(name):
    return lambda env: (env.output / name).unlink()


def trained(*more):
    """Folds and a trained tfidf-lr, then `more`."""
    return steps(do(*FOLDS), do(*TRAIN), *more)


def blended(*more):
    return trained(do(*BLEND), *more)


FOLD, CONFIG, REPORT = "{out}/tfidf-lr/fold", "{out}/tfidf-lr/config.json", "{out}/blend/report.json"
NAN = float("nan")


# (id, mutate, argv, exit code, message fragment: in the error line, or for code 0 in stderr (a warning));
# {in}, {folds}, {out} and {root} in a fragment are the case's own paths, as in argv
CASES = [
    # files
    ("missing-train", rm("train.csv"), RUN, 2, "train.csv: file not found"),
    ("missing-test", rm("test.csv"), RUN, 2, "test.csv: file not found"),
    ("missing-sample", rm("sample_submission.csv"), RUN, 2, "sample_submission.csv: file not found"),
    ("missing-input-dir", lambda env: shutil.rmtree(env.input), RUN, 2, "--input directory not found"),
    ("empty-train", raw("train.csv", b""), RUN, 2, "train.csv: file is empty"),
    ("empty-test", raw("test.csv", b"\n\n"), RUN, 2, "test.csv: file is empty"),
    ("header-only-train", header_only("train.csv"), RUN, 2, "train.csv: has a header but no rows"),
    ("header-only-sample", header_only("sample_submission.csv"), RUN, 2,
     "sample_submission.csv: has a header but no rows"),
    ("semicolons", delimiter("train.csv", ";"), RUN, 2, "is the file comma-separated?"),
    ("tabs", delimiter("test.csv", "\t"), RUN, 2, "test.csv, row 1: missing column(s) ID, Tweet"),
    ("non-utf8", latin1_byte, RUN, 2, "train.csv, row 5: not UTF-8 (byte 0xe9"),
    ("bom", bom, RUN, 0, None),
    ("crlf", crlf, RUN, 0, None),
    ("huge-tweets", HUGE, RUN, 0, None),
    ("emoji-only-tweets", EMOJI, RUN, 0, None),
    ("whitespace-only-tweets", WHITESPACE, RUN, 0, "3 row(s) with empty tweet text are kept"),
    ("quoted-newlines", QUOTED_NL, RUN, 0, None),
    # columns
    ("missing-label-column", frame_edit("train.csv", lambda df: df.drop(columns=["fear"])), RUN, 2,
     "train.csv, row 1: missing column(s) fear"),
    ("missing-tweet-column", frame_edit("test.csv", lambda df: df.drop(columns=["Tweet"])), RUN, 2,
     "test.csv, row 1: missing column(s) Tweet"),
    ("duplicated-column", dup_header, RUN, 2, "train.csv, row 1: duplicated column(s) anger"),
    ("extra-columns", extra_columns, RUN, 0, "ignoring extra column(s) source, lang"),
    ("labels-other-order", labels_reordered, RUN, 0, None),
    # a column named in another case: the names are case-sensitive, and the line says so
    ("label-column-in-another-case", rename_columns("train.csv", {"anger": "Anger"}), RUN, 2,
     "train.csv, row 1: missing column(s) anger (found 'Anger': columns are case-sensitive)"),
    ("id-and-tweet-in-lower-case", rename_columns("test.csv", {"ID": "id", "Tweet": "tweet"}), RUN, 2,
     "test.csv, row 1: missing column(s) ID, Tweet (found 'id', 'tweet': columns are case-sensitive)"),
    ("sample-id-in-upper-case", rename_columns("sample_submission.csv", {"ID": "Id"}), RUN, 2,
     "sample_submission.csv, row 1: missing column(s) ID (found 'Id': columns are case-sensitive)"),
    ("folds-csv-fold-column-in-another-case", steps(do(*FOLDS), rewrite("{folds}/folds.csv",
                                                                        lambda t: t.replace(",fold", ",Fold", 1))),
     TRAIN, 2, "missing column(s) fold (found 'Fold': columns are case-sensitive); rebuild with"),
    # a label train never (or always) shows: one warning, naming it
    ("label-never-positive", constant(trust=0), RUN, 0, "label 'trust' is never positive in its 60 rows"),
    ("labels-never-and-always-positive", constant(trust=0, fear=0, joy=1), FOLDS, 0,
     "labels 'fear', 'trust' are never positive and label 'joy' is always positive in its 60 rows"),
    # values
    ("duplicate-train-ids", dup_id("train.csv"), RUN, 2, "train.csv, row 7, column 'ID': duplicate ID 'tr-0002'"),
    ("duplicate-test-ids", dup_id("test.csv"), RUN, 2, "test.csv, row 7, column 'ID': duplicate ID 'te-0002'"),
    ("label-2", set_cell("train.csv", 4, "joy", "2"), RUN, 2,
     "train.csv, row 6, column 'joy': label must be 0 or 1, got '2'"),
    ("label-blank", set_cell("train.csv", 8, "sadness", ""), RUN, 2,
     "train.csv, row 10, column 'sadness': label must be 0 or 1, got a blank"),
    ("label-nan", set_cell("train.csv", 0, "trust", "nan"), RUN, 2,
     "train.csv, row 2, column 'trust': label must be 0 or 1, got 'nan'"),
    ("label-float", set_cell("train.csv", 2, "anger", "1.0"), RUN, 2,
     "column 'anger': label must be 0 or 1, got '1.0'"),
    ("test-sample-ids-differ", set_cell("sample_submission.csv", 4, "ID", "te-9999"), RUN, 2,
     "test IDs differ from sample_submission IDs"),
    # IDs are kept byte for byte: a space is part of the ID (submission_ok compares them as written)
    ("ids-with-spaces", spaced_ids, RUN, 0, None),
    ("ids-with-spaces-sample-only", set_cell("sample_submission.csv", 0, "ID", " te-0000"), RUN, 2,
     "1 ID(s) in {in}/test.csv are not in {in}/sample_submission.csv (first: 'te-0000' at row 2); 1 ID(s) in "
     "{in}/sample_submission.csv are not in {in}/test.csv (first: ' te-0000' at row 2)"),
    # state
    ("no-folds-yet", lambda env: None, TRAIN, 2, "no folds yet; make them with `python -m solution folds"),
    ("stale-folds", steps(do(*FOLDS), flip_label), TRAIN, 2, "was made from other train data"),
    ("stale-folds-not-rebuilt-silently", steps(do(*FOLDS), flip_label), FOLDS, 2, "--force"),
    # a hand-edited folds.csv with a fold number gone (or one too many): one line naming the fold and the fix
    ("empty-fold", steps(do(*FOLDS), move_fold(2, 3)), TRAIN, 2,
     "{folds}/folds.csv: fold 2 has no rows (it holds fold(s) 0, 1, 3, 4; folds.json says n_splits=5); rebuild "
     "with `python -m solution folds --force --input {in} --folds-dir {folds}`"),
    ("empty-last-fold", steps(do(*FOLDS), move_fold(4, 0)), RUN, 2, "folds.csv: fold 4 has no rows"),
    ("fold-beyond-n-splits", steps(do(*FOLDS), move_fold(1, 5, rows=1)), TRAIN, 2,
     "folds.csv: fold 5 is beyond n_splits=5"),
    # every hint repeats the case's own --input/--folds-dir/--output (following one: test_hints_*)
    ("hint-stale-folds", steps(do(*FOLDS), flip_label), TRAIN, 2,
     "rebuild with `python -m solution folds --force --input {in} --folds-dir {folds}` (trained models"),
    ("hint-other-n-splits", do(*FOLDS), (*FOLDS, "--n-splits", "3", "--fold-seed", "7"), 2,
     "rebuild with `python -m solution folds --n-splits 3 --fold-seed 7 --force --input {in} --folds-dir {folds}`$"),
    ("hint-nothing-to-blend", do(*FOLDS), BLEND, 2,
     "run `python -m solution train --input {in} --folds-dir {folds} --output {out}` first"),
    ("hint-no-submission", do(*FOLDS), SUBMIT, 2,
     "make it with `python -m solution blend --input {in} --folds-dir {folds} --output {out}`$"),
    ("hint-model-trained-with-other-folds", steps(do(*FOLDS), do(*TRAIN), do(*FOLDS, "--force", "--fold-seed", "7")),
     BLEND, 2, "retrain it with `python -m solution train tfidf-lr --force --input {in} --folds-dir {folds} "
     "--output {out}`$"),
    ("hint-predict-model-never-trained", blended(lambda env: shutil.rmtree(env.output / "tfidf-lr")), PREDICT, 2,
     "no trained model 'tfidf-lr' (the blend used it); train it with `python -m solution train tfidf-lr "
     "--output {out}`$"),
    ("hint-predict-weights-not-positive", blended(edit_json(REPORT, put("weights.tfidf-lr", 0))), PREDICT, 2,
     "the blend's weights do not sum to a positive number; rerun `python -m solution blend --output {out}`$"),
    ("corrupt-folds-json", steps(do(*FOLDS), rewrite("{folds}/folds.json", lambda t: t[: len(t) // 2])), TRAIN, 2,
     "folds.json: not valid JSON"),
    ("folds-csv-without-fold-column",
     steps(do(*FOLDS), rewrite("{folds}/folds.csv", lambda t: t.replace(",fold", ",k", 1))),
     TRAIN, 2, "folds.csv"),
    ("model-trained-with-other-folds", steps(do(*FOLDS), do(*TRAIN), do(*FOLDS, "--force", "--fold-seed", "7")),
     BLEND, 2, "was trained with other folds"),
    ("train-into-other-folds-model", steps(do(*FOLDS), do(*TRAIN), do(*FOLDS, "--force", "--fold-seed", "7")),
     TRAIN, 2, "holds a model trained with other folds or data"),
    ("older-config", steps(do(*FOLDS), do(*TRAIN)), (*TRAIN, "--set", "C=1.0"), 2,
     "holds a model trained with another config (differs in: C)"),
    ("incomplete-model", steps(do(*FOLDS), do(*TRAIN, "--folds", "0,2")), BLEND, 2,
     "fold(s) [1, 3, 4] not trained; run `python -m solution train tfidf-lr --input {in} --folds-dir {folds} "
     "--output {out}` to finish them$"),
    ("nothing-to-blend", do(*FOLDS), BLEND, 2, "no trained models to blend"),
    ("oof-out-of-range", steps(do(*FOLDS), do(*TRAIN), rewrite("{out}/tfidf-lr/fold0/oof.csv", oof_out_of_range)),
     BLEND, 2, "not in [0, 1]"),
    ("no-submission-to-submit", do(*FOLDS), SUBMIT, 2, "make it with `python -m solution blend --input {in}"),
    ("predict-without-blend", steps(do(*FOLDS), do(*TRAIN)), PREDICT, 2,
     "make it with `python -m solution blend --output {out}` (after `python -m solution train --output {out}`), "
     "or `python -m solution run --output {out}`$"),
    ("predict-model-gone", steps(do(*FOLDS), do(*TRAIN), do(*BLEND, "tfidf-lr"),
                                 lambda env: shutil.rmtree(env.output / "tfidf-lr" / "fold3")),
     PREDICT, 2, "fold model(s) [3] missing or incomplete; finish them with `python -m solution train tfidf-lr "
     "--output {out}`$"),
    # arguments
    ("unknown-model", do(*FOLDS), ("train", "tfidf-xl", *COMMON), 2, "unknown model 'tfidf-xl'; known models:"),
    ("bad-setting-value", do(*FOLDS), (*TRAIN, "--set", "C=lots"), 2, "--set C=lots: expected float"),
    ("invalid-setting", do(*FOLDS), (*TRAIN, "--set", "C=-1"), 2, "C must be > 0"),
    ("fold-out-of-range", do(*FOLDS), (*TRAIN, "--folds", "7"), 2, "folds are 0..4"),
    ("fold-seed-negative", lambda env: None, (*FOLDS, "--fold-seed", "-1"), 2, "--fold-seed must be in [0, 2**32 - 1]"),
    # IDs are opaque strings: none is read as missing, a number or a float (NA_IDS; every reader: test_na_ids_*)
    ("ids-pandas-reads-as-missing", na_ids, RUN, 0, None),
    ("ids-pandas-reads-as-missing-folds-force", steps(na_ids, do(*FOLDS)), (*FOLDS, "--force"), 0, None),
    # the filesystem says no (injected at the write helper; for real, as root: test_real_full_disk_and_read_only_mount)
    ("disk-full-folds", fault(errno.ENOSPC, "{folds}"), FOLDS, 2,
     "folds.csv: no space left on device; free some space, or write elsewhere"),
    ("disk-full-train", steps(do(*FOLDS), fault(errno.ENOSPC)), TRAIN, 2, ": no space left on device; free some space"),
    ("disk-full-submission", steps(do(*FOLDS), do(*TRAIN), fault(errno.ENOSPC, name="submission")), BLEND, 2,
     "submission.csv: no space left on device"),
    ("disk-full-blend-report", steps(do(*FOLDS), do(*TRAIN), fault(errno.ENOSPC, "{out}/blend")), BLEND, 2,
     "no space left on device"),
    ("read-only-output", steps(do(*FOLDS), fault(errno.EROFS)), TRAIN, 2, ": read-only file system; write elsewhere"),
    ("read-only-folds", fault(errno.EROFS, "{folds}"), RUN, 2, "folds.csv: read-only file system"),
    ("output-is-a-file", make_file("{out}"), RUN, 2, "--output is a file, not a directory"),
    ("folds-dir-is-a-file", make_file("{folds}"), RUN, 2, "--folds-dir is a file, not a directory"),
    ("output-below-a-file", make_file("{root}/afile"),
     ("run", "--models", "tfidf-lr", "--input", "{in}", "--folds-dir", "{folds}", "--output", "{root}/afile/out"), 2,
     "afile/out/tfidf-lr: not a directory"),
    ("input-is-a-file", make_file("{in}"), RUN, 2, "--input is not a directory"),
    ("train-csv-is-a-folder", make_folder("{in}/train.csv"), RUN, 2, "train.csv: is a directory"),
    ("predict-file-is-a-folder", lambda env: None, ("predict", "--output", "{out}", "--file", "{in}"), 2,
     "input: is a directory"),
    ("predict-file-missing", lambda env: None, ("predict", "--output", "{out}", "--file", "{root}/nothere.csv"), 2,
     "nothere.csv: file not found$"),
    ("folds-json-not-utf8", steps(do(*FOLDS), write_bytes("{folds}/folds.json", b"\xff\xfe{}")), TRAIN, 2,
     "folds.json: not valid JSON (not UTF-8"),
    ("folds-json-not-an-object", steps(do(*FOLDS), write_bytes("{folds}/folds.json", b"[]")), TRAIN, 2,
     "folds.json: not valid JSON for the kit (a list, not an object)"),
    ("oof-blank-cell", steps(do(*FOLDS), do(*TRAIN), rewrite("{out}/tfidf-lr/fold0/oof.csv", oof_cell(""))), BLEND, 2,
     "oof.csv, row 2, column 'disgust': probability '' not in [0, 1]"),
    # an older run's NaN behind a valid DONE.json: the fold is not done, so it is retrained, not a crash
    ("nan-fold-named-by-blend", steps(do(*FOLDS), do(*TRAIN),
                                      rewrite("{out}/tfidf-lr/fold3/test.csv", oof_cell("nan"))), BLEND, 2,
     "test.csv, row 2, column 'disgust': probability 'nan' not in [0, 1]; run `python -m solution train "
     "tfidf-lr --input {in} --folds-dir {folds} --output {out}` to retrain that fold$"),
    ("nan-fold-retrained-by-train", steps(do(*FOLDS), do(*TRAIN),
                                          rewrite("{out}/tfidf-lr/fold3/test.csv", oof_cell("nan"))), TRAIN, 0,
     "tfidf-lr: training fold(s) [3] into"),
    ("nan-fold-retrained-by-run", steps(do(*FOLDS), do(*TRAIN),
                                        rewrite("{out}/tfidf-lr/fold0/oof.csv", oof_cell("nan"))), RUN, 0,
     "training fold(s) [0] into"),
    # what a killed run left (atomic_path's temp names, a model folder half saved): swept by the next run of the
    # step, in every folder it writes (a user's own *.tmp files are kept: test_the_sweep_keeps_other_files)
    ("stale-tmp-removed-by-train", steps(do(*FOLDS), do(*TRAIN, "--folds", "0"),
                                         write_bytes("{out}/tfidf-lr/.oof.csv.k1ll3d00.tmp", b"ID,anger\n"),
                                         write_bytes("{out}/tfidf-lr/fold0/model.partial/x", b"")), TRAIN, 0, None),
    ("stale-tmp-removed-by-folds", steps(do(*FOLDS), write_bytes("{folds}/.folds.csv.k1ll3d00.tmp", b"ID")),
     (*FOLDS, "--force"), 0, None),
    ("stale-tmp-removed-by-blend", steps(do(*FOLDS), do(*TRAIN),
                                         write_bytes("{out}/.submission.csv.k1ll3d00.tmp", b"ID,anger\n"),
                                         write_bytes("{out}/blend/.report.json.k1ll3d00.tmp", b"{")), BLEND, 0, None),
    ("stale-tmp-removed-by-run", steps(do(*FOLDS), do(*TRAIN),
                                       write_bytes("{out}/.submission.csv.k1ll3d00.tmp", b"ID"),
                                       write_bytes("{out}/tfidf-lr/fold1/.metrics.json.k1ll3d00.tmp", b"{"),
                                       write_bytes("{out}/tfidf-lr/fold2/model/.model.pkl.k1ll3d00.tmp", b""),
                                       write_bytes("{out}/blend/.report.md.k1ll3d00.tmp", b"#")), RUN, 0, None),
    # records the kit wrote, read back through one checked reader (io.read_checked): a record not of its shape
    # makes its fold "not done" (train retrains it) or is one line naming the file; never a traceback or a NaN
    ("metrics-json-a-list-retrained", trained(write_bytes(f"{FOLD}3/metrics.json", b"[]")), TRAIN, 0,
     "fold(s) [0, 1, 2, 4] already done, skipping (--force retrains)\n[solution] tfidf-lr: training fold(s) [3]"),
    ("metrics-json-nan-time-retrained", trained(edit_json(f"{FOLD}1/metrics.json", put("wall_time_s", NAN))),
     (*TRAIN, "--time-budget", "10m"), 0, "tfidf-lr: training fold(s) [1]"),
    ("metrics-json-negative-time-named-by-blend", trained(edit_json(f"{FOLD}2/metrics.json", put("wall_time_s", -5))),
     BLEND, 2, "fold2/metrics.json: 'wall_time_s' is -5, not a finite number >= 0; run `python -m solution train "
     "tfidf-lr --input {in} --folds-dir {folds} --output {out}` to retrain that fold$"),
    ("metrics-json-empty-named-by-predict", blended(write_bytes(f"{FOLD}4/metrics.json", b"{}")), PREDICT, 2,
     "fold4/metrics.json: no 'config_fingerprint' field; not a record the kit wrote; retrain that fold with "
     "`python -m solution train tfidf-lr"),
    ("done-json-truncated-retrained", trained(rewrite(f"{FOLD}2/DONE.json", lambda t: t[: len(t) // 2])), TRAIN, 0,
     "tfidf-lr: training fold(s) [2]"),
    ("config-json-config-a-list-named-by-blend", trained(edit_json(CONFIG, put("config", []))), BLEND, 2,
     "tfidf-lr/config.json: 'config' is [], not an object; retrain it with `python -m solution train tfidf-lr "
     "--force --input {in} --folds-dir {folds} --output {out}`$"),
    ("config-json-config-a-list-named-by-train", trained(edit_json(CONFIG, put("config", []))), TRAIN, 2,
     "tfidf-lr holds a model whose config.json is damaged ("),
    ("config-json-labels-not-strings-named-by-predict", blended(edit_json(CONFIG, put("labels", [1, 2]))), PREDICT, 2,
     "tfidf-lr/config.json: labels[0] is 1, not a string; retrain with `python -m solution train tfidf-lr"),
    ("config-json-fold-count-a-word-named-by-predict", blended(edit_json(CONFIG, put("folds.n_splits", "five"))),
     PREDICT, 2, "tfidf-lr/config.json: 'folds' has no fold count; retrain with"),
    ("report-json-a-list-named-by-predict", blended(write_bytes(REPORT, b"[]"), rm_out("submission.csv")), PREDICT, 2,
     "blend/report.json: not valid JSON for the kit (a list, not an object); remake it with `python -m solution "
     "blend --output {out}`$"),
    ("report-json-nan-threshold-named-by-predict", blended(edit_json(REPORT, put("thresholds.joy", NAN))), PREDICT, 2,
     "blend/report.json: thresholds['joy'] is NaN, not a finite number; remake it with"),
    ("report-json-models-a-string-named-by-predict", blended(edit_json(REPORT, put("models", "tfidf-lr"))), PREDICT, 2,
     "blend/report.json: 'models' is \"tfidf-lr\", not a list of strings"),
    # values that pass a naive check but crash a library
    ("setting-nan", do(*FOLDS), (*TRAIN, "--set", "C=nan"), 2, "C must be a finite number, got nan"),
    ("setting-inf", do(*FOLDS), (*TRAIN, "--set", "C=inf"), 2, "C must be a finite number, got inf"),
    ("setting-huge-int", do(*FOLDS), (*TRAIN, "--set", "max_features=100000000000"), 2,
     "max_features must be between -2147483647 and 2147483647, got 100000000000"),
    ("setting-out-of-range", do(*FOLDS), (*TRAIN, "--set", "min_df=0"), 2, "min_df must be >= 1, got 0"),
    ("seed-negative", do(*FOLDS), (*TRAIN, "--set", "seed=-1"), 2, "seed must be >= 0, got -1"),
    ("setting-the-library-refuses", do(*FOLDS), (*TRAIN, "--set", "min_df=1000"), 2,
     "config 'tfidf-lr' (--set min_df=1000): scikit-learn refused a setting: "),
    ("train-after-a-refused-setting", steps(do(*FOLDS), fails(*TRAIN, "--set", "min_df=1000")), TRAIN, 0, None),
]

# the blend worker's rule (blend writes the submission last): until it lands, a failure writing the report
# leaves a submission without one
XFAIL: dict[str, str] = {}

AFTER: dict[str, Callable[[Env], None]] = {
    **{name: submission_ok for name, _, argv, code, _ in CASES if code == 0 and argv == RUN},
    **{name: model_ok for name, _, argv, code, _ in CASES if code == 0 and argv == TRAIN},
    **{name: folds_ok for name, _, argv, code, _ in CASES if code == 0 and argv[0] == "folds"},
}


@pytest.fixture
def env(tmp_path, monkeypatch, no_kaggle):
    monkeypatch.chdir(tmp_path)  # nothing may land in the repo, whatever a default dir is
    monkeypatch.delenv("SOLUTION_CWD", raising=False)
    return Env(tmp_path, make_input_dir(tmp_path / "input"), tmp_path / "folds", tmp_path / "output", monkeypatch)


def submission_has_its_report(output: Path) -> None:
    """A submission on disk always has the blend report that describes it (the submission is written last)."""
    sub = output / "submission.csv"
    if sub.exists():
        rep = output / "blend" / "report.json"
        assert rep.exists(), f"{sub} without {rep}"
        assert json.loads(rep.read_text())["submission_sha256"] == hashlib.sha256(sub.read_bytes()).hexdigest()


PARAMS = [pytest.param(*c, marks=pytest.mark.xfail(reason=XFAIL[c[0]], strict=False)) if c[0] in XFAIL else c
          for c in CASES]


@pytest.mark.parametrize("case_id, mutate, argv, code, fragment", PARAMS, ids=[c[0] for c in CASES])
def test_case(env, capsys, case_id, mutate, argv, code, fragment):
    mutate(env)
    fragment = env.fmt([fragment])[0] if fragment else fragment
    had_submission = (env.output / "submission.csv").exists()
    before = sha_tree(env.input)
    capsys.readouterr()
    got = cli.main(env.fmt(argv))
    out, err = capsys.readouterr()

    assert "Traceback" not in err + out
    assert got == code, f"exit {got}, expected {code}\nstdout: {out[-2000:]}\nstderr: {err[-2000:]}"
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    if code == 0:
        assert not errors, err
        if fragment:
            assert fragment in err, err
        AFTER.get(case_id, lambda e: None)(env)
    else:
        assert len(errors) == 1, err
        assert err.rstrip("\n").splitlines()[-1] == errors[0]  # one line, and the last thing said
        if fragment.endswith("$"):  # the end of the message: nothing after it (no wrong hint)
            assert errors[0].endswith(fragment[:-1]), errors[0]
        else:
            assert fragment in errors[0], errors[0]
        assert had_submission or not (env.output / "submission.csv").exists()
    assert sha_tree(env.input) == before, "the input dir changed"
    assert not leftovers(env.output, env.folds)
    submission_has_its_report(env.output)


def test_every_case_id_names_one_case_and_every_expected_failure_a_case():
    """A repeated id would run one case under another's name; an XFAIL entry of no case hides nothing."""
    ids = [c[0] for c in CASES]
    assert len(set(ids)) == len(ids) and set(XFAIL) <= set(ids)


# --- records read back, temp files swept -------------------------------------------------------------

@pytest.mark.parametrize("bad", [NAN, float("inf"), -500, "12s", None, True, [1]],
                         ids=["nan", "inf", "negative", "string", "null", "bool", "list"])
def test_a_damaged_fold_time_never_reaches_the_plan(env, capsys, bad):
    """A fold's wall_time_s that is not a number >= 0: that fold is retrained, and the plan prices the folds from
    the sound records (fold 3 lost only its DONE.json), never as nan or a negative time."""
    env.cli(*FOLDS)
    env.cli(*TRAIN)
    edit_json(f"{FOLD}1/metrics.json", put("wall_time_s", bad))(env)
    (env.output / "tfidf-lr" / "fold3" / "DONE.json").unlink()
    capsys.readouterr()
    assert cli.main(env.fmt([*TRAIN, "--time-budget", "10m"])) == 0
    said = "".join(capsys.readouterr())
    row = next(ln for ln in said.splitlines() if ln.startswith("  tfidf-lr "))  # the plan's row
    folds, per_fold = row.split()[1:3]
    assert folds == "1,3" and re.fullmatch(r"\d+(\.\d+)?[smh]", per_fold) and "measured (4 folds here)" in row, said
    assert "nan" not in said.lower() and "Traceback" not in said


def test_the_sweep_keeps_other_files_and_a_live_runs_temps(env, capsys):
    """Only atomic_path's names and half-saved model folders go, and only under the lock their writers hold:
    a temp file of a blend still running stays (the second blend is refused), and goes once that run is gone."""
    from solution.io import remove_stale_tmp

    env.cli(*FOLDS)
    env.cli(*TRAIN)
    mine = [env.output / n for n in ("notes.tmp", ".mine.tmp", "blend/.draft.tmp", "tfidf-lr/fold0/x.tmp",
                                     "tfidf-lr/a.partial", ".submission.csv.tmp")]
    for p in mine:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("mine")
    live = env.output / ".submission.csv.l1ve0000.tmp"
    live.write_text("ID")
    code = ("import sys, time\nfrom solution import lock\nwith lock.hold(sys.argv[1]):\n"
            "    print('held', flush=True)\n    time.sleep(120)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(env.output / "blend")], stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout.readline().strip() == b"held"
        capsys.readouterr()
        assert cli.main(env.fmt(BLEND)) == 2
        assert "is in use by another run" in capsys.readouterr().err and live.exists()
    finally:
        holder.kill()
        holder.wait()
    env.cli(*RUN)
    assert not live.exists() and all(p.read_text() == "mine" for p in mine)
    with pytest.raises(RuntimeError, match="without holding the lock"):
        remove_stale_tmp(env.output)


# --- interruption ----------------------------------------------------------------------------------

def build_tiny_bert(directory: Path, texts) -> Path:
    """A 2-layer, 32-wide random BERT with a word-level tokenizer trained on `texts` (no download)."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(list(texts), trainers.WordLevelTrainer(special_tokens=special))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")
    conf = BertConfig(vocab_size=len(fast), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=64, pad_token_id=fast.pad_token_id)
    torch.manual_seed(0)
    BertModel(conf).save_pretrained(str(directory))
    fast.save_pretrained(str(directory))
    return directory


TINY_BERT_SETTINGS = ("--set", "epochs=2", "--set", "max_length=32", "--set", "batch_size=4", "--set", "num_threads=1")


def _train_argv(env: Env, bert: Path, output: Path) -> list[str]:
    return ["train", "minilm-lora", "--input", str(env.input), "--folds-dir", str(env.folds), "--output", str(output),
            "--set", f"weights={bert}", *TINY_BERT_SETTINGS]


def test_sigkill_mid_fold_then_rerun_gives_identical_oof(env, capsys):
    """Kill `train` (SIGKILL: no cleanup) while a fold is half trained, rerun it: the done fold is kept, the
    killed one redone from scratch, and every OOF/test file equals an uninterrupted run's byte for byte."""
    import threading

    from solution.text import prepare

    frames = [pd.read_csv(env.input / f, dtype=str, keep_default_na=False) for f in ("train.csv", "test.csv")]
    texts = [t for df in frames for t in df["Tweet"]]
    bert = build_tiny_bert(env.root / "tiny-bert", texts + prepare(texts, "tweet"))
    env.cli(*FOLDS)
    before = sha_tree(env.input)
    sub_env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
               "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    ref_out, kill_out = env.root / "out-uninterrupted", env.root / "out-killed"
    mdir, state = kill_out / "minilm-lora", {}
    cmd = [sys.executable, "-m", "solution", *_train_argv(env, bert, kill_out)]
    with open(env.root / "victim.log", "w") as victim_log:
        victim = subprocess.Popen(cmd, env=sub_env, cwd=env.root, stdout=victim_log, stderr=subprocess.STDOUT)

    def kill_mid_fold():
        """Poll until fold0 is done and a later fold is under way, then SIGKILL."""
        deadline = time.time() + 240
        while victim.poll() is None and time.time() < deadline:
            if (mdir / "fold0" / "DONE.json").exists():
                busy = [k for k in range(1, 5)
                        if (mdir / f"fold{k}").is_dir() and not (mdir / f"fold{k}" / "DONE.json").exists()]
                if busy:
                    os.kill(victim.pid, signal.SIGKILL)
                    state["mid"] = busy[0]
                    return
            time.sleep(0.002)

    watcher = threading.Thread(target=kill_mid_fold, daemon=True)
    watcher.start()
    try:
        env.cli(*_train_argv(env, bert, ref_out))  # meanwhile, the uninterrupted run (in-process)
        watcher.join(timeout=300)
        victim.wait(timeout=60)
    finally:
        if victim.poll() is None:
            victim.kill()
    mid = state.get("mid")
    assert mid is not None, ("the run ended before it was killed mid-fold:\n"
                             + (env.root / "victim.log").read_text()[-3000:])
    assert victim.returncode == -signal.SIGKILL
    assert not (mdir / f"fold{mid}" / "DONE.json").exists() and not (mdir / "oof.csv").exists()

    rerun = subprocess.run(cmd, env=sub_env, cwd=env.root, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "already done, skipping" in rerun.stderr  # resumed, not started over
    for rel in ["oof.csv", "test.csv", *[f"fold{k}/oof.csv" for k in range(5)],
                *[f"fold{k}/test.csv" for k in range(5)]]:
        a, b = (ref_out / "minilm-lora" / rel).read_bytes(), (mdir / rel).read_bytes()
        assert a == b, f"{rel} differs between the uninterrupted and the killed-and-resumed run"
    assert not leftovers(kill_out, ref_out, env.folds)
    assert sha_tree(env.input) == before


# --- secrets ---------------------------------------------------------------------------------------

FAKE_KEY = "fakekaggle0key0DO0NOT0LEAK0c0ffee1234"


def _fake_kaggle(bindir: Path, code: int) -> Path:
    """A `kaggle` that prints its whole environment (and the key, by name) to stdout and stderr."""
    bindir.mkdir(parents=True, exist_ok=True)
    exe = bindir / "kaggle"
    exe.write_text("#!/bin/sh\n"
                   "env >&2\n"
                   'echo "args: $*"\n'
                   "env\n"
                   'echo "401 Unauthorized for $KAGGLE_USERNAME with key $KAGGLE_KEY" >&2\n'
                   'echo "401 Unauthorized for $KAGGLE_USERNAME with key $KAGGLE_KEY"\n'
                   f"exit {code}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC | stat.S_IXGRP | stat.S_IXOTH)
    return bindir


def test_kaggle_key_never_leaks(env, capsys, monkeypatch):
    import importlib.util

    monkeypatch.setenv("KAGGLE_USERNAME", "leak-test-user")
    monkeypatch.setenv("KAGGLE_KEY", FAKE_KEY)
    printed = []

    def run(*argv, code=None):
        capsys.readouterr()
        try:
            got = cli.main(env.fmt(argv))
        except SystemExit as e:  # an argparse error is a leak check too
            got = e.code
        out, err = capsys.readouterr()
        printed.append(out + err)
        assert "Traceback" not in out + err
        if code is not None:
            assert got == code, out + err
        return out, err

    run(*RUN, code=0)
    orig_path = os.environ.get("PATH", "")
    monkeypatch.setenv("PATH", str(env.root / "empty-bin"))
    (env.root / "empty-bin").mkdir()
    _, err = run("submit", *COMMON, code=2)
    assert "`kaggle` command is not on PATH" in err
    for code in (1, 0):
        monkeypatch.setenv("PATH", os.pathsep.join([str(_fake_kaggle(env.root / f"bin{code}", code)), orig_path]))
        out, err = run("submit", *COMMON, "-m", "leak test", code=2 if code else 0)
        assert "leak-test-user" in out + err  # the fake CLI's output did come through ...
        assert "***" in out + err  # ... with the key scrubbed
    run(*RUN, "--submit", "-m", "leak test", code=0)
    if importlib.util.find_spec("solution.kaggle.archive") is not None:  # the notebook, where the kit has one
        from solution.kaggle import archive

        run("kernel", *COMMON, "--models", "tfidf-lr", code=0)
        notebooks = list(env.output.rglob("*.ipynb"))
        assert notebooks
        if hasattr(archive, "read_archive"):  # and every file embedded in it
            for nb in notebooks:
                for name, blob in archive.read_archive(nb).items():
                    assert FAKE_KEY.encode() not in blob, name

    for text in printed:
        assert FAKE_KEY not in text
    written = [p for d in (env.output, env.folds, env.root) for p in d.rglob("*")
               if p.is_file() and "bin" not in p.parent.name]
    assert any(p.name == "submission.csv" for p in written)
    for p in written:
        assert FAKE_KEY.encode() not in p.read_bytes(), p


# --- IDs pandas misreads, through every reader -----------------------------------------------------

def test_na_ids_go_through_every_reader(env, capsys):
    """IDs such as NA, null, None, 1e5 and 007 survive data, folds (made and re-read, --force too), the fold
    and model probability tables, blend, the submission, submit's check and predict --file, as written."""
    na_ids(env)
    env.cli(*FOLDS)
    env.cli(*FOLDS, "--force")
    env.cli(*TRAIN)
    env.cli(*BLEND)
    capsys.readouterr()
    assert cli.main(env.fmt(SUBMIT)) == 0
    capsys.readouterr()
    assert cli.main(env.fmt(["predict", "--output", "{out}", "--file", "{in}/test.csv", "--format", "csv"])) == 0
    predicted = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out), dtype=str, keep_default_na=False)
    train_ids = read_as_written(env.input / "train.csv")["ID"].tolist()
    test_ids = read_as_written(env.input / "test.csv")["ID"].tolist()
    assert train_ids[: len(NA_IDS)] == NA_IDS
    assert read_as_written(env.folds / "folds.csv")["ID"].tolist() == train_ids
    assert read_as_written(env.output / "tfidf-lr" / "oof.csv")["ID"].tolist() == train_ids
    assert read_as_written(env.output / "tfidf-lr" / "test.csv")["ID"].tolist() == test_ids
    assert read_as_written(env.output / "submission.csv")["ID"].tolist() == test_ids
    assert predicted["ID"].tolist() == test_ids


def test_prob_tables_read_back_exactly(tmp_path):
    """The one reader reads probabilities with Python's float(): what write_csv wrote comes back bit for bit."""
    import numpy as np

    from solution.io import prob_table, read_prob_table, write_csv

    rng = np.random.default_rng(0)
    probs = np.concatenate([rng.random((200, 2)), [[1e-320, 1 - 2**-53], [0.0, 1.0]]])
    write_csv(prob_table(["NA", *map(str, range(201))], probs, ["a", "b"]), tmp_path / "p.csv")
    back = read_prob_table(tmp_path / "p.csv", ["a", "b"])
    assert back["ID"].iloc[0] == "NA"
    assert np.array_equal(back[["a", "b"]].to_numpy(), probs)


# --- a damaged trained model -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained_lora(tmp_path_factory):
    """minilm-lora on a tiny random BERT, 2 folds, blended: a model folder predict reloads."""
    from solution.text import prepare

    root = tmp_path_factory.mktemp("lora")
    inp = make_input_dir(root / "input")
    texts = [t for f in ("train.csv", "test.csv") for t in read_as_written(inp / f)["Tweet"]]
    bert = build_tiny_bert(root / "tiny-bert", texts + prepare(texts, "tweet"))
    common = ["--input", str(inp), "--folds-dir", str(root / "folds"), "--output", str(root / "output")]
    assert cli.main(["folds", *common, "--n-splits", "2"]) == 0
    assert cli.main(["train", "minilm-lora", *common, "--set", f"weights={bert}", "--set", "epochs=1",
                     *TINY_BERT_SETTINGS[2:]]) == 0
    assert cli.main(["blend", *common, "--no-plots"]) == 0
    return root / "output"


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("file", ["adapter_model.safetensors", "adapter_config.json", "tokenizer.json",
                                  "tokenizer_config.json"])
def test_damaged_trained_model_is_named(trained_lora, tmp_path, capsys, file):
    """A truncated adapter (it holds the head too, peft's modules_to_save), adapter config or tokenizer file:
    predict names the file and says to retrain, in one line."""
    out = tmp_path / "output"
    shutil.copytree(trained_lora, out)
    damaged = out / "minilm-lora" / "fold1" / "model" / file
    _truncate(damaged)
    capsys.readouterr()
    code = cli.main(["predict", "--output", str(out), "a tweet"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    line = err.rstrip("\n").splitlines()[-1]
    assert line.startswith(f"error: {damaged.parent}: cannot load the fold model: {file} is damaged (")
    assert line.endswith(f"retrain it with `python -m solution train minilm-lora --force --output {out}`")


def test_saved_lora_files_get_the_usual_mode(trained_lora):
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in trained_lora.rglob("*") if p.is_file()}
    assert set(modes.values()) == {oct(0o666 & ~_umask())}, modes


def test_predict_logs_into_its_output_folder_else_a_private_file(trained_lora, tmp_path, capsys, monkeypatch):
    """The libraries' messages of predict go to OUTPUT/predict.log; where this run may not write that file, to a
    private temp file of its own (never a fixed shared one, never a logging traceback); --verbose shows them."""
    import tempfile

    out, tmp = tmp_path / "output", tmp_path / "tmp"
    shutil.copytree(trained_lora, out)
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))

    def predict(*extra):
        capsys.readouterr()
        assert cli.main(["predict", "--output", str(out), *extra, "a tweet"]) == 0
        err = capsys.readouterr().err
        assert "Traceback" not in err and "Logging error" not in err
        return err

    err = predict()
    assert f"written to {out / 'predict.log'} (--verbose shows them here)" in err
    assert "LOAD REPORT" in (out / "predict.log").read_text() and not list(tmp.iterdir())
    (out / "predict.log").unlink()
    (out / "predict.log").mkdir()  # a log this run may not write (as another user's file would be)
    err = predict()
    private = list(tmp.iterdir())
    assert len(private) == 1 and private[0].name.endswith("-predict.log")
    assert oct(private[0].stat().st_mode & 0o777) == "0o600" and f"written to {private[0]} " in err
    assert "LOAD REPORT" in private[0].read_text()
    private[0].unlink()
    err = predict("--verbose")
    assert "LOAD REPORT" in err and "message(s) from the libraries" not in err and not list(tmp.iterdir())


@pytest.mark.parametrize("command", list(cli.COMMANDS))
def test_every_command_takes_verbose(command, capsys):
    """The step logs' line says "(--verbose shows them here)": every command's parser knows the option (an unknown
    one beside it is the only one refused) and its --help lists it."""
    with pytest.raises(SystemExit):
        cli.main([command, "--verbose", "--no-such-option"])
    refused = [ln for ln in capsys.readouterr().err.splitlines() if "unrecognized arguments" in ln]
    assert refused and refused[0].endswith("unrecognized arguments: --no-such-option")
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    assert "--verbose" in capsys.readouterr().out


def test_a_log_file_that_refuses_a_line_costs_no_traceback(tmp_path, capsys):
    import logging

    from solution import log

    with log.library_log(tmp_path / "x.log") as path:
        path.mkdir()  # no longer a file it can append to
        log._HANDLER.emit(logging.LogRecord("transformers", logging.WARNING, __file__, 1, "LOAD REPORT", None, None))
    err = capsys.readouterr().err
    assert "LOAD REPORT" in err and "Logging error" not in err and "Traceback" not in err


def _umask() -> int:
    from solution.io import _umask as umask

    return umask()


# --- settings --------------------------------------------------------------------------------------

def test_every_numeric_setting_refuses_nan_infinity_and_out_of_range_values():
    """Every numeric field of every registry config: NaN and infinities (floats), -1 and 2**40 (all) are
    refused by the config itself, in a message naming the field."""
    import dataclasses

    from solution import config as config_mod
    from solution.errors import UserError

    checked = set()
    for name in config_mod.known():
        cfg = config_mod.get(name)
        for f in dataclasses.fields(cfg):
            value = getattr(cfg, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            bad = [-1.0, float("nan"), float("inf"), -float("inf")] if isinstance(value, float) else [-1, 2**40]
            for v in bad:
                with pytest.raises(UserError, match=rf"\b{f.name}\b"):
                    dataclasses.replace(cfg, **{f.name: v}).check()
            checked.add(f.name)
    assert {"C", "lr", "seed", "max_features", "warmup_ratio", "focal_gamma", "max_grad_norm"} <= checked


def test_a_library_refusal_names_the_setting_and_a_kit_bug_keeps_its_traceback():
    import dataclasses

    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from solution import config as config_mod
    from solution.errors import UserError
    from solution.train.fold import rejected_setting

    X, y = np.eye(4), np.array([0, 1, 0, 1])
    cfg = config_mod.get("tfidf-lr")
    with pytest.raises(UserError, match=r"config 'tfidf-lr': scikit-learn refused a setting: The 'C' parameter"):
        with rejected_setting(cfg):  # sklearn calls it a parameter error itself
            LogisticRegression(C=-1.0).fit(X, y)
    changed = dataclasses.replace(cfg, min_df=7)
    with pytest.raises(UserError, match=r"\(--set min_df=7\): scikit-learn refused a setting"):
        with rejected_setting(changed):
            LogisticRegression(penalty="elasticnet").fit(X, y)  # a plain ValueError raised in sklearn
    with pytest.raises(ValueError):  # registry settings and a plain ValueError: the kit's bug, not the user's
        with rejected_setting(cfg):
            LogisticRegression(penalty="elasticnet").fit(X, y)
    with pytest.raises(ValueError):  # not raised by a library
        with rejected_setting(changed):
            raise ValueError("a bug in the kit")


# --- files the kit writes --------------------------------------------------------------------------

def test_output_files_get_the_usual_mode(env):
    old = os.umask(0o022)
    try:
        env.cli(*RUN)
        env.cli("blend", *COMMON)  # with the plots
    finally:
        os.umask(old)
    files = [p for d in (env.output, env.folds) for p in d.rglob("*") if p.is_file()]
    assert any(p.suffix == ".png" for p in files) and any(p.name == "model.pkl" for p in files)
    modes = {str(p.relative_to(env.root)): oct(p.stat().st_mode & 0o777) for p in files}
    assert set(modes.values()) == {"0o644"}, modes


def test_predict_stdin_not_utf8_is_one_line(env, capsys):
    import io as io_mod

    from solution import predict

    stdin = io_mod.TextIOWrapper(io_mod.BytesIO(b"caf\xe9\n"), encoding="utf-8")
    assert cli.run_main(lambda argv: predict.main(argv, stdin=stdin), ["--output", str(env.output)]) == 2
    assert capsys.readouterr().err.startswith("error: stdin: not UTF-8 (byte 0xe9)")


# --- paths relative to where the user stands -------------------------------------------------------

def test_user_paths_are_taken_against_the_callers_folder(env, monkeypatch, capsys):
    """run.sh runs the kit from its own folder and passes the caller's in SOLUTION_CWD: --input, --folds-dir
    and --output given as relative paths are the caller's, the defaults stay the kit's."""
    kit, user = env.root / "kit", env.root / "user"
    kit.mkdir()
    shutil.copytree(env.input, user / "base")
    monkeypatch.chdir(kit)
    monkeypatch.setenv("SOLUTION_CWD", str(user))
    assert cli.main(["run", "--models", "tfidf-lr", "--input", "base", "--output", "o", "--folds-dir", "f"]) == 0
    assert (user / "o" / "submission.csv").exists() and (user / "f" / "folds.csv").exists()
    assert cli.main(["predict", "--output", "o", "--file", "base/test.csv", "--format", "json"]) == 0
    assert cli.main(["submit", "--input", "base", "--output", "o", "--file", "o/submission.csv", "--dry-run"]) == 0
    assert cli.main(["folds", "--input", "base"]) == 0  # the default folds/ is the kit's
    assert (kit / "folds" / "folds.csv").exists() and not (user / "folds").exists()
    assert not list(kit.glob("o")) and not list(kit.glob("f"))


def test_run_sh_passes_the_callers_folder(tmp_path):
    """run.sh from another folder: it changes into the kit's folder and sets SOLUTION_CWD to the caller's
    (a stand-in python prints what it was given; nothing is installed)."""
    kit, user = tmp_path / "kit", tmp_path / "elsewhere"
    kit.mkdir()
    user.mkdir()
    for name in ("run.sh", "setup.cfg", "pyproject.toml"):
        shutil.copy2(REPO / name, kit / name)
    fake = kit / ".venv" / "bin" / "python"
    fake.parent.mkdir(parents=True)
    fake.write_text('#!/bin/sh\n[ "$1" = "-m" ] && [ "$2" = "solution" ] && '
                    'echo "cwd=$PWD caller=$SOLUTION_CWD args=$*"\nexit 0\n')
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "SOLUTION_CWD"}
    for argv in (["train", "tfidf-lr", "--input", "base"], ["--input", "base", "--output", "o"]):
        proc = subprocess.run(["../kit/run.sh", *argv], cwd=user, env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("cwd=")][-1]
        assert line.startswith(f"cwd={kit} caller={user} args=-m solution ")
        assert line.endswith(" ".join(argv))


# --- a real full disk and a real read-only mount (root only: CI) ------------------------------------

def _mount(*args) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="mounting needs root (CI runs as root)")
def test_real_full_disk_and_read_only_mount(env, capsys):
    """A 64 KiB tmpfs as --output fills up while training; a read-only bind mount refuses folds. Both are one
    line naming the path, exit 2, and leave no temp file."""
    small, ro = env.root / "small", env.root / "ro"
    small.mkdir()
    ro.mkdir()
    if not _mount("-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)):
        pytest.skip("cannot mount a tmpfs here")
    try:
        if not (_mount("--bind", str(ro), str(ro)) and _mount("-o", "remount,ro,bind", str(ro))):
            pytest.skip("cannot make a read-only bind mount here")
        env.cli(*FOLDS)
        for argv, fragment in (
                (["train", "tfidf-lr", "--input", "{in}", "--folds-dir", "{folds}", "--output", str(small)],
                 ": no space left on device; free some space"),
                (["folds", "--input", "{in}", "--folds-dir", str(ro / "folds")], f"{ro}/folds: read-only file system")):
            capsys.readouterr()
            assert cli.main(env.fmt(argv)) == 2
            err = capsys.readouterr().err
            assert "Traceback" not in err and err.count("error:") == 1
            assert fragment in err.rstrip("\n").splitlines()[-1], err
        assert not leftovers(small, ro)
        import torch
        from safetensors.torch import save_file

        def save_adapter(argv):  # what saving a LoRA adapter meets on a full disk
            save_file({"x": torch.zeros(1 << 16)}, str(small / "adapter_model.safetensors"))

        capsys.readouterr()
        assert cli.run_main(save_adapter, []) == 2
        assert ": no space left on device; free some space" in capsys.readouterr().err
    finally:
        subprocess.run(["umount", str(ro)], capture_output=True)
        subprocess.run(["umount", str(small)], capture_output=True)


def test_an_os_error_inside_a_rust_librarys_error_is_worded_as_one(tmp_path, capsys):
    """safetensors (saving an adapter) reports a full disk as SafetensorError('... (os error 28) at path ...'):
    the same one line as any OSError."""
    import torch
    from safetensors.torch import save_file

    def main(argv):
        save_file({"x": torch.zeros(3)}, str(tmp_path / "missing" / "a.safetensors"))

    assert cli.run_main(main, []) == 2
    line = capsys.readouterr().err.rstrip("\n")
    assert line.startswith(f"error: {tmp_path}/missing/") and line.endswith(": no such file or directory"), line
