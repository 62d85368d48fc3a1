"""The NRC Emotion Lexicon member: features from nrclex's bundled word list (offline), and the train command."""
from __future__ import annotations

import numpy as np
import pytest

from solution import config as config_mod
from solution.cli import main
from solution.errors import UserError
from solution.io import read_json, read_prob_table
from solution.models import lexicon as lex_mod

pytest.importorskip("nrclex", reason="the lexicon extra (nrclex) is not installed")


def test_affect_features_count_the_lexicon_words():
    """'furious' is an anger word, 'happy' a joy word; inflected forms missing from the list ('screamed',
    'hopes', 'cried') are found offline by their stems; a tweet with no lexicon word has zero counts."""
    lex = lex_mod.lexicon()
    assert "anger" in lex["furious"] and "joy" in lex["happy"]
    for word, stem in (("screamed", "scream"), ("hopes", "hope"), ("cried", "cry")):
        assert word not in lex and lex_mod.lookup(word, lex) == lex[stem]
    assert lex_mod.lookup("xyzzyqux", lex) == ()
    X = lex_mod.affect_features(["furious , simply furious !", "so happy today", "xyzzy qux"])
    k, a = len(lex_mod.AFFECTS), lex_mod.AFFECTS.index
    assert X.shape == (3, 2 * k + 1)
    assert X[0, a("anger")] == pytest.approx(np.log1p(2)) and X[0, a("joy")] == 0
    assert X[0, k + a("anger")] == pytest.approx(2 / 3)  # two of three words
    assert X[1, a("joy")] > 0 and X[1, a("anger")] == 0
    assert not X[2, :2 * k].any() and X[2, -1] == pytest.approx(np.log1p(2))


def test_without_nrclex_the_error_says_how_to_install(monkeypatch):
    import sys

    lex_mod.lexicon.cache_clear()
    monkeypatch.setitem(sys.modules, "nrclex", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "nrclex.data", None)
    try:
        with pytest.raises(UserError, match="pip install --no-deps 'nrclex"):
            lex_mod.lexicon()
    finally:
        lex_mod.lexicon.cache_clear()


@pytest.mark.parametrize("name", ["lexicon-lr", "tfidf-lex-lr"])
def test_train_writes_oof_and_reloads(make_input, tmp_path, name):
    inp = make_input(n_train=60, n_test=20)
    folds, out = tmp_path / "folds", tmp_path / "out"
    common = ["--input", str(inp), "--folds-dir", str(folds)]
    assert main(["folds", *common, "--n-splits", "3"]) == 0
    assert main(["train", name, *common, "--output", str(out)]) == 0
    cfg = config_mod.get(name)
    labels = read_json(out / name / "config.json")["labels"]
    oof = read_prob_table(out / name / "oof.csv", labels)[labels].to_numpy()
    assert oof.shape == (60, len(labels)) and np.isfinite(oof).all()
    import pandas as pd

    from solution.models.lexicon import LexiconModel

    model = LexiconModel.load(out / name / "fold0" / "model", cfg, labels)
    test = pd.read_csv(inp / "test.csv")
    saved = read_prob_table(out / name / "fold0" / "test.csv", labels)[labels].to_numpy()
    np.testing.assert_allclose(model.predict(test["Tweet"].tolist()), saved, rtol=0, atol=1e-9)


def test_lexicon_config_checks_its_scale():
    with pytest.raises(UserError, match="lexicon_scale must be > 0"):
        config_mod.get("tfidf-lex-lr", ["lexicon_scale=0"])
    assert config_mod.from_dict(config_mod.get("lexicon-lr").to_dict()) == config_mod.get("lexicon-lr")
