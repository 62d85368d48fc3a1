"""The data contract: every bad input is one line naming the file (and row/column), exit code 2, no traceback,
inputs untouched; good-but-unusual inputs (BOM, emoji, quotes, newlines, other column order, extra columns,
empty tweets) load correctly."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import LABELS, TRICKY, checksums, make_frames

from solution import data as data_mod
from solution.io import write_csv


def _set(col, row, value):
    """Override: set train/test cell (row = 0-based data row) to a string value."""
    def f(df):
        df[col] = df[col].astype(object)
        df.loc[row, col] = value
        return df
    return f


def _raw(df: pd.DataFrame, **kw) -> str:
    return df.to_csv(index=False, lineterminator="\n", **kw)


def _header_only(df: pd.DataFrame) -> str:
    return ",".join(df.columns) + "\n"


def _latin1_train(df) -> bytes:
    """UTF-8 file with one Latin-1 byte (an "é") in data row 3, i.e. line 5."""
    assert "\n" not in "".join(df["Tweet"].iloc[:4])
    lines = _raw(df).encode("utf-8").split(b"\n")
    lines[4] = lines[4].replace(b"tr-0003,", b"tr-0003,caf\xe9 ", 1)
    return b"\n".join(lines)


def _short_row(df):
    """Data row 1 (line 3) has only ID and Tweet: its label fields read as blanks."""
    lines = _raw(df).split("\n")
    assert lines[2].startswith("tr-0001,")
    lines[2] = "tr-0001,just text"
    return "\n".join(lines)


def _unquoted_comma(df):
    lines = _raw(df).split("\n")
    lines[5] = lines[5].replace("tr-0004,", "tr-0004,oops, a comma ", 1)  # data row 4, line 6
    return "\n".join(lines)


def _unclosed_quote(df):
    lines = _raw(df).split("\n")
    lines[5] = lines[5].replace("tr-0004,", 'tr-0004,"never closed ', 1)
    return "\n".join(lines)


def _dup_id(df):
    df.loc[5, "ID"] = df.loc[2, "ID"]
    return df


def _renamed_sample_id(df):
    df.loc[4, "ID"] = "te-unknown"
    return df


def _extra_test_row(df):
    return pd.concat([df, pd.DataFrame({"ID": ["te-extra"], "Tweet": ["hi"]})], ignore_index=True)


# (id, make_input overrides, substrings the one error line must contain)
BAD_INPUTS = [
    ("missing-train", dict(drop=("train.csv",)), ["train.csv: file not found"]),
    ("missing-test", dict(drop=("test.csv",)), ["test.csv: file not found"]),
    ("missing-sample", dict(drop=("sample_submission.csv",)), ["sample_submission.csv: file not found"]),
    ("train-no-ID", dict(train=lambda df: df.drop(columns="ID")), ["train.csv, row 1: missing column(s) ID"]),
    ("train-no-Tweet", dict(train=lambda df: df.drop(columns="Tweet")), ["train.csv, row 1: missing column(s) Tweet"]),
    ("train-no-label", dict(train=lambda df: df.drop(columns=["joy", "trust"])),
     ["train.csv, row 1: missing column(s) joy, trust"]),
    ("test-no-Tweet", dict(test=lambda df: df.drop(columns="Tweet")), ["test.csv, row 1: missing column(s) Tweet"]),
    ("test-no-ID", dict(test=lambda df: df.drop(columns="ID")), ["test.csv, row 1: missing column(s) ID"]),
    ("sample-no-ID", dict(sample=lambda df: df.drop(columns="ID")),
     ["sample_submission.csv, row 1: missing column(s) ID"]),
    ("sample-no-labels", dict(sample=lambda df: df[["ID"]]), ["sample_submission.csv, row 1: no label columns"]),
    ("train-dup-header", dict(train=lambda df: _raw(df).replace("anger,anticipation", "anger,anger", 1)),
     ["train.csv, row 1: duplicated column(s) anger"]),
    ("train-dup-id", dict(train=_dup_id), ["train.csv, row 7, column 'ID': duplicate ID 'tr-0002'", "rows 4, 7"]),
    ("test-dup-id", dict(test=_dup_id), ["test.csv, row 7, column 'ID': duplicate ID 'te-0002'"]),
    ("train-blank-id", dict(train=_set("ID", 3, "  ")), ["train.csv, row 5, column 'ID': blank ID"]),
    ("label-blank", dict(train=_set("fear", 4, "")),
     ["train.csv, row 6, column 'fear': label must be 0 or 1, got a blank", "'tr-0004'"]),
    ("label-2", dict(train=_set("joy", 2, "2")), ["train.csv, row 4, column 'joy': label must be 0 or 1, got '2'"]),
    ("label-yes", dict(train=_set("trust", 6, "yes")),
     ["train.csv, row 8, column 'trust': label must be 0 or 1, got 'yes'"]),
    ("label-float", dict(train=_set("anger", 1, "0.5")), ["train.csv, row 3, column 'anger': label must be 0 or 1"]),
    ("label-short-row", dict(train=_short_row),
     ["train.csv, row 3, column 'anger': label must be 0 or 1, got a blank"]),
    ("unquoted-comma", dict(train=_unquoted_comma), ["train.csv: cannot parse as CSV", "line 6"]),
    ("unclosed-quote", dict(train=_unclosed_quote), ["train.csv, row 6"]),  # the rest of the file is one field
    ("test-ids-differ", dict(sample=_renamed_sample_id),
     ["test IDs differ from sample_submission IDs", "test.csv are not in", "sample_submission.csv",
      "'te-0004' at row 6", "'te-unknown' at row 6"]),
    ("test-extra-id", dict(test=_extra_test_row),
     ["test IDs differ from sample_submission IDs", "1 ID(s) in", "'te-extra' at row 22"]),
    ("empty-train", dict(train=b""), ["train.csv: file is empty"]),
    ("blank-lines-train", dict(train="\n\n  \n"), ["train.csv: file is empty"]),
    ("empty-sample", dict(sample=b""), ["sample_submission.csv: file is empty"]),
    ("header-only-train", dict(train=_header_only), ["train.csv: has a header but no rows"]),
    ("header-only-test", dict(test=_header_only), ["test.csv: has a header but no rows"]),
    ("header-only-sample", dict(sample=_header_only), ["sample_submission.csv: has a header but no rows"]),
    ("semicolon-train", dict(train=lambda df: _raw(df, sep=";")),
     ["train.csv, row 1: missing column(s) ID, Tweet", "comma-separated"]),
    ("semicolon-test", dict(test=lambda df: _raw(df, sep=";")),
     ["test.csv, row 1: missing column(s)", "comma-separated"]),
    ("semicolon-sample", dict(sample=lambda df: _raw(df, sep=";")),
     ["sample_submission.csv, row 1: missing column(s) ID", "comma-separated"]),
    ("non-utf8-train", dict(train=_latin1_train), ["train.csv, row 5: not UTF-8", "0xe9", "save the file as UTF-8"]),
    ("non-utf8-sample", dict(sample=b"ID,anger\n\xff\xfe,0\n"), ["sample_submission.csv, row 2: not UTF-8"]),
]


@pytest.mark.parametrize("overrides,expected", [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_one_line_exit_2(make_input, run_cli, tmp_path, overrides, expected):
    d = make_input(**overrides)
    before = checksums(d)
    code, out, err = run_cli("folds", "--input", d, "--folds-dir", tmp_path / "folds")
    assert code == 2, err
    assert "Traceback" not in err
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, err
    assert err.rstrip("\n").splitlines()[-1] == errors[0]  # the message is the last line, and one line
    for s in expected:
        assert s in errors[0], (s, errors[0])
    assert checksums(d) == before  # a failing run never touches the inputs
    assert not (tmp_path / "folds" / "folds.csv").exists()


def test_missing_input_dir(run_cli, tmp_path):
    code, _, err = run_cli("folds", "--input", tmp_path / "nope", "--folds-dir", tmp_path / "f")
    assert code == 2 and "Traceback" not in err
    assert f"error: {tmp_path / 'nope'}: --input directory not found" in err


def test_bad_label_message_counts_bad_values(make_input):
    def two_bad(df):
        df["love"] = df["love"].astype(object)
        df.loc[[3, 9], "love"] = ["yes", "2"]
        return df
    d = make_input(train=two_bad)
    with pytest.raises(data_mod.UserError, match=r"row 5, column 'love'.*'yes'.*2 bad value\(s\)"):
        data_mod.load(d)


def test_valid_input_loads(make_input):
    d = make_input()
    data = data_mod.load(d)
    train, test, sample = make_frames()
    assert data.labels == LABELS
    assert list(data.train.columns) == ["ID", "Tweet", *LABELS]
    assert list(data.test.columns) == ["ID", "Tweet"]
    assert list(data.sample.columns) == ["ID", *LABELS]
    assert data.y.dtype == np.int8 and data.y.shape == (60, 11)
    np.testing.assert_array_equal(data.y, train[LABELS].to_numpy())
    assert (data.y.sum(0) > 0).all()
    assert data.train["ID"].tolist() == train["ID"].tolist()
    assert data.test["ID"].tolist() == test["ID"].tolist()


def test_roundtrip_keeps_emoji_quotes_commas_newlines(make_input, tmp_path):
    train, test, sample = make_frames()
    tricky = TRICKY + ["\r\nwindows newline\r\n", "  leading and trailing spaces  ", '"', ",", "😂" * 50]
    train.loc[: len(tricky) - 1, "Tweet"] = tricky
    test.loc[: len(tricky) - 1, "Tweet"] = list(reversed(tricky))
    d = tmp_path / "rt"
    write_csv(train, d / "train.csv")
    write_csv(test, d / "test.csv")
    write_csv(sample, d / "sample_submission.csv")
    data = data_mod.load(d)
    assert data.train["Tweet"].tolist() == train["Tweet"].tolist()
    assert data.test["Tweet"].tolist() == test["Tweet"].tolist()
    np.testing.assert_array_equal(data.y, train[LABELS].to_numpy())
    # and the loaded frame survives a second write/load unchanged
    write_csv(data.train, tmp_path / "rt2" / "train.csv")
    write_csv(data.test, tmp_path / "rt2" / "test.csv")
    write_csv(data.sample, tmp_path / "rt2" / "sample_submission.csv")
    again = data_mod.load(tmp_path / "rt2")
    pd.testing.assert_frame_equal(again.train, data.train)
    pd.testing.assert_frame_equal(again.test, data.test)


@pytest.mark.parametrize("bom", [False, True], ids=["no-bom", "bom"])
def test_utf8_with_and_without_bom(make_input, bom):
    prefix = "\ufeff" if bom else ""
    d = make_input(train=lambda df: prefix + _raw(df), test=lambda df: prefix + _raw(df),
                   sample=lambda df: prefix + _raw(df))
    if bom:
        assert (d / "train.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    data = data_mod.load(d)
    assert data.labels == LABELS
    assert data.train["ID"].iloc[0] == "tr-0000"
    assert data.train["Tweet"].tolist() == make_frames()[0]["Tweet"].tolist()


def test_crlf_line_endings(make_input):
    d = make_input(train=lambda df: df.to_csv(index=False, lineterminator="\r\n"))
    data = data_mod.load(d)
    assert data.labels == LABELS and len(data.train) == 60
    assert not any(t.endswith("\r") for t in data.train["Tweet"])


def test_other_label_order_is_reordered(make_input):
    train = make_frames()[0]
    shuffled = ["Tweet", *reversed(LABELS), "ID"]
    d = make_input(train=lambda df: df[shuffled])
    data = data_mod.load(d)
    assert data.labels == LABELS
    assert list(data.train.columns) == ["ID", "Tweet", *LABELS]
    np.testing.assert_array_equal(data.y, train[LABELS].to_numpy())


def test_labels_come_from_sample_submission(make_input):
    labels = ["b_label", "a_label", "c_label"]
    d = make_input(labels=labels)
    data = data_mod.load(d)
    assert data.labels == labels
    assert data.y.shape == (60, 3)


def test_extra_columns_are_ignored_with_warning(make_input, run_cli, tmp_path):
    def extra_train(df):
        df.insert(2, "annotator", "x")
        df["notes"] = "n"
        return df

    def extra_test(df):
        df["anger"] = 1  # a label column in test is not used
        return df

    d = make_input(train=extra_train, test=extra_test)
    code, _, err = run_cli("folds", "--input", d, "--folds-dir", tmp_path / "folds")
    assert code == 0, err
    assert "WARNING" in err and "train.csv: ignoring extra column(s) annotator, notes" in err
    assert "test.csv: ignoring extra column(s) anger" in err
    data = data_mod.load(d)
    assert list(data.train.columns) == ["ID", "Tweet", *LABELS]
    assert list(data.test.columns) == ["ID", "Tweet"]


def test_empty_tweets_are_kept_with_warning(make_input, run_cli, tmp_path):
    def empty_train(df):
        df.loc[[4, 11, 30], "Tweet"] = ["", "   ", ""]
        return df

    def empty_test(df):
        lines = _raw(df).split("\n")
        assert lines[1].startswith("te-0000,") and lines[2].startswith("te-0001,")
        lines[1] = "te-0000,"  # empty field
        lines[2] = "te-0001"  # the Tweet field missing altogether
        return "\n".join(lines)

    d = make_input(train=empty_train, test=empty_test)
    code, _, err = run_cli("folds", "--input", d, "--folds-dir", tmp_path / "folds")
    assert code == 0, err
    assert "train.csv: 3 row(s) with empty tweet text are kept (first: row 6)" in err
    assert "test.csv: 2 row(s) with empty tweet text are kept (first: row 2)" in err
    data = data_mod.load(d)
    assert len(data.train) == 60 and len(data.test) == 20
    assert data.train["Tweet"].iloc[4] == "" and data.test["Tweet"].iloc[:2].tolist() == ["", ""]
    assert data.test["ID"].iloc[1] == "te-0001"


def test_ids_are_strings_kept_as_written(make_input):
    """Byte for byte, spaces too: the submission's IDs must be sample_submission's."""
    def ids(df):
        df["ID"] = [f" 00{i} " for i in range(len(df))]
        return df
    d = make_input(train=ids, test=ids, sample=ids)
    data = data_mod.load(d)
    assert data.train["ID"].iloc[:3].tolist() == [" 000 ", " 001 ", " 002 "]
    assert data.sample["ID"].tolist() == data.test["ID"].tolist() == [f" 00{i} " for i in range(len(data.test))]


def test_label_whitespace_accepted(make_input):
    d = make_input(train=_set("sadness", 0, " 1 "))
    data = data_mod.load(d)
    assert data.y[0, LABELS.index("sadness")] == 1


def test_sample_and_test_in_different_order_are_accepted(make_input):
    d = make_input(sample=lambda df: df.iloc[::-1].reset_index(drop=True))
    data = data_mod.load(d)
    assert data.sample["ID"].tolist() == list(reversed(data.test["ID"].tolist()))


def test_fingerprint_tracks_ids_and_labels(make_input):
    a = data_mod.load(make_input()).fingerprint()
    assert a == data_mod.load(make_input()).fingerprint()
    flipped = "1" if make_frames()[0]["joy"][0] == 0 else "0"
    assert a != data_mod.load(make_input(train=_set("joy", 0, flipped))).fingerprint()
    assert a != data_mod.load(make_input(train=_set("ID", 0, "other"))).fingerprint()
    # tweet text alone does not change the fingerprint (folds depend on IDs and labels only)
    assert a == data_mod.load(make_input(train=_set("Tweet", 0, "edited"))).fingerprint()
