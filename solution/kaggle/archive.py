"""The kit inside the notebook: solution/**/*.py packed as a deterministic tar.gz."""
from __future__ import annotations

import base64
import gzip
import io
import json
import re
import tarfile
from pathlib import Path

from solution.errors import UserError


def package_files(package_dir: Path | None = None) -> dict[str, bytes]:
    """The working tree's package: solution/**/*.py (no __pycache__) and setup.cfg, by archive name."""
    package_dir = Path(package_dir or Path(__file__).resolve().parents[1])  # solution/, this file being in kaggle/
    files = {}
    for p in sorted(package_dir.rglob("*.py")):
        rel = p.relative_to(package_dir)
        if "__pycache__" in rel.parts or any(part.startswith(".") for part in rel.parts):
            continue
        files[f"{package_dir.name}/{rel.as_posix()}"] = p.read_bytes()
    setup_cfg = package_dir.parent / "setup.cfg"
    if setup_cfg.is_file():
        files["setup.cfg"] = setup_cfg.read_bytes()
    return files


def make_archive(files: dict[str, bytes]) -> bytes:
    """A deterministic tar.gz (sorted names, zero timestamps and owners): the same tree gives the same notebook."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(files[name]), 0, 0o644
            tf.addfile(info, io.BytesIO(files[name]))
    return gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)


def unpack_archive(blob: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tf:
        return {m.name: tf.extractfile(m).read() for m in tf.getmembers() if m.isfile()}


def read_archive(notebook_path: Path) -> dict[str, bytes]:
    """The files embedded in a generated notebook (for tests and for checking a notebook by hand)."""
    nb = json.loads(Path(notebook_path).read_text(encoding="utf-8"))
    src = "".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                  for c in nb["cells"] if c["cell_type"] == "code")
    m = re.search(r'KIT_ARCHIVE = """(.*?)"""', src, re.S)
    if not m:
        raise UserError(f"{notebook_path}: no embedded kit archive")
    return unpack_archive(base64.b64decode("".join(m.group(1).split())))


def base64_lines(archive: bytes, width: int = 100) -> str:
    """The archive in base64, `width` characters a line."""
    text = base64.b64encode(archive).decode("ascii")
    return "\n".join(text[i:i + width] for i in range(0, len(text), width))
