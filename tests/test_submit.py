"""Submission checks and `python -m solution submit` with a fake `kaggle` executable (never the real one)."""
from __future__ import annotations

import hashlib
import json
import os
import stat
import sys

import pandas as pd
import pytest

from solution import cli
from solution.blend import submission
from solution.data import ID, load
from solution.demo import write_demo
from solution.errors import UserError
from solution.io import write_json
from solution.kaggle import submit as submit_mod

KEY = "s3cr3t-kaggle-key-0123456789"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    inp = tmp_path_factory.mktemp("submit") / "input"
    write_demo(inp)
    return load(inp)


@pytest.fixture
def env(demo, tmp_path, monkeypatch):
    """A clean kaggle environment (no credentials anywhere), a valid submission and a fake `kaggle` on PATH."""
    for var in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle-config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    out = tmp_path / "output"
    sub = demo.sample.copy()
    for lab in demo.labels:
        sub[lab] = (pd.util.hash_array(sub[ID].to_numpy() + lab) % 2).astype(int)
    submission.write(sub, demo.sample, out / "submission.csv")
    bin_dir, log = tmp_path / "bin", tmp_path / "kaggle-argv.json"
    bin_dir.mkdir()
    fake = bin_dir / "kaggle"
    fake.write_text(f"#!{sys.executable}\n"
                    "import json, os, sys\n"
                    "open(os.environ['FAKE_KAGGLE_LOG'], 'w').write(json.dumps(sys.argv[1:]))\n"
                    "if os.environ.get('FAKE_KAGGLE_FAIL'):\n"
                    "    print('401 Unauthorized for key ' + os.environ.get('KAGGLE_KEY', ''), file=sys.stderr)\n"
                    "    sys.exit(1)\n"
                    "print('Successfully submitted to the competition')\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_KAGGLE_LOG", str(log))
    args = ["--input", str(demo.input_dir), "--output", str(out)]
    return {"out": out, "sub": out / "submission.csv", "log": log, "args": args, "tmp": tmp_path}


def creds(monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", KEY)


# --- the submission check ----------------------------------------------------------------------------

def _good(demo) -> pd.DataFrame:
    sub = demo.sample.copy()
    for lab in demo.labels:
        sub[lab] = 0
    return sub


def test_check_accepts_a_good_submission(demo):
    submission.check(_good(demo), demo.sample)
    submission.check(_good(demo).astype(str), demo.sample)


@pytest.mark.parametrize("breakage, message", [
    (lambda s, labs: s.assign(**{ID: ["x" + i for i in s[ID]]}), "IDs differ"),
    (lambda s, labs: s.assign(**{ID: list(s[ID][:-1]) + ["not-a-test-id"]}), "IDs differ"),
    (lambda s, labs: s.iloc[::-1].reset_index(drop=True), "order differs"),
    (lambda s, labs: pd.concat([s.iloc[1:2], s.iloc[:1], s.iloc[2:]]).reset_index(drop=True), "order differs"),
    (lambda s, labs: s.iloc[:-1], "rows"),
    (lambda s, labs: pd.concat([s, s.iloc[:1]]).reset_index(drop=True), "rows"),
    (lambda s, labs: s.drop(columns=[labs[0]]), "columns"),
    (lambda s, labs: s.assign(extra=0), "columns"),
    (lambda s, labs: s[[ID, *labs[::-1]]], "columns"),
    (lambda s, labs: s.rename(columns={ID: "id"}), "columns"),
    (lambda s, labs: s.assign(**{labs[2]: [2] + [0] * (len(s) - 1)}), "not 0 or 1"),
    (lambda s, labs: s.assign(**{labs[0]: [0.5] * len(s)}), "not 0 or 1"),
    (lambda s, labs: s.assign(**{labs[-1]: ["yes"] + ["0"] * (len(s) - 1)}), "not 0 or 1"),
    (lambda s, labs: s.assign(**{labs[1]: [""] + ["1"] * (len(s) - 1)}), "not 0 or 1"),
    (lambda s, labs: s.assign(**{labs[1]: [-1] + [1] * (len(s) - 1)}), "not 0 or 1"),
])
def test_check_catches_every_failure(demo, breakage, message):
    bad = breakage(_good(demo), demo.labels)
    with pytest.raises(UserError, match=message):
        submission.check(bad, demo.sample)


def test_write_never_writes_a_bad_submission(demo, tmp_path):
    with pytest.raises(UserError):
        submission.write(_good(demo).iloc[::-1].reset_index(drop=True), demo.sample, tmp_path / "s.csv")
    assert not (tmp_path / "s.csv").exists() and not list(tmp_path.iterdir())


def test_submit_refuses_a_bad_file_before_anything_runs(env, monkeypatch, capsys):
    creds(monkeypatch)
    df = pd.read_csv(env["sub"], dtype=str)
    bad = env["tmp"] / "bad.csv"
    df.iloc[::-1].to_csv(bad, index=False)
    rc = cli.main(["submit", "--file", str(bad), *env["args"]])
    assert rc == 2 and "order differs" in capsys.readouterr().err
    assert not env["log"].exists()
    assert cli.main(["submit", "--file", str(env["tmp"] / "missing.csv"), *env["args"]]) == 2
    assert "not found" in capsys.readouterr().err


# --- submitting --------------------------------------------------------------------------------------

def test_submit_runs_kaggle_with_the_expected_argv(env, monkeypatch, capsys):
    creds(monkeypatch)
    rc = cli.main(["submit", "-m", "my blend", "--competition", "some-comp", *env["args"]])
    assert rc == 0
    argv = json.loads(env["log"].read_text())
    assert argv == ["competitions", "submit", "-c", "some-comp", "-f", str(env["sub"]), "-m", "my blend"]
    cap = capsys.readouterr()
    assert "Successfully submitted" in cap.out
    assert KEY not in cap.out + cap.err


def test_submit_default_competition_and_message_from_report(env, monkeypatch):
    creds(monkeypatch)
    sha = hashlib.sha256(env["sub"].read_bytes()).hexdigest()
    write_json({"models": ["tfidf-lr", "minilm-lora"], "weights_info": {"method": "optimize"},
                "submission_sha256": sha, "threshold_selection": {"shrink": 0.25},
                "scores": {"blend": {"at_tuned": {"macro_f1": 0.61234}, "cv_macro_f1": 0.6001}}},
               env["out"] / "blend" / "report.json")
    assert cli.main(["submit", *env["args"]]) == 0
    argv = json.loads(env["log"].read_text())
    assert argv[:4] == ["competitions", "submit", "-c", "emotion-detection-spring-2024"]
    msg = argv[argv.index("-m") + 1]
    assert "tfidf-lr+minilm-lora" in msg and "OOF macro-F1 0.6123" in msg and "0.6001 CV" in msg
    # a report describing another file is not quoted as this file's score
    write_json({"models": ["x"], "submission_sha256": "0" * 64, "scores": {}}, env["out"] / "blend" / "report.json")
    assert "macro-F1" not in submit_mod.default_message(env["sub"])
    # a report not of the kit's shape (read checked): the plain message, not "t+f+i+d+f+-+l+r"
    write_json({"models": "tfidf-lr", "submission_sha256": sha, "scores": {"blend": {"at_tuned": {"macro_f1": 0.6}}}},
               env["out"] / "blend" / "report.json")
    assert submit_mod.default_message(env["sub"]) == f"solution: {env['sub'].name}"


def test_pipeline_signature_submit(env, demo, monkeypatch, capsys):
    creds(monkeypatch)
    submit_mod.submit(env["sub"], demo.sample, None, "from run --submit")
    argv = json.loads(env["log"].read_text())
    assert argv == ["competitions", "submit", "-c", "emotion-detection-spring-2024", "-f", str(env["sub"]),
                    "-m", "from run --submit"]


def test_submit_without_credentials_exits_2_naming_what_to_set(env, capsys):
    rc = cli.main(["submit", "-m", "x", *env["args"]])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: no kaggle credentials") and len(err.strip().splitlines()) == 1
    for what in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY", "kaggle.json"):
        assert what in err
    assert not env["log"].exists()  # kaggle never ran


def test_submit_failure_is_one_line_and_never_shows_the_key(env, monkeypatch, capsys):
    creds(monkeypatch)
    monkeypatch.setenv("FAKE_KAGGLE_FAIL", "1")
    rc = cli.main(["submit", "-m", "x", *env["args"]])
    cap = capsys.readouterr()
    assert rc == 2 and "401 Unauthorized" in cap.err
    assert KEY not in cap.out + cap.err and "***" in cap.err


def test_dry_run_needs_no_credentials_and_runs_nothing(env, capsys):
    rc = cli.main(["submit", "--dry-run", "-m", "try it", "--competition", "c-1", *env["args"]])
    out = capsys.readouterr().out
    assert rc == 0
    assert "kaggle competitions submit -c c-1 -f" in out and str(env["sub"]) in out and "'try it'" in out
    assert not env["log"].exists()


def test_demo_data_is_never_submitted(env, monkeypatch, capsys, tmp_path):
    creds(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KAGGLE_KEY")  # no credentials -> no download -> the demo set
    rc = cli.main(["submit"])
    assert rc == 2 and "demo" in capsys.readouterr().err
    assert not env["log"].exists()


def test_submit_help(capsys):
    with pytest.raises(SystemExit) as e:
        submit_mod.main(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0
    for opt in ("--message", "--dry-run", "--file", "--competition", "KAGGLE_API_TOKEN"):
        assert opt in out
