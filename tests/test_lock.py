"""Two runs on one output folder, with real processes: one run per model folder at a time (the second is
refused, naming the first's PID), a lock left by a killed run never blocks, different models share an output
folder, making folds waits for the run making them, and train's per-GPU children work under their parent's
lock (solution/lock.py)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import make_input_dir

from solution import lock
from solution.io import _umask

REPO = Path(__file__).resolve().parents[1]
HOLDER = ("import sys\nfrom solution import lock\nwith lock.hold(sys.argv[1]):\n"
          "    print('held', flush=True)\n    sys.stdin.read()\n")


@pytest.fixture
def dirs(tmp_path, no_kaggle):
    inp = make_input_dir(tmp_path / "input")
    common = ["--input", str(inp), "--folds-dir", str(tmp_path / "folds"), "--output", str(tmp_path / "output")]
    return tmp_path, common


def _env(**extra) -> dict:
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {k: v for k, v in os.environ.items() if k != "SOLUTION_CWD"}
    return {**env, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", **extra}


def _solution(*argv, **extra) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "solution", *argv], env=_env(**extra), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(proc: subprocess.Popen, timeout: int = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    assert "Traceback" not in out + err, err
    return proc.returncode, out, err


def _holder(folder: Path) -> subprocess.Popen:
    """A real process holding `folder`'s lock until its stdin closes (or it is killed)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], env=_env(), text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == "held"
    return proc


def _refusal(err: str) -> str:
    line = err.rstrip("\n").splitlines()[-1]
    assert line.startswith("error: ") and err.count("error:") == 1, err
    return line


def test_a_second_run_on_a_model_is_refused_and_a_killed_holders_lock_never_blocks(dirs):
    root, common = dirs
    assert _finish(_solution("folds", *common))[0] == 0
    mdir = root / "output" / "tfidf-lr"
    holder = _holder(mdir)
    try:
        code, out, err = _finish(_solution("train", "tfidf-lr", *common))
        assert code == 2
        assert _refusal(err).startswith(f"error: {mdir} is in use by another run (PID {holder.pid}: ")
        assert "wait for it to finish, or write elsewhere with --output" in err
        assert not (mdir / "config.json").exists()  # refused before writing anything
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert str(holder.pid) in (mdir / lock.LOCK_NAME).read_text()  # killed: it could not tidy up ...
    code, out, err = _finish(_solution("train", "tfidf-lr", *common))
    assert code == 0, err  # ... and its lock died with it
    assert (mdir / "oof.csv").exists()


@pytest.mark.parametrize("force", [False, True])
def test_two_trains_at_once_on_one_model(dirs, force):
    """Started together: each either trains or is refused in one line; never a crash, never both training the
    same folds, and the model folder ends complete."""
    root, common = dirs
    assert _finish(_solution("folds", *common))[0] == 0
    if force:
        assert _finish(_solution("train", "tfidf-lr", *common))[0] == 0
    extra = ["--force"] if force else []
    for round_ in range(2 if force else 1):
        procs = [_solution("train", "tfidf-lr", *common, *extra) for _ in range(2)]
        results = [_finish(p) for p in procs]
        codes = sorted(r[0] for r in results)
        assert codes in ([0, 0], [0, 2]), results
        for code, out, err in results:
            if code == 2:
                assert "is in use by another run (PID " in _refusal(err)
        trained = sum(out.count("tfidf-lr fold 0: macro-F1") for _, out, _ in results)
        # --force: each run that got the lock retrains; without it only the very first run trains, once
        assert trained == (codes.count(0) if force else int(round_ == 0))
        mdir = root / "output" / "tfidf-lr"
        assert all((mdir / f"fold{k}" / "DONE.json").exists() for k in range(5))
        assert len(pd.read_csv(mdir / "oof.csv", dtype=str, keep_default_na=False)) == 60


def test_runs_on_different_models_share_an_output_folder(dirs):
    root, common = dirs
    assert _finish(_solution("folds", *common))[0] == 0
    procs = [_solution("train", name, *common) for name in ("tfidf-lr", "tfidf-lr-seed7")]
    for p in procs:
        code, out, err = _finish(p)
        assert code == 0, err
    assert all((root / "output" / name / "oof.csv").exists() for name in ("tfidf-lr", "tfidf-lr-seed7"))


def test_making_folds_waits_for_the_run_making_them(dirs):
    root, common = dirs
    holder = _holder(root / "folds")
    try:
        folds = _solution("folds", *common, "--force")
        line = folds.stderr.readline()
        deadline = time.time() + 60
        while "waiting" not in line and time.time() < deadline and folds.poll() is None:
            line = folds.stderr.readline()
        assert f"in use by another run (PID {holder.pid}" in line and "waiting for it" in line
        assert folds.poll() is None  # still waiting
    finally:
        holder.stdin.close()  # the holder finishes
        holder.wait()
    code, out, err = _finish(folds)
    assert code == 0, err
    assert (root / "folds" / "folds.csv").exists()


def test_the_lock_is_reentrant_and_clear_keeps_it(tmp_path):
    folder = tmp_path / "m"
    with pytest.raises(RuntimeError):
        lock.clear(tmp_path)
    with lock.hold(folder):
        with lock.hold(folder):  # the same process again: fine (run -> train -> ...)
            (folder / "fold0").mkdir()
            (folder / "config.json").write_text("{}")
        lock.clear(folder)
        assert [p.name for p in folder.iterdir()] == [lock.LOCK_NAME]
        holder = subprocess.run([sys.executable, "-c", HOLDER, str(folder)], env=_env(), text=True,
                                input="", capture_output=True, timeout=60)
        assert holder.returncode == 1 and "is in use by another run" in holder.stderr  # still held
    assert oct((folder / lock.LOCK_NAME).stat().st_mode & 0o777) == oct(0o666 & ~_umask())
