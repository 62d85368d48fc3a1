"""What the blend report says: the method that made the submission (average or stacker), the numbers CV is
judged by (per-fold macro-F1, diversity, training time, label rates), the DEMO marker, the plots, and the
order of writing (a submission on disk always has its report). Fake models only: no training."""
from __future__ import annotations

import errno
import hashlib
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from test_blend import fake_model

from solution import data as data_mod
from solution import folds as folds_mod
from solution import io as io_mod
from solution.blend import blend as blend_mod
from solution.blend import metrics, plots, thresholds
from solution.blend import report as report_mod
from solution.demo import write_demo
from solution.io import write_json
from solution.train import model_dir as trained
from solution.train.model_dir import DONE

MODELS = ["fake-a", "fake-b", "fake-c"]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """Demo input, its folds, and three fake trained models (fake-a with made-up per-fold training times)."""
    root = tmp_path_factory.mktemp("report")
    inp, fdir, out = root / "input", root / "folds", root / "output"
    write_demo(inp)
    data = data_mod.load(inp)
    fold = folds_mod.ensure(data, fdir)
    for i, (name, strength) in enumerate(zip(MODELS, (0.5, 0.3, 0.2))):
        fake_model(out, name, data, fdir, fold, seed=i + 1, strength=strength)
    for k in range(5):
        write_json({"config_fingerprint": "fp-fake-a", "n_train": 400, "wall_time_s": 10.0 + k},
                   out / "fake-a" / f"fold{k}" / "metrics.json")
    return {"root": root, "input": inp, "folds": fdir, "output": out, "data": data, "fold": fold}


@pytest.fixture
def env(base, tmp_path):
    """A private copy of the output folder, free to blend into."""
    out = tmp_path / "output"
    shutil.copytree(base["output"], out)
    return {**base, "output": out}


def _blend(env, names=MODELS, **kw):
    kw.setdefault("plots", False)
    return blend_mod.blend(env["data"], env["folds"], env["output"], list(names), **kw)


def _md(env) -> str:
    return (env["output"] / "blend" / "report.md").read_text(encoding="utf-8")


# --- the method that made the submission ------------------------------------------------------------

def test_report_names_the_stacker_when_it_makes_the_submission(env, capsys):
    rep = _blend(env, stack="on")
    printed = capsys.readouterr().out
    md = _md(env)
    assert rep["method"]["kind"] == "stacker" and rep["stacker"]["used"]
    assert "Submission made by:** stacker (per-label logistic regression" in md
    assert "## Method: stacker" in md and "## Method: weighted average" not in md
    assert "3 models x 11 labels = 33 inputs" in md and f"C={blend_mod.STACK_C:g}" in md
    assert "weights: **equal**" not in md and "| weight |" not in md  # no weights table for a stacker
    # the weighted average it was compared with is named as such, not as the method used
    assert "against" in md and rep["method"]["instead_of"].startswith("weighted average")
    # a number at 0.5 means nothing for the stacker: left out, and said so
    saved = json.loads((env["output"] / "blend" / "report.json").read_text())
    assert saved["weights"] is None and saved["method"]["at_0.5_meaningful"] is False
    assert saved["table"][-1]["macro_f1_at_0.5"] is None
    assert "not meaningful for the stacker" in md and "blend @0.5" not in md
    assert "stacker" in rep["headline"] and "at 0.5" not in rep["headline"].replace("no score at 0.5", "")
    assert rep["headline"] in printed


def test_report_names_the_weighted_average_and_its_weights(env):
    rep = _blend(env, stack="off", weights="fake-a=2,fake-b=1,fake-c=1")
    md = _md(env)
    assert rep["method"]["kind"] == "average" and rep["weights"] == pytest.approx(
        {"fake-a": 0.5, "fake-b": 0.25, "fake-c": 0.25})
    desc = "weighted average of probabilities (manual weights: fake-a 0.50, fake-b 0.25, fake-c 0.25)"
    assert rep["method"]["description"] == desc and desc in md and desc in rep["headline"]
    assert "## Method: weighted average" in md and "stacker" not in md.lower()
    assert f"{rep['scores']['blend']['at_0.5']['macro_f1']:.4f} at 0.5" in rep["headline"]


def test_auto_reports_the_method_it_picked(env):
    rep = _blend(env, stack="auto")
    st = rep["stacker"]
    assert st["used"] == (st["cv_macro_f1_stack"] > st["cv_macro_f1_average"])
    assert rep["method"]["kind"] == ("stacker" if st["used"] else "average")
    assert ("## Method: stacker" in _md(env)) == st["used"]


# --- what CV is judged by ---------------------------------------------------------------------------

def test_per_fold_macro_f1_and_its_std_by_hand(env):
    rep = _blend(env, stack="off")
    y, fold, sel = env["data"].y, env["fold"], rep["threshold_selection"]
    oof, _ = blend_mod.load_probs(env["output"], "fake-b", env["data"], env["folds"], "mean", env["fold"])
    ft = thresholds.cv_thresholds(y, oof, fold, sel["shrink"], sel["center"])
    want = []
    for k in range(5):
        rows = fold == k
        pred = thresholds.predict(oof[rows], ft[k], rep["min_one_label"]["used"])
        want.append(metrics.f1_per_class(y[rows], pred).mean())
    s = rep["scores"]["fake-b"]
    assert s["cv_macro_f1_per_fold"] == pytest.approx(want)
    assert s["cv_macro_f1_std"] == pytest.approx(np.std(want))
    b = rep["scores"]["blend"]
    assert len(b["cv_macro_f1_per_fold"]) == 5 and b["cv_macro_f1"] == pytest.approx(sel["cv_macro_f1"])
    assert [r["macro_f1_cv_std"] for r in rep["table"]] == [rep["scores"][n]["cv_macro_f1_std"]
                                                            for n in [*MODELS, "blend"]]
    md = _md(env)
    assert "## Macro-F1 per fold" in md and f"| fake-b | {want[0]:.4f} |" in md


def test_diversity_is_the_mean_per_label_correlation(env):
    shutil.copytree(env["output"] / "fake-a", env["output"] / "fake-a-copy")
    rep = _blend(env, ["fake-a", "fake-b", "fake-a-copy"], stack="off")
    corr = np.array(rep["diversity"]["correlation"], dtype=float)
    assert corr.shape == (3, 3) and np.allclose(corr, corr.T) and np.allclose(np.diag(corr), 1.0)
    assert corr[0, 2] == pytest.approx(1.0)  # a copy of a model is not diverse at all
    a, _ = blend_mod.load_probs(env["output"], "fake-a", env["data"], env["folds"])
    b, _ = blend_mod.load_probs(env["output"], "fake-b", env["data"], env["folds"])
    want = np.mean([np.corrcoef(a[:, j], b[:, j])[0, 1] for j in range(a.shape[1])])
    assert corr[0, 1] == pytest.approx(want)
    assert "## Diversity" in _md(env)


def test_diversity_of_a_constant_column_is_undefined_not_nan():
    probs = np.stack([np.full((20, 2), 0.3), np.random.default_rng(0).random((20, 2))])
    corr = report_mod.diversity(probs)
    assert corr[0][1] is None and corr[1][1] == pytest.approx(1.0)
    json.dumps(corr, allow_nan=False)


def test_training_time_is_the_sum_of_the_folds(env):
    rep = _blend(env, stack="off")
    assert rep["train_time_s"]["fake-a"] == pytest.approx(60.0)  # 10 + 11 + 12 + 13 + 14
    assert rep["train_time_s"]["fake-b"] == pytest.approx(5.0)  # fake_model's 1 s a fold
    assert rep["train_time_s"]["blend"] == pytest.approx(70.0)
    assert "| 1.0 min |" in _md(env) and "| 5 s |" in _md(env)
    metrics = env["output"] / "fake-b" / "fold2" / "metrics.json"
    metrics.write_text(metrics.read_text().replace("1.0", "NaN"))
    assert report_mod.train_time_s(env["output"], "fake-b", 5) is None  # unknown, never NaN
    metrics.unlink()
    assert report_mod.train_time_s(env["output"], "fake-b", 5) is None  # unknown, not 0


def test_train_and_predicted_test_label_rates(env):
    rep = _blend(env, stack="off")
    labels = env["data"].labels
    assert [rep["label_rate_train"][lab] for lab in labels] == pytest.approx(env["data"].y.mean(0).tolist())
    sub = pd.read_csv(env["output"] / "submission.csv", dtype={"ID": str})
    assert [rep["label_rate_test_pred"][lab] for lab in labels] == pytest.approx(sub[labels].mean(0).tolist())
    assert "train pos. rate | test pos. rate (pred.)" in _md(env)


def test_demo_marker_and_left_out_models(env):
    left = [{"model": "gemma-2b-ia3", "reason": "out of time budget"}, ("qwen1.5-7b-qlora", "failed: out of memory")]
    rep = _blend(env, demo=True, left_out=left, stack="off")
    md = _md(env)
    assert rep["demo"] is True and "**DEMO**" in md and rep["headline"].startswith("DEMO DATA: ")
    assert "Not in this blend: gemma-2b-ia3 (out of time budget), qwen1.5-7b-qlora (failed: out of memory)." in md
    saved = json.loads((env["output"] / "blend" / "report.json").read_text())
    assert saved["left_out"] == [{"model": "gemma-2b-ia3", "reason": "out of time budget"},
                                 {"model": "qwen1.5-7b-qlora", "reason": "failed: out of memory"}]
    _blend(env, stack="off")
    assert "DEMO" not in _md(env) and "Not in this blend" not in _md(env)


# --- plots ------------------------------------------------------------------------------------------

def _figures(monkeypatch):
    figs = []
    monkeypatch.setattr(plots, "_save", lambda fig, path, demo: figs.append((fig, demo)) or path)
    return figs


def test_plots_label_bars_keep_colours_and_show_the_score(env, monkeypatch):
    figs = _figures(monkeypatch)
    rep = _blend(env, ["fake-a", "fake-b"], demo=True, plots=True, stack="off")
    rep["scores"]["fake-b"]["at_tuned"]["per_class"]["trust"]["f1"] = 0.0  # a zero bar must still say so
    plots.plot_per_class_f1(rep, env["output"] / "x.png")
    rep2 = _blend(env, ["fake-b", "fake-a"], plots=True, stack="off")
    (bars1, demo1), (curves1, _), (bars0, _), (bars2, demo2), _ = figs
    ax = bars1.axes[0]
    assert demo1 and not demo2
    assert ax.get_title().startswith("DEMO DATA: ")
    assert f"{rep['scores']['blend']['at_tuned']['macro_f1']:.4f}" in ax.get_title()
    assert f"{rep2['scores']['blend']['cv_macro_f1']:.4f} CV" in bars2.axes[0].get_title()
    assert curves1._suptitle.get_text().startswith("DEMO DATA: ")
    n_bars = len(rep["labels"]) * 3
    assert len(ax.texts) == n_bars  # one value label per bar
    zero = [t.get_text() for t in bars0.axes[0].texts]
    assert "0.00" in zero
    # colours follow the model name, not its position
    def colours(fig):
        return {c.get_label().split(" (")[0]: c.patches[0].get_facecolor() for c in fig.axes[0].containers}
    assert colours(bars1) == colours(bars2)
    assert colours(bars1)["fake-a"] != colours(bars1)["fake-b"]


# --- the submission is written last -----------------------------------------------------------------

def _submission_has_its_report(out) -> bool:
    sub = out / "submission.csv"
    if not sub.exists():
        return True
    rep = json.loads((out / "blend" / "report.json").read_text())
    md = (out / "blend" / "report.md").read_text(encoding="utf-8")
    sha = hashlib.sha256(sub.read_bytes()).hexdigest()
    return rep["submission_sha256"] == sha and sha[:16] in md


@pytest.mark.parametrize("where", ["plot", "report.md", "report.json"])
def test_a_failed_report_write_never_leaves_a_submission_without_its_report(env, monkeypatch, where):
    _blend(env, ["fake-a"], stack="off")  # a previous blend: a submission and its report
    assert _submission_has_its_report(env["output"]) and (env["output"] / "submission.csv").exists()

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    if where == "plot":
        monkeypatch.setattr(plots, "_save", full)
    else:
        real = {"report.md": io_mod.write_text, "report.json": io_mod.write_json}[where]
        writer = "write_text" if where == "report.md" else "write_json"
        monkeypatch.setattr(report_mod, writer, lambda obj, path: full() if path.name == where else real(obj, path))
    with pytest.raises(OSError):
        _blend(env, ["fake-a", "fake-b"], plots=True, stack="off")
    assert not (env["output"] / "submission.csv").exists()  # the old one no longer matched the report
    assert _submission_has_its_report(env["output"])
    assert not list(env["output"].rglob("*.tmp"))
    monkeypatch.undo()
    _blend(env, ["fake-a", "fake-b"], stack="off")
    assert (env["output"] / "submission.csv").exists() and _submission_has_its_report(env["output"])


def test_a_failure_before_writing_keeps_the_old_submission_and_report(env):
    _blend(env, ["fake-a"], stack="off")
    before = (env["output"] / "submission.csv").read_bytes()
    (env["output"] / "fake-b" / "fold3" / DONE).unlink()
    with pytest.raises(Exception, match=r"fold\(s\) \[3\] not trained"):
        _blend(env, ["fake-a", "fake-b"], stack="off")
    assert (env["output"] / "submission.csv").read_bytes() == before and _submission_has_its_report(env["output"])


# --- one rule for "is this fold done?" ---------------------------------------------------------------

def test_a_done_marker_without_the_config_fingerprint_is_not_done(env, capsys):
    fdir = env["output"] / "fake-b" / "fold1"
    assert trained.fold_done(fdir, "fp-fake-b")
    for marker in ({"fold": 1}, {"fold": 1, "config_fingerprint": "another"}, {"fold": 1, "config_fingerprint": None}):
        write_json(marker, fdir / DONE)
        assert not trained.fold_done(fdir, "fp-fake-b")
        with pytest.raises(Exception, match=r"fold\(s\) \[1\] not trained"):
            _blend(env, ["fake-a", "fake-b"], stack="off")
    (fdir / DONE).write_text("{broken")
    assert not trained.fold_done(fdir, "fp-fake-b")
    assert not trained.fold_done(env["output"] / "fake-a" / "fold0", None)


@pytest.mark.parametrize("file, cell", [("test.csv", "nan"), ("oof.csv", "1.5"), ("test.csv", "")])
def test_a_fold_whose_probabilities_cannot_be_read_is_not_done(env, file, cell):
    """An older run's NaN behind a valid DONE.json: not done, so resuming retrains that fold; blend names the cell."""
    fdir = env["output"] / "fake-b" / "fold2"
    lines = (fdir / file).read_text().split("\n")
    lines[1] = ",".join([*lines[1].split(",")[:3], cell, *lines[1].split(",")[4:]])
    (fdir / file).write_text("\n".join(lines))
    assert trained.marked_done(fdir, "fp-fake-b") and not trained.fold_done(fdir, "fp-fake-b")
    assert trained.missing_folds(env["output"] / "fake-b", "fp-fake-b", 5) == [2]
    with pytest.raises(Exception, match=rf"fold2/{file}, row 2, column 'disgust': probability '{cell}' not in "
                                        rf"\[0, 1\]; run `python -m solution train fake-b --input .* --output .*` to "
                                        "retrain that fold"):
        _blend(env, ["fake-a", "fake-b"], stack="off")
