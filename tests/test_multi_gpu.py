"""With several GPUs visible, `train` runs one `train MODEL --folds k` child per GPU and assembles after."""
from __future__ import annotations

import os


from solution import cli, train

from conftest import make_input_dir


class FakePopen:
    """Runs the child command in-process, with its environment, when created."""

    calls = []

    def __init__(self, cmd, env):
        FakePopen.calls.append((cmd, env["CUDA_VISIBLE_DEVICES"]))
        old = dict(os.environ)
        os.environ.update(env)
        try:
            self.code = cli.main(cmd[3:])  # [python, -m, solution, train, ...]
        finally:
            os.environ.clear()
            os.environ.update(old)

    def wait(self):
        return self.code


def test_folds_run_one_per_gpu_and_match_a_serial_run(tmp_path, monkeypatch):
    inp, folds = make_input_dir(tmp_path / "input"), tmp_path / "folds"
    assert cli.main(["folds", "--input", str(inp), "--folds-dir", str(folds)]) == 0
    common = ["--input", str(inp), "--folds-dir", str(folds)]
    assert cli.main(["train", "tfidf-lr", *common, "--output", str(tmp_path / "serial"), "--set", "C=2.0"]) == 0

    FakePopen.calls = []
    monkeypatch.setattr(train, "_cuda_count", lambda: 2)
    monkeypatch.setattr(train.subprocess, "Popen", FakePopen)
    assert cli.main(["train", "tfidf-lr", *common, "--output", str(tmp_path / "par"), "--set", "C=2.0"]) == 0
    folds_run = [c[c.index("--folds") + 1] for c, _ in FakePopen.calls]
    assert folds_run == ["0", "1", "2", "3", "4"]
    assert [gpu for _, gpu in FakePopen.calls] == ["0", "1", "0", "1", "0"]
    assert all(c[c.index("--set") + 1] == "C=2.0" for c, _ in FakePopen.calls)  # the overrides travel
    for name in ("oof.csv", "test.csv"):
        assert (tmp_path / "par" / "tfidf-lr" / name).read_bytes() == (tmp_path / "serial" / "tfidf-lr" / name).read_bytes()

    # done folds are not sent to a GPU again; --force sends them all
    FakePopen.calls = []
    assert cli.main(["train", "tfidf-lr", *common, "--output", str(tmp_path / "par"), "--set", "C=2.0"]) == 0
    assert FakePopen.calls == []
    assert cli.main(["train", "tfidf-lr", *common, "--output", str(tmp_path / "par"), "--set", "C=2.0",
                     "--folds", "1,3", "--force"]) == 0
    assert [c[c.index("--folds") + 1] for c, _ in FakePopen.calls] == ["1", "3"]
