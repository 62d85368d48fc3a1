"""Blend: threshold tuning, fold averaging, weights, the report and the submission (tiny generated data)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from solution import cli
from solution import data as data_mod
from solution import folds as folds_mod
from solution.blend import blend as blend_mod
from solution.blend import metrics, thresholds
from solution.data import ID
from solution.demo import write_demo
from solution.errors import UserError
from solution.io import prob_table, read_prob_table, write_csv, write_json
from solution.train.model_dir import DONE, folds_signature

# --- fold averaging and weights ----------------------------------------------------------------------

def test_fold_average_mean_and_geometric_by_hand():
    f0 = np.array([[0.2], [0.5]])
    f1 = np.array([[0.8], [0.5]])
    assert blend_mod.fold_average([f0, f1], "mean") == pytest.approx(np.array([[0.5], [0.5]]))
    assert blend_mod.fold_average([f0, f1], "geometric") == pytest.approx(np.array([[0.4], [0.5]]))


def test_fold_average_rank_by_hand():
    f0 = np.array([[0.1], [0.5], [0.9]])
    f1 = np.array([[0.3], [0.2], [0.8]])
    # ranks [1,2,3] and [2,1,3] -> mean [1.5, 1.5, 3]; mean order statistics [.15, .4, .85]
    # -> interpolated at 1.5: (.15 + .4) / 2 = .275; at 3: .85
    got = blend_mod.fold_average([f0, f1], "rank")
    assert got[:, 0] == pytest.approx([0.275, 0.275, 0.85])
    # folds that rank alike: rank averaging is the mean
    g0, g1 = np.array([[0.1, 0.7], [0.4, 0.2]]), np.array([[0.3, 0.9], [0.6, 0.5]])
    assert blend_mod.fold_average([g0, g1], "rank") == pytest.approx((g0 + g1) / 2)
    with pytest.raises(UserError, match="fold-average"):
        blend_mod.fold_average([g0], "median")


def test_optimized_weights_are_a_distribution_and_favour_the_better_model():
    rng = np.random.default_rng(0)
    n, L = 500, 3
    y = (rng.random((n, L)) < 0.3).astype(np.int8)
    good = np.clip(0.6 * y + 0.2 + 0.1 * rng.normal(size=(n, L)), 0.01, 0.99)
    noise = rng.random((n, L))
    mid = np.clip(0.3 * y + 0.35 + 0.2 * rng.normal(size=(n, L)), 0.01, 0.99)
    for stack in (np.stack([good, noise]), np.stack([noise, mid, good]), np.stack([mid, mid])):
        w = blend_mod.optimize_weights(y, stack)
        assert (w >= 0).all() and w.sum() == pytest.approx(1.0)
        ll = metrics.log_loss(y, blend_mod.combine(stack, w))
        assert ll <= metrics.log_loss(y, stack.mean(0)) + 1e-9
    w = blend_mod.optimize_weights(y, np.stack([good, noise]))
    assert w[0] > 0.9


def test_parse_weights():
    assert blend_mod.parse_weights("equal", ["a"]) == ("equal", None, ["a"])
    assert blend_mod.parse_weights("optimize", ["a", "b"])[0] == "optimize"
    method, w, names = blend_mod.parse_weights("a=0.7,b=0.7", [])
    assert method == "manual" and names == ["a", "b"] and w == pytest.approx({"a": 0.5, "b": 0.5})
    for bad, msg in [("a=1", "no weight to b"), ("a=1,b=1,c=1", "not among"), ("a=-1,b=1", "non-negative"),
                     ("a=x,b=1", "not a number"), ("a:1", "expected"), ("a=0,b=0", "positive")]:
        with pytest.raises(UserError, match=msg):
            blend_mod.parse_weights(bad, ["a", "b"])


# --- end to end on generated data --------------------------------------------------------------------

def fake_model(out: Path, name: str, data, folds_dir: Path, fold: np.ndarray, seed: int, strength: float,
               skip_done=(), wrong_rows=False) -> Path:
    """A model folder as training writes it, with made-up probabilities (no training)."""
    rng = np.random.default_rng(seed)
    y, labels, ids = data.y, data.labels, data.train[ID].to_numpy()
    mdir = out / name
    write_json({"name": name, "config": {}, "config_fingerprint": f"fp-{name}", "folds": folds_signature(folds_dir),
                "labels": labels}, mdir / "config.json")
    for k in range(int(fold.max()) + 1):
        va = np.flatnonzero(fold == (k + 1) % (fold.max() + 1) if wrong_rows and k == 0 else fold == k)
        p = np.clip(strength * y[va] + (1 - strength) * rng.random((len(va), len(labels))), 0, 1)
        write_csv(prob_table(ids[va], p, labels), mdir / f"fold{k}" / "oof.csv")
        write_csv(prob_table(data.test[ID], rng.random((len(data.test), len(labels))), labels),
                  mdir / f"fold{k}" / "test.csv")
        write_json({"config_fingerprint": f"fp-{name}", "n_train": int((fold != k).sum()), "wall_time_s": 1.0},
                   mdir / f"fold{k}" / "metrics.json")
        if k not in skip_done:
            write_json({"fold": k, "config_fingerprint": f"fp-{name}"}, mdir / f"fold{k}" / DONE)
    return mdir


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("blend")
    inp, fdir, out = root / "input", root / "folds", root / "output"
    write_demo(inp)
    assert cli.main(["run", "--models", "tfidf-lr", "--input", str(inp), "--folds-dir", str(fdir),
                     "--output", str(out)]) == 0
    data = data_mod.load(inp)
    fold = folds_mod.load(data, fdir)
    fake_model(out, "fake-a", data, fdir, fold, seed=1, strength=0.5)
    fake_model(out, "fake-b", data, fdir, fold, seed=2, strength=0.1)
    fake_model(out, "fake-partial", data, fdir, fold, seed=3, strength=0.5, skip_done=(2,))
    fake_model(out, "fake-wrongrows", data, fdir, fold, seed=4, strength=0.5, wrong_rows=True)
    base = ["--input", str(inp), "--folds-dir", str(fdir), "--output", str(out)]
    return {"inp": inp, "folds": fdir, "out": out, "data": data, "fold": fold, "args": base}


def test_oof_is_one_row_per_train_tweet_and_test_is_the_fold_mean(env):
    data, out = env["data"], env["out"]
    oof, test = blend_mod.load_probs(out, "tfidf-lr", data, env["folds"], "mean", env["fold"])
    assert oof.shape == (len(data.train), len(data.labels))
    assembled = read_prob_table(out / "tfidf-lr" / "oof.csv", data.labels).set_index(ID).loc[data.train[ID]]
    assert oof == pytest.approx(assembled[data.labels].to_numpy())
    folds = [read_prob_table(out / "tfidf-lr" / f"fold{k}" / "test.csv", data.labels).set_index(ID)
             .loc[data.test[ID], data.labels].to_numpy() for k in range(5)]
    assert test == pytest.approx(np.mean(folds, axis=0))
    _, geo = blend_mod.load_probs(out, "tfidf-lr", data, env["folds"], "geometric", env["fold"])
    assert geo == pytest.approx(np.exp(np.log(np.clip(folds, 1e-7, 1)).mean(0)))


def test_blend_optimize_writes_report_plots_and_a_valid_submission(env, capsys):
    out = env["out"]
    rc = cli.main(["blend", "tfidf-lr", "fake-a", "fake-b", "--weights", "optimize", "--stack", "off", *env["args"]])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "blend" in printed and "macro-F1 CV" in printed
    rep = json.loads((out / "blend" / "report.json").read_text())
    w = np.array(list(rep["weights"].values()))
    assert list(rep["weights"]) == ["tfidf-lr", "fake-a", "fake-b"]
    assert (w >= 0).all() and w.sum() == pytest.approx(1.0)
    wi = rep["weights_info"]
    assert wi["method"] == "optimize" and {"in_sample", "held_out", "equal_weights_held_out"} <= set(wi)
    for fw in wi["per_fold_weights"]:
        assert min(fw) >= 0 and sum(fw) == pytest.approx(1.0)
    assert [r["model"] for r in rep["table"]] == ["tfidf-lr", "fake-a", "fake-b", "blend"]
    for r in rep["table"]:
        for key in ("macro_f1_at_0.5", "macro_f1_tuned", "macro_f1_cv", "micro_f1", "subset_accuracy", "jaccard",
                    "log_loss"):
            assert np.isfinite(r[key])
    sel = rep["threshold_selection"]
    assert sel["shrink"] in thresholds.SHRINK_GRID and set(rep["thresholds"]) == set(env["data"].labels)
    assert rep["min_one_label"]["mode"] == "auto"
    for name in ("report.md", "report.json", "per_class_f1.png", "f1_vs_threshold.png"):
        assert (out / "blend" / name).stat().st_size > 0
    for png in ("per_class_f1.png", "f1_vs_threshold.png"):
        assert (out / "blend" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "blend" / "report.md").read_text()
    assert "| blend |" in md and "## Per-class F1" in md and "shrink" in md and "per_class_f1.png" in md
    assert not list((out / "blend").glob("*.tmp")) and not list(out.glob("*.tmp"))
    sub = pd.read_csv(out / "submission.csv", dtype={ID: str})
    sample = env["data"].sample
    assert list(sub.columns) == list(sample.columns)
    assert sub[ID].tolist() == sample[ID].tolist()
    vals = sub[env["data"].labels].to_numpy()
    assert sub[env["data"].labels].dtypes.map(lambda d: d.kind == "i").all() and set(np.unique(vals)) <= {0, 1}


def test_blend_manual_weights_and_fold_average(env):
    rc = cli.main(["blend", "--weights", "tfidf-lr=3,fake-a=1", "--fold-average", "rank", "--min-one-label", "off",
                   "--stack", "off", "--shrink", "0.5", "--threshold-center", "0.5", "--no-plots", *env["args"]])
    assert rc == 0
    rep = json.loads((env["out"] / "blend" / "report.json").read_text())
    assert rep["models"] == ["tfidf-lr", "fake-a"] and rep["fold_average"] == "rank"
    assert rep["weights"] == pytest.approx({"tfidf-lr": 0.75, "fake-a": 0.25})
    assert rep["threshold_selection"]["shrink"] == 0.5 and rep["min_one_label"]["used"] is False
    unshrunk = np.array([rep["threshold_selection"]["unshrunk"][lab] for lab in rep["labels"]])
    assert [rep["thresholds"][lab] for lab in rep["labels"]] == pytest.approx(0.5 * unshrunk + 0.25)


def test_blend_default_single_model_keeps_pipeline_keys(env):
    report = blend_mod.blend(env["data"], env["folds"], env["out"], ["tfidf-lr"], plots=False)
    b = report["scores"]["blend"]
    assert b["at_tuned"]["macro_f1"] >= b["at_0.5"]["macro_f1"] - 0.05
    assert report["weights"] == {"tfidf-lr": 1.0} and Path(report["submission"]).exists()


def test_blend_refuses_a_model_with_missing_folds(env, capsys):
    rc = cli.main(["blend", "tfidf-lr", "fake-partial", *env["args"]])
    err = capsys.readouterr().err
    assert rc == 2 and "fake-partial" in err and "fold(s) [2]" in err and len(err.strip().splitlines()) == 1


def test_blend_refuses_oof_rows_of_another_fold(env, capsys):
    assert cli.main(["blend", "fake-wrongrows", *env["args"]]) == 2
    assert "fold 0" in capsys.readouterr().err


def test_blend_refuses_unknown_model_and_bad_options(env, capsys):
    assert cli.main(["blend", "nope", *env["args"]]) == 2
    assert "nope" in capsys.readouterr().err
    assert cli.main(["blend", "tfidf-lr", "--shrink", "2", *env["args"]]) == 2
    assert "--shrink" in capsys.readouterr().err
    assert cli.main(["blend", "tfidf-lr", "--weights", "fake-a=1", *env["args"]]) == 2


def test_blend_help_lists_options(capsys):
    with pytest.raises(SystemExit) as e:
        blend_mod.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for opt in ("--fold-average", "--weights", "--shrink", "--threshold-center", "--min-one-label", "--input"):
        assert opt in out


def test_auto_weights_count_fine_tuned_members_twice_only_where_cv_says_so():
    """auto scores equal weights and `encoders` (kind hf at ENCODER_WEIGHT) by the threshold CV and keeps the better;
    a blend of one kind has nothing to weigh apart, so every mode gives it equal weights."""
    rng = np.random.default_rng(0)
    stack = rng.random((3, 20, 2))
    y, fold = (stack[1] > 0.5).astype(int), np.arange(20) % 4
    kinds = ["tfidf", "hf", "embed"]
    enc = blend_mod.encoder_weights(kinds)
    assert enc.tolist() == pytest.approx([0.25, 0.5, 0.25])
    args = (["a", "b", "c"], y, stack, fold, kinds)

    def cv_of(best):  # a select() whose CV favours the blend made with `best`
        return lambda oof: {"cv_macro_f1": 1.0 if np.allclose(oof, blend_mod.combine(stack, best)) else 0.5}

    w, info = blend_mod.choose_weights("auto", None, *args, cv_of(enc))
    assert w.tolist() == enc.tolist() and info["method"] == "encoders" and info["cv_macro_f1"]["encoders"] == 1.0
    equal = np.full(3, 1 / 3)
    w, info = blend_mod.choose_weights("auto", None, *args, cv_of(equal))
    assert w.tolist() == pytest.approx(equal.tolist()) and info == {"method": "equal", "asked": "auto",
                                                                   "cv_macro_f1": {"equal": 1.0, "encoders": 0.5}}
    w, info = blend_mod.choose_weights("encoders", None, *args, cv_of(equal))  # asked for: no CV
    assert w.tolist() == enc.tolist() and info == {"method": "encoders"}
    for mode in ("auto", "encoders"):
        w, info = blend_mod.choose_weights(mode, None, ["a", "b"], y, stack[:2], fold, ["hf", "hf"], None)
        assert w.tolist() == [0.5, 0.5] and info == {"method": "equal", "asked": mode}
    assert blend_mod.parse_weights(None, ["a"]) == ("auto", None, ["a"])
