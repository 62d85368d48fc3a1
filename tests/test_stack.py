"""The second-stage stacker: honest OOF, and predict reproducing a stacked submission."""
from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pandas as pd
from conftest import LABELS, make_input_dir

from solution import cli
from solution.blend import stack


def _data(seed=0, n=300, m=2, n_labels=4):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, n_labels)) < 0.3).astype(np.int8)
    probs = np.clip(0.6 * y[None] + 0.4 * rng.random((m, n, n_labels)), 0, 1)
    fold = np.arange(n) % 5
    return y, probs, fold


def test_features_are_logits_of_every_model_and_label():
    _, probs, _ = _data()
    X = stack.features(probs)
    assert X.shape == (300, 2 * 4)
    p = np.clip(probs[1, 7, 2], stack.EPS, 1 - stack.EPS)
    assert np.isclose(X[7, 4 + 2], np.log(p / (1 - p)))


def test_stacked_oof_of_a_fold_does_not_see_that_folds_labels():
    y, probs, fold = _data()
    oof, _, _ = stack.oof_and_test(y, probs, probs, fold)
    y2 = y.copy()
    y2[fold == 3] = 1 - y2[fold == 3]  # other labels on fold 3 only
    oof2, _, _ = stack.oof_and_test(y2, probs, probs, fold)
    np.testing.assert_array_equal(oof[fold == 3], oof2[fold == 3])
    assert not np.allclose(oof[fold != 3], oof2[fold != 3])
    assert ((oof >= 0) & (oof <= 1)).all()


def test_stacker_uses_other_labels():
    """A label that is a copy of another label's signal is learnt from that label's column."""
    rng = np.random.default_rng(1)
    y0 = (rng.random(400) < 0.4).astype(np.int8)
    y = np.stack([y0, y0], axis=1)
    probs = np.stack([np.stack([0.2 + 0.6 * y0, np.full(400, 0.5)], axis=1)])  # label 1's own column is noise
    oof, _, params = stack.oof_and_test(y, probs, probs, np.arange(400) % 5)
    assert ((oof[:, 1] >= 0.5) == y0.astype(bool)).mean() > 0.95
    assert abs(params["coef"][1][0]) > abs(params["coef"][1][1])


def test_predict_reproduces_a_stacked_submission(tmp_path, capsys):
    inp, folds, out = make_input_dir(tmp_path / "input"), tmp_path / "folds", tmp_path / "output"
    common = ["--input", str(inp), "--folds-dir", str(folds), "--output", str(out)]
    assert cli.main(["folds", *common[:4]]) == 0
    assert cli.main(["train", "tfidf-lr", *common]) == 0
    assert cli.main(["train", "tfidf-lr", *common[:4], "--output", str(tmp_path / "o2"), "--set", "C=0.5"]) == 0
    shutil.copytree(tmp_path / "o2" / "tfidf-lr", out / "tfidf-c05")
    assert cli.main(["blend", "tfidf-lr", "tfidf-c05", *common, "--stack", "on", "--no-plots"]) == 0
    rep = json.loads((out / "blend" / "report.json").read_text())
    assert rep["stacker"]["used"] and len(rep["stacker"]["coef"]) == len(LABELS)
    capsys.readouterr()
    assert cli.main(["predict", "--output", str(out), "--file", str(inp / "test.csv"), "--format", "csv"]) == 0
    got = pd.read_csv(io.StringIO(capsys.readouterr().out), dtype={"ID": str}, keep_default_na=False)
    sub = pd.read_csv(out / "submission.csv", dtype={"ID": str}).set_index("ID")
    pred = pd.DataFrame([[int(lab in e.split()) for lab in LABELS] for e in got["emotions"]], columns=LABELS,
                        index=got["ID"])
    pd.testing.assert_frame_equal(pred.loc[sub.index], sub[LABELS].astype(int), check_names=False)
    # predict says what it applied: the stacker, not an average with weights
    assert cli.main(["predict", "--output", str(out), "a happy tweet"]) == 0
    footnote = capsys.readouterr().out.strip().splitlines()[-1]
    assert "stacker (per-label logistic regression, C=0.03, on the logits of 2 models x 11 labels" in footnote
    assert "each" not in footnote and "weighted average" not in footnote
    assert "Method: stacker" in (out / "blend" / "report.md").read_text(encoding="utf-8")


def test_fit_keeps_a_constant_labels_rate():
    y, probs, _ = _data()
    y[:, 1] = 0
    params = stack.fit(stack.features(probs), y, C=0.1)
    assert not params["coef"][1].any() and params["intercept"][1] == np.log(stack.EPS / (1 - stack.EPS))
    p = stack.apply(params, stack.features(probs))
    assert np.allclose(p[:, 1], stack.EPS) and p[:, 0].std() > 0.1
