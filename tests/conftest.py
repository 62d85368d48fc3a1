"""Shared fixtures: small generated competition files (never the real data) and CLI helpers."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from solution.data import DEFAULT_LABELS
from solution.io import write_csv

LABELS = list(DEFAULT_LABELS)

# tweets that stress the CSV round trip: emoji, quotes, commas, newlines, non-ASCII letters
TRICKY = [
    'she said "no way", then left 😂',
    "line one\nline two, with a comma",
    "emoji only ❤️🔥",
    "'single' and \"double\" quotes",
    "crème brûlée, naïve café — ¿qué?",
    "trailing comma,",
    "#hashtag @user http://t.co/x",
    "tab\tinside",
]


def make_frames(n_train: int = 60, n_test: int = 20, seed: int = 0, labels=None):
    """train/test/sample DataFrames: every label has >= 3 positives and >= 3 negatives in train."""
    labels = list(labels or LABELS)
    rng = np.random.default_rng(seed)
    y = (rng.random((n_train, len(labels))) < 0.3).astype(np.int8)
    for j in range(len(labels)):  # guarantee each label is present (and absent) several times
        y[[(3 * j + r) % n_train for r in range(3)], j] = 1
        y[[(3 * j + 40 + r) % n_train for r in range(3)], j] = 0
    words = ["happy", "sad", "angry", "scared", "love", "hope", "wow", "ugh", "trust", "soon", "gross"]
    tweets = []
    for i in range(n_train + n_test):
        t = " ".join(rng.choice(words, size=4))
        if i % 7 == 0:
            t = TRICKY[(i // 7) % len(TRICKY)] + " " + t
        tweets.append(t)
    train = pd.DataFrame({"ID": [f"tr-{i:04d}" for i in range(n_train)], "Tweet": tweets[:n_train]})
    for j, lab in enumerate(labels):
        train[lab] = y[:, j]
    test_ids = [f"te-{i:04d}" for i in range(n_test)]
    test = pd.DataFrame({"ID": test_ids, "Tweet": tweets[n_train:]})
    sample = pd.DataFrame({"ID": test_ids})
    for lab in labels:
        sample[lab] = 0
    return train, test, sample


def _write(obj, path: Path) -> None:
    if isinstance(obj, bytes):
        path.write_bytes(obj)
    elif isinstance(obj, str):
        path.write_bytes(obj.encode("utf-8"))
    else:
        write_csv(obj, path)


def make_input_dir(directory: Path, train=None, test=None, sample=None, drop=(), **frame_kwargs) -> Path:
    """Write train.csv/test.csv/sample_submission.csv into `directory`.

    train/test/sample may be: None (generated), a DataFrame, a callable DataFrame -> DataFrame applied to
    the generated frame, or str/bytes written verbatim. `drop` lists file names not to write.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    frames = dict(zip(("train", "test", "sample"), make_frames(**frame_kwargs)))
    for key, fname, override in (("train", "train.csv", train), ("test", "test.csv", test),
                                 ("sample", "sample_submission.csv", sample)):
        if fname in drop:
            continue
        obj = frames[key]
        if callable(override):
            obj = override(obj.copy())
        elif override is not None:
            obj = override
        _write(obj, directory / fname)
    return directory


@pytest.fixture
def make_input(tmp_path):
    """make_input(name="input", **overrides) -> Path of a fresh input dir under tmp_path (see make_input_dir)."""
    counter = {"n": 0}

    def _make(name: str | None = None, **overrides) -> Path:
        counter["n"] += 1
        return make_input_dir(tmp_path / (name or f"input{counter['n']}"), **overrides)

    return _make


def checksums(directory: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(directory).iterdir()) if p.is_file()}


@pytest.fixture
def run_cli(capsys):
    """run_cli(*argv) -> (exit code, stdout, stderr) through the real entry point solution.cli.main."""
    from solution.cli import main

    def _run(*argv):
        capsys.readouterr()
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return _run


@pytest.fixture
def no_kaggle(monkeypatch, tmp_path):
    """No kaggle credentials anywhere: KAGGLE_* unset, KAGGLE_CONFIG_DIR an empty dir."""
    import os

    for k in list(os.environ):
        if k.startswith("KAGGLE_"):
            monkeypatch.delenv(k, raising=False)
    empty = tmp_path / "kaggle-config-empty"
    empty.mkdir()
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(empty))
    return empty
