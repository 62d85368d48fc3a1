"""What a new user meets: a hint followed as printed fixes the user's own folders; a constant label is named once;
off a terminal progress is whole lines (in a notebook on stdout); the demo's members learn its tweets."""
from __future__ import annotations

import io
import re
import shlex

from conftest import make_input_dir
from test_reliability import TINY_BERT_SETTINGS, build_tiny_bert, read_as_written

from solution import cli, config, demo, log


def _hint(err: str) -> list[str]:
    """The command between backticks in the error line, without `python -m solution`."""
    line = [ln for ln in err.splitlines() if ln.startswith("error:")][-1]
    words = shlex.split(re.search(r"`(python -m solution [^`]+)`", line).group(1))
    return words[3:]


def test_a_hint_followed_as_printed_fixes_the_users_folders_not_the_defaults(tmp_path, monkeypatch, run_cli):
    monkeypatch.chdir(tmp_path)  # where the default folds/ and output/ would go
    inp = make_input_dir(tmp_path / "my data")  # a space: the hint quotes it
    where = ["--input", inp, "--folds-dir", tmp_path / "my-folds", "--output", tmp_path / "my-out"]
    assert run_cli("folds", *where)[0] == 0
    text = (inp / "train.csv").read_text()
    (inp / "train.csv").write_text(text.replace(",0,", ",1,", 1))  # the data changed: the folds are stale
    code, _, err = run_cli("train", "tfidf-lr", *where)
    assert code == 2
    hint = _hint(err)
    assert hint[0] == "folds" and "--force" in hint
    assert run_cli(*hint)[0] == 0
    assert not (tmp_path / "folds").exists() and not (tmp_path / "output").exists()
    assert run_cli("train", "tfidf-lr", *where)[0] == 0
    code, _, err = run_cli("submit", *where, "--dry-run")
    assert code == 2 and _hint(err)[0] == "blend"
    assert run_cli(*_hint(err), "--no-plots")[0] == 0
    assert (tmp_path / "my-out" / "submission.csv").exists() and not (tmp_path / "output").exists()


def test_a_constant_label_is_named_once_in_a_run_of_several_models(tmp_path, run_cli):
    inp = make_input_dir(tmp_path / "input", train=lambda df: df.assign(surprise=0))
    code, _, err = run_cli("run", "--models", "tfidf-lr,tfidf-lr-seed3", "--input", inp, "--folds-dir",
                           tmp_path / "folds", "--output", tmp_path / "out")
    assert code == 0, err
    assert err.count("never positive") == 1 and "label 'surprise' is never positive" in err


def test_ids_with_spaces_reach_the_submission_byte_for_byte(tmp_path, run_cli):
    def spaced(df):
        df.loc[0, "ID"], df.loc[1, "ID"] = " 0042", "0043 "
        return df

    inp = make_input_dir(tmp_path / "input", test=spaced, sample=spaced)
    code, _, err = run_cli("run", "--models", "tfidf-lr", "--input", inp, "--folds-dir", tmp_path / "folds",
                           "--output", tmp_path / "out")
    assert code == 0, err
    sub, sample = (tmp_path / "out" / "submission.csv").read_bytes(), (inp / "sample_submission.csv").read_bytes()
    ids = [line.split(b",")[0] for line in sub.splitlines()]
    assert ids == [line.split(b",")[0] for line in sample.splitlines()] and ids[1:3] == [b" 0042", b"0043 "]
    assert read_as_written(tmp_path / "out" / "tfidf-lr" / "test.csv")["ID"].tolist()[:2] == [" 0042", "0043 "]
    assert run_cli("submit", "--input", inp, "--folds-dir", tmp_path / "folds", "--output", tmp_path / "out",
                   "--dry-run")[0] == 0


# --- output for non-terminals ----------------------------------------------------------------------------------

class NotATerminal(io.StringIO):
    def isatty(self):
        return False


class NotebookStream(NotATerminal):
    """Looks like Jupyter's kernel stream (ipykernel.iostream.OutStream) to the kit."""


NotebookStream.__module__ = "ipykernel.iostream"


def test_off_a_terminal_progress_is_whole_lines_between_the_kits_lines(monkeypatch):
    err = NotATerminal()
    monkeypatch.setattr("sys.stderr", err)
    monkeypatch.setattr(log.Lines, "LINE_AFTER_S", 0.0)
    bar = log.progress(total=3, desc="minilm-lora fold 0", unit="batch")
    for step in range(3):
        bar.update(1)
        bar.set_postfix(epoch=1, loss=f"{0.7 - step / 10:.4f}", refresh=False)
        log.info(f"minilm-lora fold 0 epoch {step + 1}/3: loss 0.7")
    bar.close()
    bar.close()
    for _ in log.progress(range(2), desc="embed"):
        log.info("between")
    lines = err.getvalue().split("\n")
    assert "\r" not in err.getvalue() and lines[-1] == ""
    assert lines[:-1] == [*(f"[solution] minilm-lora fold 0 epoch {e}/3: loss 0.7" for e in (1, 2, 3)),
                          "minilm-lora fold 0: 3/3 batch in 00:00 (epoch=1, loss=0.5000)", "[solution] between",
                          "[solution] between", "embed: 2/2 it in 00:00"]


def test_a_short_pass_off_a_terminal_prints_nothing_and_a_long_one_a_line_every_few_minutes(monkeypatch):
    err, clock = NotATerminal(), [0.0]
    monkeypatch.setattr("sys.stderr", err)
    monkeypatch.setattr(log.time, "monotonic", lambda: clock[0])
    with log.progress(total=10, desc="quick") as bar:
        bar.update(10)
    assert err.getvalue() == ""
    bar = log.progress(total=100, desc="slow", unit="batch")
    for _ in range(100):
        clock[0] += 7.0  # 700 s in all: lines at 5 and 10 minutes, and at the end
        bar.update(1)
    bar.close()
    assert err.getvalue().splitlines() == ["slow: 43/100 batch in 05:01", "slow: 86/100 batch in 10:02",
                                           "slow: 100/100 batch in 11:40"]


def test_in_a_notebook_progress_and_the_kits_lines_go_to_stdout_and_warnings_stay_on_stderr(monkeypatch):
    out, err = NotebookStream(), NotebookStream()
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setattr("sys.stderr", err)
    monkeypatch.setattr(log.Lines, "LINE_AFTER_S", 0.0)
    assert log.in_notebook()
    log.info("training")
    for _ in log.progress(range(2), desc="fold 0"):
        pass
    log.warn("careful")
    assert out.getvalue() == "[solution] training\nfold 0: 2/2 it in 00:00\n"
    assert err.getvalue() == "[solution] WARNING: careful\n"


def test_a_training_run_in_a_notebook_writes_whole_lines_and_nothing_but_warnings_to_stderr(tmp_path, monkeypatch):
    """The real CLI trains a tiny fine-tuned member as the notebook's run cell does (in-process): stdout holds the
    kit's lines and one progress line per fold, each a line of its own; stderr, which Jupyter shades, holds none."""
    from solution.text import prepare

    inp = make_input_dir(tmp_path / "input")
    texts = [t for f in ("train.csv", "test.csv") for t in read_as_written(inp / f)["Tweet"]]
    bert = build_tiny_bert(tmp_path / "tiny-bert", texts + prepare(texts, "tweet"))
    common = ["--input", str(inp), "--folds-dir", str(tmp_path / "folds"), "--output", str(tmp_path / "out")]
    out, err = NotebookStream(), NotebookStream()
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setattr("sys.stderr", err)
    monkeypatch.setattr(log.Lines, "LINE_AFTER_S", 0.0)
    assert cli.main(["folds", *common, "--n-splits", "2"]) == 0
    assert cli.main(["train", "minilm-lora", *common, "--set", f"weights={bert}", *TINY_BERT_SETTINGS]) == 0
    printed = out.getvalue()
    assert "\r" not in printed + err.getvalue() and "%|" not in printed + err.getvalue()
    assert not [ln for ln in err.getvalue().splitlines() if not ln.startswith("[solution] WARNING")]
    progress = [ln for ln in printed.splitlines() if re.fullmatch(r"minilm-lora fold \d: \d+/\d+ batch in .*", ln)]
    assert len(progress) == 2  # one per fold
    assert not [ln for ln in printed.splitlines() if "[solution]" in ln[1:]]  # no line shared


# --- the demo ----------------------------------------------------------------------------------------------------

def test_the_demo_trains_no_member_that_its_data_cannot_teach_and_names_one_the_user_adds():
    assert demo.weak_here(config.profile_models("demo")) == []
    assert "minilm-emb-lr" in config.profile_models("demo")  # a neural member
    notes = demo.weak_here(["tfidf-lr", "minilm-lora", "minilm-top3-ft-seed3"])
    assert [n.split()[0] for n in notes] == ["minilm-lora", "minilm-top3-ft-seed3"]
    assert "expect it weak on the demo" in notes[0]
    assert all(item.split(".", 1)[0] in config.profile_models("demo") for item in config.DEMO_SETTINGS)
