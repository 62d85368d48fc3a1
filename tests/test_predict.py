"""`python -m solution predict`: the last blend's fold models on new tweets, the same labels as the submission,
one-line errors naming the command that makes what is missing, and never a retrain."""
from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import LABELS, make_input_dir

from solution import cli
from solution.models.tfidf import TfidfModel


def _cli(*argv) -> int:
    return cli.main([str(a) for a in argv])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tfidf-lr model trained on a tiny input and blended: {input, folds, output, c1} (c1: the model with C=1)."""
    root = tmp_path_factory.mktemp("predict")
    inp, folds, out = make_input_dir(root / "input"), root / "folds", root / "output"
    common = ["--input", inp, "--folds-dir", folds]
    assert _cli("folds", *common) == 0
    assert _cli("train", "tfidf-lr", *common, "--output", out) == 0
    assert _cli("blend", "tfidf-lr", *common, "--output", out, "--no-plots", "--stack", "off") == 0
    other = root / "output-c1"  # a second, different model for the weighting tests
    assert _cli("train", "tfidf-lr", *common, "--output", other, "--set", "C=1.0") == 0
    return {"root": root, "input": inp, "folds": folds, "output": out, "c1": other / "tfidf-lr"}


@pytest.fixture
def out(trained, tmp_path):
    """A private copy of the trained output dir, free to damage."""
    dst = tmp_path / "output"
    shutil.copytree(trained["output"], dst)
    return dst


def _run(capsys, *argv, stdin=None, monkeypatch=None):
    capsys.readouterr()
    code = _cli("predict", *argv)
    o, e = capsys.readouterr()
    return code, o, e


def _error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def _fold_probs(output: Path, name: str, texts) -> list[np.ndarray]:
    from solution import config as config_mod

    cfg = config_mod.from_dict(json.loads((output / name / "config.json").read_text())["config"])
    return [TfidfModel.load(output / name / f"fold{k}" / "model", cfg, LABELS).predict(texts) for k in range(5)]


def _report(output: Path) -> dict:
    return json.loads((output / "blend" / "report.json").read_text())


def _write_report(output: Path, rep: dict) -> None:
    (output / "blend" / "report.json").write_text(json.dumps(rep))


def test_table_for_tweets_on_the_command_line(trained, capsys):
    code, o, e = _run(capsys, "--output", trained["output"], "so happy today, love it", "this is awful")
    assert code == 0, e
    assert o.count("emotions:") == 2 and "[1] so happy today, love it" in o and "[2] this is awful" in o
    for lab in LABELS:
        assert o.count(f"  {lab} ") == 2
    assert "single model tfidf-lr (nothing to blend); folds averaged by mean" in o.splitlines()[-1]


def test_same_labels_as_the_submission(trained, capsys):
    """test.csv through predict gives exactly the submission's 0/1 labels, with the blend's thresholds."""
    code, o, e = _run(capsys, "--output", trained["output"], "--file", trained["input"] / "test.csv", "--format", "csv")
    assert code == 0, e
    got = pd.read_csv(io.StringIO(o), dtype={"ID": str}, keep_default_na=False)
    assert list(got.columns) == ["ID", "Tweet", "emotions", *LABELS]
    sub = pd.read_csv(trained["output"] / "submission.csv", dtype={"ID": str}).set_index("ID")
    pred = pd.DataFrame([[int(lab in e.split()) for lab in LABELS] for e in got["emotions"]], columns=LABELS,
                        index=got["ID"])
    pd.testing.assert_frame_equal(pred.loc[sub.index], sub[LABELS].astype(int), check_names=False)
    # probabilities: the mean over the five fold models, at full precision
    test = pd.read_csv(trained["input"] / "test.csv", dtype=str, keep_default_na=False)
    want = np.mean(_fold_probs(trained["output"], "tfidf-lr", test["Tweet"].tolist()), axis=0)
    np.testing.assert_allclose(got[LABELS].to_numpy(), want, rtol=0, atol=1e-15)
    assert got["Tweet"].tolist() == test["Tweet"].tolist()  # quotes, commas and newlines survive the CSV


def test_json_and_stdin(trained, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("happy happy joy\n\n   \nscared and sad\r\n"))
    code, o, e = _run(capsys, "--output", trained["output"], "--format", "json")
    assert code == 0, e
    doc = json.loads(o)
    rep = _report(trained["output"])
    assert doc["models"] == ["tfidf-lr"] and doc["thresholds"] == rep["thresholds"]
    rows = doc["predictions"]
    assert [r["tweet"] for r in rows] == ["happy happy joy", "scared and sad"]  # blank lines skipped
    assert [r["ID"] for r in rows] == ["1", "2"]
    for r in rows:
        assert set(r["probabilities"]) == set(LABELS)
        assert r["emotions"] == [lab for lab in LABELS if r["probabilities"][lab] >= rep["thresholds"][lab]]


def test_weights_fold_average_and_min_one_come_from_the_report(trained, out, capsys):
    shutil.copytree(trained["c1"], out / "tfidf-c1")
    rep = _report(out)
    texts = ["happy love hope", "ugh gross angry", "soon wow"]
    a, b = _fold_probs(out, "tfidf-lr", texts), _fold_probs(out, "tfidf-c1", texts)
    rep.update(models=["tfidf-lr", "tfidf-c1"], weights={"tfidf-lr": 0.25, "tfidf-c1": 0.75}, fold_average="geometric")
    _write_report(out, rep)
    code, o, e = _run(capsys, "--output", out, "--format", "json", *texts)
    assert code == 0, e
    got = np.array([[r["probabilities"][lab] for lab in LABELS] for r in json.loads(o)["predictions"]])
    geo = [np.exp(np.log(np.clip(np.array(p), 1e-7, 1)).mean(0)) for p in (a, b)]
    np.testing.assert_allclose(got, 0.25 * geo[0] + 0.75 * geo[1], rtol=1e-12)

    # thresholds no tweet reaches: no labels, unless the blend chose at least one label per tweet
    rep.update(thresholds={lab: 0.999 for lab in LABELS}, min_one_label={"mode": "off", "used": False})
    _write_report(out, rep)
    code, o, _ = _run(capsys, "--output", out, "--format", "json", *texts)
    assert code == 0 and all(r["emotions"] == [] for r in json.loads(o)["predictions"])
    code, o, _ = _run(capsys, "--output", out, *texts)
    assert o.count("emotions: (none)") == 3
    rep["min_one_label"] = {"mode": "on", "used": True}
    _write_report(out, rep)
    code, o, _ = _run(capsys, "--output", out, "--format", "json", *texts)
    assert code == 0 and all(len(r["emotions"]) == 1 for r in json.loads(o)["predictions"])

    # a zero-weight model is not even loaded
    shutil.rmtree(out / "tfidf-c1")
    rep["weights"] = {"tfidf-lr": 1.0, "tfidf-c1": 0.0}
    _write_report(out, rep)
    assert _run(capsys, "--output", out, *texts)[0] == 0


def test_never_writes_or_retrains(out, capsys):
    def snapshot():
        return {p.relative_to(out): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
                for p in sorted(out.rglob("*")) if p.is_file()}

    before = snapshot()
    assert _run(capsys, "--output", out, "a tweet", "--format", "csv")[0] == 0
    assert snapshot() == before


@pytest.mark.parametrize("damage, fragment", [
    (lambda o: (o / "blend" / "report.json").unlink(), "no blend report"),
    (lambda o: (o / "blend" / "report.json").write_text("{not json"), "not valid JSON"),
    (lambda o: (o / "blend" / "report.json").write_text('{"models": ["tfidf-lr"]}'), "incomplete blend report"),
    (lambda o: shutil.rmtree(o / "tfidf-lr"), "python -m solution train tfidf-lr"),
    (lambda o: (o / "tfidf-lr" / "fold2" / "DONE.json").unlink(), "fold model(s) [2] missing or incomplete"),
    (lambda o: (o / "tfidf-lr" / "fold3" / "DONE.json").write_text('{"fold": 3}'),
     "fold model(s) [3] missing or incomplete"),
    (lambda o: shutil.rmtree(o / "tfidf-lr" / "fold4" / "model"), "fold model(s) [4] missing or incomplete"),
    (lambda o: (o / "tfidf-lr" / "fold1" / "model" / "model.pkl").write_bytes(b"\x80\x04junk"),
     "cannot load the fold model"),
    (lambda o: (o / "tfidf-lr" / "fold1" / "model" / "model.pkl").unlink(), "cannot load the fold model"),
], ids=["no-report", "bad-report", "incomplete-report", "no-model-dir", "fold-not-done", "done-without-fingerprint",
        "no-fold-model",
        "corrupt-pickle", "missing-pickle"])
def test_missing_or_incomplete_state_is_one_line(out, capsys, damage, fragment):
    damage(out)
    code, o, e = _run(capsys, "--output", out, "a tweet")
    assert code == 2 and o == ""
    line = _error_line(e)
    assert fragment in line
    if "report" in fragment or "JSON" in fragment:
        assert "python -m solution blend" in line
    else:
        assert "python -m solution train tfidf-lr" in line


def test_no_tweets(out, capsys, monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stdin", Tty(""))
    code, _, e = _run(capsys, "--output", out)
    assert code == 2 and "no tweets" in _error_line(e) and "--file" in _error_line(e)
    monkeypatch.setattr("sys.stdin", io.StringIO("\n  \n"))
    code, _, e = _run(capsys, "--output", out)
    assert code == 2 and "no tweets on stdin" in _error_line(e)


def test_file_errors(trained, out, capsys, tmp_path):
    bad = tmp_path / "tweets.csv"
    bad.write_text("ID,text\n1,hello\n", encoding="utf-8")
    code, _, e = _run(capsys, "--output", out, "--file", bad)
    assert code == 2 and "missing column(s) Tweet" in _error_line(e)
    code, _, e = _run(capsys, "--output", out, "--file", tmp_path / "nope.csv")
    assert code == 2 and "file not found" in _error_line(e)
    code, _, e = _run(capsys, "--output", out, "--file", trained["input"] / "test.csv", "also a tweet")
    assert code == 2 and "not both" in _error_line(e)


def test_retrained_after_blend_warns(out, capsys):
    import os
    import time

    done = out / "tfidf-lr" / "fold0" / "DONE.json"
    t = time.time() + 60
    os.utime(done, (t, t))
    code, _, e = _run(capsys, "--output", out, "a tweet")
    assert code == 0 and "retrained after the last blend" in e


def test_default_output_falls_back_to_the_demo(trained, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, e = _run(capsys, "a tweet")
    assert code == 2 and "output/blend/report.json: no blend report" in _error_line(e)
    shutil.copytree(trained["output"], tmp_path / "output" / "demo")
    code, o, e = _run(capsys, "a tweet")
    assert code == 0 and "DEMO" in e and "emotions:" in o


# --- what predict reads: text, never binary; progress when there are many tweets ---------------------------

@pytest.mark.parametrize("data, fragment", [
    (b"one tweet\na \x00 NUL\n", "stdin: a NUL byte (binary data) on line 2; give the tweets as UTF-8 text"),
    (b"caf\xe9 time\n", "stdin: not UTF-8 (byte 0xe9) on line 1; give the tweets as UTF-8 text"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "stdin: not UTF-8 (byte 0x89) on line 1"),
    (b"\x1f\x8b\x08\x00\x00\x00\x00\x00", "stdin: not UTF-8 (byte 0x8b) on line 1"),
], ids=["nul", "latin-1", "png", "gzip"])
def test_binary_stdin_is_one_line(out, capsys, monkeypatch, data, fragment):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    code, o, e = _run(capsys, "--output", out)
    assert code == 2 and o == "" and fragment in _error_line(e)


@pytest.mark.parametrize("data, fragment", [
    (b"ID,Tweet\n1,ok\n2,a \x00 b\n", "tweets.csv, row 3: a NUL byte (binary data); save the file as UTF-8 text"),
    (b"ID,Tweet\n1,caf\xe9\n", "tweets.csv, row 2: not UTF-8 (byte 0xe9"),
], ids=["nul", "latin-1"])
def test_binary_file_is_one_line(out, capsys, tmp_path, data, fragment):
    (tmp_path / "tweets.csv").write_bytes(data)
    code, o, e = _run(capsys, "--output", out, "--file", tmp_path / "tweets.csv")
    assert code == 2 and o == "" and fragment in _error_line(e)


def test_a_tweet_argument_that_is_not_utf8_is_one_line(out, capsys):
    """Bytes the shell passes that are not UTF-8 reach Python as lone surrogates."""
    code, o, e = _run(capsys, "--output", out, "fine", "caf\udce9")
    assert code == 2 and o == "" and "tweet argument 2: not UTF-8 (byte 0xe9)" in _error_line(e)


def test_utf8_stdin_with_a_bom_and_crlf_reads_as_written(out, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO("\ufeffone 😂\r\n\r\ntwo, é\r\n".encode()),
                                                      encoding="utf-8"))
    code, o, _ = _run(capsys, "--output", out, "--format", "json")
    assert code == 0 and [r["tweet"] for r in json.loads(o)["predictions"]] == ["one 😂", "two, é"]


def test_many_tweets_show_progress_and_a_few_do_not(out, capsys, monkeypatch):
    """Off a terminal progress is whole lines, at the end of a pass long enough to need one (here: any)."""
    from solution import log
    from solution.predict import PROGRESS_FROM

    monkeypatch.setattr(log.Lines, "LINE_AFTER_S", 0.0)
    many = "\n".join(f"tweet {i} so happy" for i in range(PROGRESS_FROM))
    monkeypatch.setattr("sys.stdin", io.StringIO(many))
    code, o, e = _run(capsys, "--output", out, "--format", "csv")
    assert code == 0 and len(o.splitlines()) == PROGRESS_FROM + 1
    assert f"predict {PROGRESS_FROM} tweets: 5/5" in e  # five fold models
    code, _, e = _run(capsys, "--output", out, "a", "few", "tweets")
    assert code == 0 and "predict 3 tweets" not in e


def test_verbose_is_accepted(out, capsys):
    code, o, e = _run(capsys, "--output", out, "--verbose", "a tweet")
    assert code == 0 and "emotions:" in o and "error" not in e
