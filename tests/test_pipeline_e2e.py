"""End to end through `solution.cli.main(["run", ...])` with the fast TF-IDF model on small generated data."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from solution import data as data_mod

from conftest import LABELS, checksums


def _mtimes(root: Path, pattern: str) -> dict:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.glob(pattern))}


def _sig_digits(s: str) -> int:
    mant = s.lower().split("e")[0].lstrip("-").replace(".", "").lstrip("0")
    return len(mant)


def test_run_tfidf_end_to_end(make_input, run_cli, tmp_path):
    # sample_submission in another row order than test.csv, train labels in another column order
    d = make_input(sample=lambda df: df.iloc[::-1].reset_index(drop=True),
                   train=lambda df: df[["ID", "Tweet", *reversed(LABELS)]])
    before = checksums(d)
    F, O = tmp_path / "folds", tmp_path / "out"
    code, out, err = run_cli("run", "--models", "tfidf-lr", "--input", d, "--folds-dir", F, "--output", O)
    assert code == 0, err
    assert "Traceback" not in err and "DEMO" not in err
    assert checksums(d) == before  # the run never writes into the input dir
    assert (F / "folds.csv").exists() and (F / "folds.json").exists()

    sample = pd.read_csv(d / "sample_submission.csv", dtype=str)
    raw = (O / "submission.csv").read_text(encoding="utf-8")
    sub = pd.read_csv(O / "submission.csv", dtype=str, keep_default_na=False)
    assert list(sub.columns) == list(sample.columns) == ["ID", *LABELS]
    assert sub["ID"].tolist() == sample["ID"].tolist()  # sample's IDs, in its order
    assert sub["ID"].tolist() != sorted(sub["ID"].tolist())
    assert set(np.unique(sub[LABELS].to_numpy())) <= {"0", "1"}  # integers, not 0.0 / True
    assert raw.splitlines()[0] == ",".join(sample.columns)

    data = data_mod.load(d)
    oof_path = O / "tfidf-lr" / "oof.csv"
    oof_raw = pd.read_csv(oof_path, dtype=str)
    assert list(oof_raw.columns) == ["ID", *LABELS]
    assert oof_raw["ID"].tolist() == data.train["ID"].tolist()  # every train ID, train order
    oof = oof_raw[LABELS].astype(np.float64).to_numpy()
    assert np.isfinite(oof).all() and (oof >= 0).all() and (oof <= 1).all()
    # full precision: the assembled file holds exactly the fold files' values, written repr-exact
    digits = np.array([_sig_digits(s) for s in oof_raw[LABELS].to_numpy().ravel()])
    assert np.median(digits) >= 15, np.median(digits)
    fold = pd.read_csv(F / "folds.csv", dtype={"ID": str}).set_index("ID")["fold"]
    by_id = pd.DataFrame(oof, index=oof_raw["ID"], columns=LABELS)
    for k in range(5):
        part = pd.read_csv(O / "tfidf-lr" / f"fold{k}" / "oof.csv", dtype={"ID": str}).set_index("ID")
        assert set(part.index) == set(fold[fold == k].index)  # each fold's OOF = its validation rows
        np.testing.assert_array_equal(part[LABELS].to_numpy(), by_id.loc[part.index, LABELS].to_numpy())
        assert (O / "tfidf-lr" / f"fold{k}" / "DONE.json").exists()
    test_probs = pd.read_csv(O / "tfidf-lr" / "test.csv", dtype={"ID": str})
    assert test_probs["ID"].tolist() == data.test["ID"].tolist()
    report = json.loads((O / "blend" / "report.json").read_text())
    assert report["models"] == ["tfidf-lr"] and set(report["thresholds"]) == set(LABELS)
    assert "OOF macro-F1" in out

    # rerun: every fold is done, nothing is retrained, the same submission comes out
    done = _mtimes(O, "tfidf-lr/fold*/DONE.json") | _mtimes(O, "tfidf-lr/fold*/model/*")
    sub_bytes = (O / "submission.csv").read_bytes()
    code, out, err = run_cli("run", "--models", "tfidf-lr", "--input", d, "--folds-dir", F, "--output", O)
    assert code == 0, err
    assert "fold(s) [0, 1, 2, 3, 4] already done, skipping" in err
    assert "training fold(s)" not in err
    assert "folds up to date" in err
    assert (_mtimes(O, "tfidf-lr/fold*/DONE.json") | _mtimes(O, "tfidf-lr/fold*/model/*")) == done
    assert (O / "submission.csv").read_bytes() == sub_bytes

    # an unfinished fold (no DONE.json, as after a kill) is the only one redone
    (O / "tfidf-lr" / "fold2" / "DONE.json").unlink()
    code, out, err = run_cli("run", "--models", "tfidf-lr", "--input", d, "--folds-dir", F, "--output", O)
    assert code == 0, err
    assert "fold(s) [0, 1, 3, 4] already done" in err and "training fold(s) [2]" in err
    assert (O / "submission.csv").read_bytes() == sub_bytes  # deterministic model, same result
    assert checksums(d) == before


def test_a_second_seed_is_its_own_model_in_the_blend(make_input, run_cli, tmp_path):
    """`NAME-seedN` trains NAME with seed N into output/NAME-seedN/ (the seed in every artifact path), and the
    blend averages it with the first seed like any other member."""
    d = make_input()
    F, O = tmp_path / "folds", tmp_path / "out"
    code, out, err = run_cli("run", "--models", "tfidf-lr,tfidf-lr-seed3", "--input", d, "--folds-dir", F,
                             "--output", O)
    assert code == 0, err
    rec = json.loads((O / "tfidf-lr-seed3" / "config.json").read_text())
    assert rec["name"] == "tfidf-lr-seed3" and rec["config"]["seed"] == 3
    assert json.loads((O / "tfidf-lr" / "config.json").read_text())["config"]["seed"] == 42
    assert all((O / "tfidf-lr-seed3" / f"fold{k}" / "DONE.json").exists() for k in range(5))
    report = json.loads((O / "blend" / "report.json").read_text())
    assert report["models"] == ["tfidf-lr", "tfidf-lr-seed3"]
    # an average carries its weights; the stacker, when `--stack auto` picks it, has none
    assert report["weights"] == (None if report["stacker"]["used"] else {"tfidf-lr": 0.5, "tfidf-lr-seed3": 0.5})


def test_run_refuses_stale_folds(make_input, run_cli, tmp_path):
    F, O = tmp_path / "folds", tmp_path / "out"
    d1 = make_input("v1")
    code, _, err = run_cli("folds", "--input", d1, "--folds-dir", F)
    assert code == 0, err

    def flip(df):
        df.loc[0, "anger"] = 1 - df.loc[0, "anger"]
        return df

    d2 = make_input("v2", train=flip)
    code, _, err = run_cli("run", "--models", "tfidf-lr", "--input", d2, "--folds-dir", F, "--output", O)
    assert code == 2 and "Traceback" not in err
    assert "--force" in err.strip().splitlines()[-1]
    assert not (O / "submission.csv").exists()


def test_demo_run_without_input_or_credentials(tmp_path, monkeypatch, no_kaggle, run_cli):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    code, out, err = run_cli("run", "--models", "tfidf-lr")
    assert code == 0, err
    assert "DEMO" in err
    sub_path = work / "output" / "demo" / "submission.csv"
    assert sub_path.exists()
    assert not (work / "output" / "submission.csv").exists()  # a demo never lands where `submit` looks
    assert not (work / "input").exists()
    demo_in = work / "output" / "demo" / "input"
    sample = pd.read_csv(demo_in / "sample_submission.csv", dtype=str)
    sub = pd.read_csv(sub_path, dtype=str)
    assert list(sub.columns) == list(sample.columns)
    assert sub["ID"].tolist() == sample["ID"].tolist()
    assert set(np.unique(sub.iloc[:, 1:].to_numpy())) <= {"0", "1"}
    assert (work / "output" / "demo" / "folds" / "folds.csv").exists()

    # --submit on a demo run: refused with a warning, never submitted
    code, out, err = run_cli("run", "--models", "tfidf-lr", "--submit")
    assert code == 0, err
    assert "not submitting: this was a demo run" in err and "DEMO" in err
