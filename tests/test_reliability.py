"""Reliability: what goes wrong in real use, driven through the real CLI (solution.cli.main), in-process.

One table, CASES: (id, mutate, argv, expected exit code, expected message fragment). Each case starts from
a freshly written valid tiny input dir, lets `mutate` break it (or build some state first, e.g. folds and
a trained model), then runs one command and checks, besides the code and the message:
  - a failure is one line on stderr starting with "error:", with no traceback;
  - nothing in the input dir changed (sha256 of every file before and after);
  - no half-written output: no *.tmp / *.partial under the output and folds dirs, and no
    submission.csv when the run failed.
Then two scenario tests: a training run SIGKILLed in the middle of a fold and rerun gives byte-identical
OOF to an uninterrupted run, and a (fake) kaggle key never shows up in anything the kit prints or writes.
"""
from __future__ import annotations

import hashlib
import os
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

from solution import cli

from conftest import LABELS, make_input_dir

REPO = Path(__file__).resolve().parents[1]


# --- the harness -----------------------------------------------------------------------------------

@dataclass
class Env:
    root: Path
    input: Path
    folds: Path
    output: Path

    def fmt(self, argv) -> list[str]:
        m = {"{in}": self.input, "{folds}": self.folds, "{out}": self.output}
        return [str(m.get(a, a)) for a in argv]

    def cli(self, *argv) -> None:
        """A setup step that must succeed (its output is discarded by the harness)."""
        code = cli.main(self.fmt(argv))
        assert code == 0, f"setup step {argv} failed"

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


def oof_out_of_range(text):
    lines = text.split("\n")
    cells = lines[1].split(",")
    cells[3] = "1.5"
    lines[1] = ",".join(cells)
    return "\n".join(lines)


# --- checks after a successful run -----------------------------------------------------------------

def submission_ok(env):
    sub = pd.read_csv(env.output / "submission.csv", dtype=str)
    sample = pd.read_csv(env.input / "sample_submission.csv", dtype=str, encoding="utf-8-sig")
    assert list(sub.columns) == list(sample.columns)
    assert sub["ID"].tolist() == [i.strip() for i in sample["ID"]]
    assert set(sub[LABELS].stack()) <= {"0", "1"}
    oof = pd.read_csv(env.output / "tfidf-lr" / "oof.csv", dtype={"ID": str})
    train = pd.read_csv(env.input / "train.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert len(oof) == len(train)  # no tweet lost or split by quotes, newlines, CR, BOM
    assert oof["ID"].tolist() == train["ID"].str.strip().tolist()


def folds_ok(env):
    assert len(pd.read_csv(env.folds / "folds.csv")) == 60


# (id, mutate, argv, exit code, message fragment: in the error line, or for code 0 in stderr (a warning))
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
    # values
    ("duplicate-train-ids", dup_id("train.csv"), RUN, 2, "train.csv, row 7, column 'ID': duplicate ID 'tr-0002'"),
    ("duplicate-test-ids", dup_id("test.csv"), RUN, 2, "test.csv, row 7, column 'ID': duplicate ID 'te-0002'"),
    ("label-2", set_cell("train.csv", 4, "joy", "2"), RUN, 2,
     "train.csv, row 6, column 'joy': label must be 0 or 1, got '2'"),
    ("label-blank", set_cell("train.csv", 8, "sadness", ""), RUN, 2,
     "train.csv, row 10, column 'sadness': label must be 0 or 1, got a blank"),
    ("label-nan", set_cell("train.csv", 0, "trust", "nan"), RUN, 2,
     "train.csv, row 2, column 'trust': label must be 0 or 1, got 'nan'"),
    ("label-float", set_cell("train.csv", 2, "anger", "1.0"), RUN, 2, "column 'anger': label must be 0 or 1, got '1.0'"),
    ("test-sample-ids-differ", set_cell("sample_submission.csv", 4, "ID", "te-9999"), RUN, 2,
     "test IDs differ from sample_submission IDs"),
    # state
    ("no-folds-yet", lambda env: None, TRAIN, 2, "no folds yet; make them with `python -m solution folds"),
    ("stale-folds", steps(do(*FOLDS), flip_label), TRAIN, 2, "was made from other train data"),
    ("stale-folds-not-rebuilt-silently", steps(do(*FOLDS), flip_label), FOLDS, 2, "--force"),
    ("corrupt-folds-json", steps(do(*FOLDS), rewrite("{folds}/folds.json", lambda t: t[: len(t) // 2])), TRAIN, 2,
     "folds.json: not valid JSON"),
    ("folds-csv-without-fold-column", steps(do(*FOLDS), rewrite("{folds}/folds.csv", lambda t: t.replace(",fold", ",k", 1))),
     TRAIN, 2, "folds.csv"),
    ("model-trained-with-other-folds", steps(do(*FOLDS), do(*TRAIN), do(*FOLDS, "--force", "--fold-seed", "7")),
     BLEND, 2, "was trained with other folds"),
    ("train-into-other-folds-model", steps(do(*FOLDS), do(*TRAIN), do(*FOLDS, "--force", "--fold-seed", "7")),
     TRAIN, 2, "holds a model trained with other folds or data"),
    ("older-config", steps(do(*FOLDS), do(*TRAIN)), (*TRAIN, "--set", "C=1.0"), 2,
     "holds a model trained with another config (differs in: C)"),
    ("incomplete-model", steps(do(*FOLDS), do(*TRAIN, "--folds", "0,2")), BLEND, 2,
     "fold(s) [1, 3, 4] not trained; run `python -m solution train tfidf-lr`"),
    ("nothing-to-blend", do(*FOLDS), BLEND, 2, "no trained models to blend"),
    ("oof-out-of-range", steps(do(*FOLDS), do(*TRAIN), rewrite("{out}/tfidf-lr/fold0/oof.csv", oof_out_of_range)),
     BLEND, 2, "not in [0, 1]"),
    ("no-submission-to-submit", do(*FOLDS), SUBMIT, 2, "make it with `python -m solution blend`"),
    ("predict-without-blend", steps(do(*FOLDS), do(*TRAIN)), PREDICT, 2, "make it with `python -m solution blend`"),
    ("predict-model-gone", steps(do(*FOLDS), do(*TRAIN), do(*BLEND, "tfidf-lr"),
                                 lambda env: shutil.rmtree(env.output / "tfidf-lr" / "fold3")),
     PREDICT, 2, "fold model(s) [3] missing or incomplete; finish them with `python -m solution train tfidf-lr"),
    # arguments
    ("unknown-model", do(*FOLDS), ("train", "tfidf-xl", *COMMON), 2, "unknown model 'tfidf-xl'; known models:"),
    ("bad-setting-value", do(*FOLDS), (*TRAIN, "--set", "C=lots"), 2, "--set C=lots: expected float"),
    ("invalid-setting", do(*FOLDS), (*TRAIN, "--set", "C=-1"), 2, "C must be > 0"),
    ("fold-out-of-range", do(*FOLDS), (*TRAIN, "--folds", "7"), 2, "folds are 0..4"),
]

AFTER: dict[str, Callable[[Env], None]] = {
    name: submission_ok for name, _, argv, code, _ in CASES if code == 0 and argv == RUN}


@pytest.fixture
def env(tmp_path, monkeypatch, no_kaggle):
    monkeypatch.chdir(tmp_path)  # nothing may land in the repo, whatever a default dir is
    return Env(tmp_path, make_input_dir(tmp_path / "input"), tmp_path / "folds", tmp_path / "output")


@pytest.mark.parametrize("case_id, mutate, argv, code, fragment", CASES, ids=[c[0] for c in CASES])
def test_case(env, capsys, case_id, mutate, argv, code, fragment):
    mutate(env)
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
        assert fragment in errors[0], errors[0]
        assert had_submission or not (env.output / "submission.csv").exists()
    assert sha_tree(env.input) == before, "the input dir changed"
    assert not leftovers(env.output, env.folds)


def test_enough_cases():
    assert len(CASES) >= 25 and len({c[0] for c in CASES}) == len(CASES)


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
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
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
                busy = [k for k in range(1, 5) if (mdir / f"fold{k}").is_dir() and not (mdir / f"fold{k}" / "DONE.json").exists()]
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
    assert mid is not None, "the run ended before it was killed mid-fold:\n" + (env.root / "victim.log").read_text()[-3000:]
    assert victim.returncode == -signal.SIGKILL
    assert not (mdir / f"fold{mid}" / "DONE.json").exists() and not (mdir / "oof.csv").exists()

    rerun = subprocess.run(cmd, env=sub_env, cwd=env.root, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "already done, skipping" in rerun.stderr  # resumed, not started over
    for rel in ["oof.csv", "test.csv", *[f"fold{k}/oof.csv" for k in range(5)], *[f"fold{k}/test.csv" for k in range(5)]]:
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
    if importlib.util.find_spec("solution.kernel") is not None:  # the notebook, where the kit has one
        from solution import kernel

        run("kernel", *COMMON, "--models", "tfidf-lr", code=0)
        notebooks = list(env.output.rglob("*.ipynb"))
        assert notebooks
        if hasattr(kernel, "read_archive"):  # and every file embedded in it
            for nb in notebooks:
                for name, blob in kernel.read_archive(nb).items():
                    assert FAKE_KEY.encode() not in blob, name

    for text in printed:
        assert FAKE_KEY not in text
    written = [p for d in (env.output, env.folds, env.root) for p in d.rglob("*")
               if p.is_file() and "bin" not in p.parent.name]
    assert any(p.name == "submission.csv" for p in written)
    for p in written:
        assert FAKE_KEY.encode() not in p.read_bytes(), p
