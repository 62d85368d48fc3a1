"""The kaggle CLI: credentials check (never printing a key), competition download, submit."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from solution import log
from solution.errors import UserError

DEFAULT_COMPETITION = "emotion-detection-spring-2024"
CREDENTIALS_HELP = ("set KAGGLE_API_TOKEN, or KAGGLE_USERNAME and KAGGLE_KEY, "
                    "or put kaggle.json in ~/.kaggle/ (see https://www.kaggle.com/settings → API)")


def _config_dir() -> Path:
    return Path(os.environ.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle")


def has_credentials() -> bool:
    env = os.environ
    if env.get("KAGGLE_API_TOKEN"):
        return True
    if env.get("KAGGLE_USERNAME") and env.get("KAGGLE_KEY"):
        return True
    d = _config_dir()
    return (d / "kaggle.json").is_file() or (d / "access_token").is_file()


def secrets() -> list[str]:
    """Credential values from the environment, to be scrubbed from anything the kit prints."""
    return [v for k in ("KAGGLE_KEY", "KAGGLE_API_TOKEN") if len(v := os.environ.get(k, "")) >= 4]


def scrub(text: str) -> str:
    for s in secrets():
        text = text.replace(s, "***")
    return text


def kaggle_executable() -> str:
    exe = shutil.which("kaggle")
    if exe is None:
        raise UserError("the `kaggle` command is not on PATH: install it with `pip install kaggle` "
                        "(./run.sh does) or activate the kit's .venv")
    return exe


def run_kaggle(args: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `kaggle ARGS`; a failure becomes a one-line UserError with the CLI's own last line."""
    if not has_credentials():
        raise UserError(f"no kaggle credentials: {CREDENTIALS_HELP}")
    cmd = [kaggle_executable(), *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise UserError(f"`kaggle {' '.join(args[:2])}` timed out after {timeout:.0f}s (no network?)") from None
    if proc.returncode != 0:
        lines = [ln for ln in scrub(proc.stderr + proc.stdout).strip().splitlines() if ln.strip()]
        last = lines[-1] if lines else f"exit code {proc.returncode}"
        raise UserError(f"`kaggle {' '.join(args[:2])}` failed: {last}")
    return proc


def download_competition(slug: str, dest: Path) -> Path:
    """Download and unzip the competition files into `dest` (the only write into an input dir)."""
    dest = Path(dest)
    log.info(f"downloading competition {slug!r} with the kaggle CLI into {dest}/")
    with tempfile.TemporaryDirectory(prefix="kaggle-dl-") as tmp:
        run_kaggle(["competitions", "download", "-c", slug, "-p", tmp])
        for z in Path(tmp).glob("*.zip"):
            with zipfile.ZipFile(z) as zf:
                zf.extractall(tmp)
        found = {p.name: p for p in Path(tmp).rglob("*.csv")}
        missing = [f for f in ("train.csv", "test.csv", "sample_submission.csv") if f not in found]
        if missing:
            raise UserError(f"competition {slug!r} download has no {', '.join(missing)} "
                            f"(got: {', '.join(sorted(found)) or 'nothing'})")
        dest.mkdir(parents=True, exist_ok=True)
        for name in ("train.csv", "test.csv", "sample_submission.csv"):
            shutil.copyfile(found[name], dest / f".{name}.part")
            os.replace(dest / f".{name}.part", dest / name)
    return dest
