"""End to end through `solution.cli.main(["run", ...])` with the fast TF-IDF model on small generated data."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from conftest import LABELS, checksums

from solution import data as data_mod


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
    folds_dir, out_dir = tmp_path / "folds", tmp_path / "out"
    code, out, err = run_cli("run", "--models", "tfidf-lr", "--input", d, "--folds-dir", folds_dir, "--output", out_dir)
    assert code == 0, err
    assert "Traceback" not in err and "DEMO" not in err
    assert checksums(d) == before  # the run never writes into the input dir
    assert (folds_dir / "folds.csv").exists() and (folds_dir / "folds.json").exists()

    sample = pd.read_csv(d / "sample_submission.csv", dtype=str)
    raw = (out_dir / "submission.csv").read_text(encoding="utf-8")
    sub = pd.read_csv(out_dir / "submission.csv", dtype=str, keep_default_na=False)
    assert list(sub.columns) == list(sample.columns) == ["ID", *LABELS]
    assert sub["ID"].tolist() == sample["ID"].tolist()  # sample's IDs, in its order
    assert sub["ID"].tolist() != sorted(sub["ID"].tolist())
    assert set(np.unique(sub[LABELS].to_numpy())) <= {"0", "1"}  # integers, not 0.0 / True
    assert raw.splitlines()[0] == ",".join(sample.columns)

    data = data_mod.load(d)
    oof_path = out_dir / "tfidf-lr" / "oof.csv"
    oof_raw = pd.read_csv(oof_path, dtype=str)
    assert list(oof_raw.columns) == ["ID", *LABELS]
    assert oof_raw["ID"].tolist() == data.train["ID"].tolist()  # every train ID, train order
    oof = oof_raw[LABELS].astype(np.float64).to_numpy()
    assert np.isfinite(oof).all() and (oof >= 0).all() and (oof <= 1).all()
    # full precision: the assembled file holds exactly the fold files' values, written repr-exact
    digits = np.array([_sig_digits(s) for s in oof_raw[LABELS].to_numpy().ravel()])
    assert np.median(digits) >= 15, np.median(digits)
    fold = pd.read_csv(folds_dir / "folds.csv", dtype={"ID": str}).set_index("ID")["fold"]
    by_id = pd.DataFrame(oof, index=oof_raw["ID"], columns=LABELS)
    for k in range(5):
        part = pd.read_csv(out_dir / "tfidf-lr" / f"fold{k}" / "oof.csv", dtype={"ID": str}).set_index("ID")
        assert set(part.index) == set(fold[fold == k].index)  # each fold's OOF = its validation rows
        np.testing.assert_array_equal(part[LABELS].to_numpy(), by_id.loc[part.index, LABELS].to_numpy())
        assert (out_dir / "tfidf-lr" / f"fold{k}" / "DONE.json").exists()
    test_probs = pd.read_csv(out_dir / "tfidf-lr" / "test.csv", dtype={"ID": str})
    assert test_probs["ID"].tolist() == data.test["ID"].tolist()
    report = json.loads((out_dir / "blend" / "report.json").read_text())
    assert report["models"] == ["tfidf-lr"] and set(report["thresholds"]) == set(LABELS)
    assert "OOF macro-F1" in out

    # rerun: every fold is done, nothing is retrained, the same submission comes out
    done = _mtimes(out_dir, "tfidf-lr/fold*/DONE.json") | _mtimes(out_dir, "tfidf-lr/fold*/model/*")
    sub_bytes = (out_dir / "submission.csv").read_bytes()
    code, out, err = run_cli("run", "--models", "tfidf-lr", "--input", d, "--folds-dir", folds_dir, "--output", out_dir)
    assert code == 0, err
    assert "fold(s) [0, 1, 2, 3, 4] already done, skipping" in err
    assert "training fold(s)" not in err
    assert "folds up to date" in err
    assert (_mtimes(out_dir, "tfidf-lr/fold*/DONE.json") | _mtimes(out_dir, "tfidf-lr/fold*/model/*")) == done
    assert (out_dir / "submission.csv").read_bytes() == sub_bytes

    # an unfinished fold (no DONE.json, as after a kill) is the only one redone
    (out_dir / "tfidf-lr" / "fold2" / "DONE.json").unlink()
    code, out, err = run_cli("run", "--models", "tfidf-lr", "--input", d, "--folds-dir", folds_dir, "--output", out_dir)
    assert code == 0, err
    assert "fold(s) [0, 1, 3, 4] already done" in err and "training fold(s) [2]" in err
    assert (out_dir / "submission.csv").read_bytes() == sub_bytes  # deterministic model, same result
    assert checksums(d) == before


def test_a_second_seed_is_its_own_model_in_the_blend(make_input, run_cli, tmp_path):
    """`NAME-seedN` trains NAME with seed N into output/NAME-seedN/ (the seed in every artifact path), and the
    blend averages it with the first seed like any other member."""
    d = make_input()
    folds_dir, out_dir = tmp_path / "folds", tmp_path / "out"
    code, out, err = run_cli("run", "--models", "tfidf-lr,tfidf-lr-seed3", "--input", d, "--folds-dir", folds_dir,
                             "--output", out_dir)
    assert code == 0, err
    rec = json.loads((out_dir / "tfidf-lr-seed3" / "config.json").read_text())
    assert rec["name"] == "tfidf-lr-seed3" and rec["config"]["seed"] == 3
    assert json.loads((out_dir / "tfidf-lr" / "config.json").read_text())["config"]["seed"] == 42
    assert all((out_dir / "tfidf-lr-seed3" / f"fold{k}" / "DONE.json").exists() for k in range(5))
    report = json.loads((out_dir / "blend" / "report.json").read_text())
    assert report["models"] == ["tfidf-lr", "tfidf-lr-seed3"]
    # an average carries its weights; the stacker, when `--stack auto` picks it, has none
    assert report["weights"] == (None if report["stacker"]["used"] else {"tfidf-lr": 0.5, "tfidf-lr-seed3": 0.5})


def test_run_refuses_stale_folds(make_input, run_cli, tmp_path):
    folds_dir, out_dir = tmp_path / "folds", tmp_path / "out"
    d1 = make_input("v1")
    code, _, err = run_cli("folds", "--input", d1, "--folds-dir", folds_dir)
    assert code == 0, err

    def flip(df):
        df.loc[0, "anger"] = 1 - df.loc[0, "anger"]
        return df

    d2 = make_input("v2", train=flip)
    code, _, err = run_cli("run", "--models", "tfidf-lr", "--input", d2, "--folds-dir", folds_dir, "--output", out_dir)
    assert code == 2 and "Traceback" not in err
    assert "--force" in err.strip().splitlines()[-1]
    assert not (out_dir / "submission.csv").exists()


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


# --- a failed model, and the interim blends -----------------------------------------------------------

REFUSED = ("--models", "tfidf-lr,tfidf-lr-seed3", "--set", "tfidf-lr-seed3.min_df=1000")  # sklearn refuses it


def test_a_failed_model_is_reported_and_the_others_make_the_submission(make_input, run_cli, tmp_path):
    d, F = make_input(), tmp_path / "folds"
    code, out, err = run_cli("run", *REFUSED, "--input", d, "--folds-dir", F, "--output", tmp_path / "out")
    assert code == 0, err
    assert not [ln for ln in err.splitlines() if ln.startswith("error:")]
    table = out[out.index("models of this run:"):].splitlines()
    assert table[1].split() == ["tfidf-lr", "trained"]
    assert table[2].startswith("  tfidf-lr-seed3  failed: config 'tfidf-lr-seed3' (--set min_df=1000): "
                               "scikit-learn refused a setting: ")
    assert table[3].startswith("a failed model's finished folds are kept: fix the cause, then rerun the same command")
    assert table[4].startswith("done in ")
    report = json.loads((tmp_path / "out" / "blend" / "report.json").read_text())
    assert report["models"] == ["tfidf-lr"] and (tmp_path / "out" / "submission.csv").exists()
    assert [(r["model"], r["status"]) for r in report["run_models"]] == [("tfidf-lr", "trained"),
                                                                         ("tfidf-lr-seed3", "failed")]

    code, out, err = run_cli("run", *REFUSED, "--strict", "--input", d, "--folds-dir", F, "--output", tmp_path / "s")
    assert code == 2
    assert err.rstrip("\n").splitlines()[-1].startswith("error: config 'tfidf-lr-seed3' (--set min_df=1000): ")
    assert "tfidf-lr-seed3  failed: " in out and (tmp_path / "s" / "submission.csv").exists()


def test_interim_blends_run_beside_training_and_the_final_blend_waits(make_input, run_cli, tmp_path, monkeypatch):
    """The interim blend after the first model holds until the second model's training has begun (it would
    wait forever if the callback blended in place); the final blend starts only once it has ended."""
    import threading

    from solution.blend import blend as blend_mod
    from solution.train import train as train_mod

    started, go, events = threading.Event(), threading.Event(), []
    real_blend, real_job = blend_mod.blend, train_mod.run_job

    def blend(*args, **kwargs):
        if kwargs.get("echo", True):
            events.append("final blend")
            return real_blend(*args, **kwargs)
        events.append("interim blend starts")
        started.set()
        events.append("interim blend goes on" if go.wait(60) else "interim blend gave up waiting")
        return real_blend(*args, **kwargs)

    first = []

    def run_job(cfg, *args):  # jobs come model by model: the second model's first one releases the interim blend
        first[:] = first or [cfg.name]
        if cfg.name != first[0] and started.wait(30) and not go.is_set():
            events.append(f"training {cfg.name}")
            go.set()
        return real_job(cfg, *args)

    monkeypatch.setattr(blend_mod, "blend", blend)
    monkeypatch.setattr(train_mod, "run_job", run_job)
    code, out, err = run_cli("run", "--models", "tfidf-lr,tfidf-lr-seed3", "--input", make_input(),
                             "--folds-dir", tmp_path / "folds", "--output", tmp_path / "out")
    assert code == 0, err
    assert events[0] == "interim blend starts" and events[-1] == "final blend", events
    assert "interim blend goes on" in events, events  # it gives up waiting where the callback blends in place
    second = next(e for e in events if e.startswith("training "))
    assert events.index(second) < events.index("interim blend goes on") < events.index("final blend")
    assert "updated from 1 complete model(s)" in err  # its line came, its summary did not
    assert out.count("submission: ") == 1


def test_interim_blends_keep_the_newest_request_and_a_failure_is_a_warning(monkeypatch, capsys):
    import threading

    from solution import run as pipeline
    from solution.errors import UserError

    running, gate, failed, ran = threading.Event(), threading.Event(), threading.Event(), []

    def interim_blend(data, dirs, names, done):
        ran.append(list(done))
        if len(done) == 1:
            running.set()
            assert gate.wait(30)
        if len(done) == 3:
            failed.set()
            raise UserError("output/blend is in use by another run")

    monkeypatch.setattr(pipeline, "interim_blend", interim_blend)
    names = ["a", "b", "c", "d"]
    blends = pipeline.InterimBlends(None, None)
    blends.request(names, ["a"])  # returns at once: the blend waits on `gate`
    assert running.wait(30)
    blends.request(names, ["a", "b"])  # stale once the next comes: never run
    blends.request(names, ["a", "b", "c"])
    gate.set()
    assert failed.wait(30)
    blends.wait()
    assert ran == [["a"], ["a", "b", "c"]]
    assert ("WARNING: the interim blend failed (output/blend is in use by another run); training goes on, the "
            "final blend follows") in capsys.readouterr().err

    # wait() (the final blend's) joins the blend in flight and drops the one waiting
    running.clear()
    gate.clear()
    blends.request(names, ["b"])
    assert running.wait(30)
    blends.request(names, ["b", "c"])
    threading.Timer(0.5, gate.set).start()
    blends.wait()
    assert gate.is_set() and ran[2:] == [["b"]]


def test_library_messages_go_to_the_log_of_their_threads_step(tmp_path):
    """Training's messages stay in train.log while an interim blend on its thread writes blend.log; a thread of a
    library (no step of its own) writes where the main thread's step does."""
    import logging
    import threading

    from solution import log

    def say(msg):
        log._HANDLER.emit(logging.LogRecord("transformers", logging.WARNING, __file__, 1, msg, None, None))

    inside, release = threading.Event(), threading.Event()

    def blend_thread():
        with log.library_log(tmp_path / "blend.log"):
            say("blend one")
            inside.set()
            assert release.wait(30)
            say("blend two")

    with log.library_log(tmp_path / "train.log"):
        blender = threading.Thread(target=blend_thread)
        blender.start()
        assert inside.wait(30)
        say("training one")
        helper = threading.Thread(target=say, args=("a library's own thread",))
        helper.start()
        helper.join()
        release.set()
        blender.join()
        say("training two")
    train, blend = (tmp_path / "train.log").read_text(), (tmp_path / "blend.log").read_text()
    assert [m for m in ("training one", "a library's own thread", "training two", "blend") if m in train] == \
        ["training one", "a library's own thread", "training two"]
    assert "blend one" in blend and "blend two" in blend and "training" not in blend
