"""`kernel`: a Kaggle notebook (+ kernel-metadata.json) that runs the kit offline, in one file.

Writes `<output>/kernel/`:
  <slug>.ipynb          the notebook: a first code cell of settings to edit (models, --set values, attached
                        backbones); a generated, hidden cell that recreates the `solution` package from an
                        archive embedded in it (no git clone); then a few lines per step, each a call into
                        `solution.kaggle_env`: install what the image lacks from the attached wheels dataset,
                        find the data and the backbones, copy the finished folds of an attached earlier output
                        (resume after a timeout), check the GPU, then `python -m solution run` (folds -> train ->
                        blend -> /kaggle/working/submission.csv)
  kernel-metadata.json  for `kaggle kernels push -p <output>/kernel` (GPU and its machine_shape only where
                        the models need one)
and with --wheels `<output>/kernel-wheels/` (wheels + dataset-metadata.json) for
`kaggle datasets create -p <output>/kernel-wheels`.
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
from dataclasses import dataclass
from pathlib import Path

from solution import config as config_mod
from solution import kaggle_env
from solution import log
from solution import wheels as wheels_mod
from solution.errors import UserError
from solution.io import write_json, write_text

DEFAULT_SLUG = "emotion-detection-kit"
DEFAULT_WHEELS_SLUG = "emotion-kit-wheels"
PLACEHOLDER_OWNER = "your-kaggle-username"
DEFAULT_PROFILE = "gpu"

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")  # owners, kernels, datasets, competitions
MODEL_PART = re.compile(r"^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$")  # model and variation slugs may hold dots: 1.1-2b-it
VERSION = re.compile(r"^[0-9]+$")
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*)?$")

# Kaggle's GPU machine shapes, as `kernel-metadata.json` "machine_shape" and `kaggle kernels push --accelerator`
# name them (kaggle 2.2.5's --accelerator help, the kaggle-cli docs/kernels.md list). A GPU notebook without a
# shape may get a P100, whose compute capability 6.0 the current Kaggle torch has no kernels for.
GPU_SHAPES = {
    "NvidiaTeslaT4": "GPU T4 x2, Kaggle's default GPU (2 x 16 GB, compute capability 7.5)",
    "NvidiaL4": "GPU L4 (only where Kaggle offers it)",
    "NvidiaL4X1": "one GPU L4 (only where Kaggle offers it)",
    "NvidiaTeslaA100": "GPU A100 (only in some competitions)",
    "NvidiaH100": "GPU H100 (only in some competitions)",
    "NvidiaRtxPro6000": "GPU RTX PRO 6000 (only in some competitions)",
}
DEFAULT_ACCELERATOR = "NvidiaTeslaT4"
NOT_FOR_THE_KIT = {"nvidiateslap100": "the P100 is retired on Kaggle, and current Kaggle torch has no kernels for "
                                      "its compute capability 6.0"}

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


def accelerator(value: str) -> str:
    """The canonical machine_shape for --accelerator (any case); UserError names the valid ones."""
    name = {k.lower(): k for k in GPU_SHAPES}.get(str(value).strip().lower())
    if name:
        return name
    key = str(value).strip().lower()
    why = NOT_FOR_THE_KIT.get(key) or ("a TPU: the kit trains with torch on CUDA or the CPU" if key.startswith("tpu")
                                       else "not one of Kaggle's GPU machine shapes")
    raise UserError(f"--accelerator {value!r}: {why}; choose one of {', '.join(GPU_SHAPES)} "
                    f"(default {DEFAULT_ACCELERATOR}: {GPU_SHAPES[DEFAULT_ACCELERATOR]})")


def _problems_shape(shape, enable_gpu) -> list[str]:
    if shape not in GPU_SHAPES:
        return [f"machine_shape {shape!r}: expected one of {', '.join(GPU_SHAPES)}"]
    if enable_gpu is not True:
        return [f"machine_shape {shape!r} is a GPU: it needs enable_gpu true"]
    return []


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
    if "machine_shape" in meta:
        problems += _problems_shape(meta["machine_shape"], meta.get("enable_gpu"))
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
    """--model-source/--dataset-weights HUB_ID=handle items into {hub id: handle}."""
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

SETTINGS = [  # the first code cell, in this order: what a user edits in the Kaggle editor
    ("COMPETITION", "the competition attached below (its CSVs are found under /kaggle/input)"),
    ("MODELS", "trained fold by fold, then blended (`python -m solution train --help` lists them)"),
    ("OVERRIDES", "--set KEY=VALUE items, as on the command line (each model that has KEY)"),
    ("REPORT_TO", "None, or 'wandb' (needs the internet)"),
    ("BACKBONES", "backbone hub id -> where its attached Kaggle model or dataset is mounted under /kaggle/input"),
    ("PREVIOUS_OUTPUTS", "earlier outputs of this notebook attached as inputs: their finished folds are reused"),
    ("WHEELS_DATASET", "the attached wheels of the packages the Kaggle image lacks (`kernel --wheels`)"),
]

# The kit does not exist before this cell has run, so this one cell is a template (filled with the archive).
KIT_CELL = r'''# GENERATED by `python -m solution kernel`: do not edit, regenerate the notebook. The `solution` package as a
# tar.gz (base64), unpacked into /kaggle/working/kit and put on sys.path: no git clone, no internet.
import base64, hashlib, io, os, shutil, sys, tarfile

KIT_DIR = os.environ.get("SOLUTION_KIT_DIR") or os.path.join(
    os.environ.get("SOLUTION_KAGGLE_ROOT", "/kaggle"), "working", "kit")  # tests point these at a fake layout


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

# The steps after the kit: a few lines each, calling into solution.kaggle_env (tested there).
STEP_CELLS = [
    ("packages", '''# Packages: what the Kaggle image lacks, or holds older than the kit needs, is installed offline
# from the attached wheels dataset; where it cannot be, the notebook stops here, before any model loads.
from solution import kaggle_env

CONFIGS = kaggle_env.configs(MODELS, OVERRIDES, REPORT_TO)
WHEELS = kaggle_env.install_missing(kaggle_env.packages_for(CONFIGS), WHEELS_DATASET)
kaggle_env.check_versions(kaggle_env.packages_for(CONFIGS), WHEELS)
'''),
    ("inputs", '''# Inputs: the competition data; the attached backbones (SOLUTION_WEIGHTS; nothing is downloaded); the
# finished folds of an attached earlier output of this notebook, so that a rerun after a timeout goes on.
DATA_DIR = kaggle_env.find_data(COMPETITION)
kaggle_env.point_to_weights(BACKBONES, CONFIGS)
RESUMED = kaggle_env.resume(PREVIOUS_OUTPUTS, DATA_DIR, CONFIGS)
'''),
    ("accelerator", '''# Accelerator, before any model loads: stops on a GPU this torch cannot run (a P100), or on models that
# need a GPU in a session without one.
N_GPUS = kaggle_env.check_accelerator(CONFIGS)
'''),
    ("run", '''# Train and blend: `python -m solution run` (folds -> train -> blend, as ./run.sh), outputs in /kaggle/working.
ARGV = kaggle_env.run_argv(DATA_DIR, MODELS, OVERRIDES, REPORT_TO)
kaggle_env.run_cli(ARGV)
'''),
    ("result", '''# The result: /kaggle/working/submission.csv (what Kaggle submits), the blend report beside it,
# and what became of each model (a model that failed is named here; the others made the submission).
SUBMISSION = kaggle_env.show_result()
'''),
]


@dataclass
class Plan:
    """What the notebook and its metadata are made from: the `kernel` arguments, resolved and checked."""

    names: list[str]
    cfgs: list
    overrides: list[str]
    report_to: str | None
    competition: str
    kernel_id: str
    title: str
    wheels_id: str
    attach_wheels: bool
    resume: list[str]  # kernel refs attached as earlier outputs
    model_refs: dict[str, str]  # hub id -> Kaggle Models handle
    data_refs: dict[str, str]  # hub id -> dataset
    gpu: bool
    accelerator: str | None  # machine_shape where gpu

    @property
    def slug(self) -> str:
        return self.kernel_id.split("/")[1]

    def settings(self) -> dict:
        return {"COMPETITION": self.competition, "MODELS": list(self.names), "OVERRIDES": list(self.overrides),
                "REPORT_TO": self.report_to,
                "BACKBONES": {h: mount_path(r) for h, r in {**self.model_refs, **self.data_refs}.items()},
                "PREVIOUS_OUTPUTS": list(dict.fromkeys([self.slug, *(mount_path(r) for r in self.resume)])),
                "WHEELS_DATASET": self.wheels_id.split("/")[1]}

    def lacking(self) -> list[str]:
        """The packages these models need that the Kaggle image lacks (only the wheels dataset brings them)."""
        return wheels_mod.kaggle_image_lacks(kaggle_env.packages_for(self.cfgs).values())


def _assignment(name: str, value, width: int = 110) -> str:
    """`NAME = value` as Python, a list or dict too long for one line with one item a line."""
    one = f"{name} = {value!r}"
    if len(one) <= width or not isinstance(value, (list, dict)):
        return one
    items = [f"{k!r}: {v!r}" for k, v in value.items()] if isinstance(value, dict) else [repr(v) for v in value]
    brackets = "{}" if isinstance(value, dict) else "[]"
    return f"{name} = {brackets[0]}\n" + "".join(f"    {item},\n" for item in items) + brackets[1]


def settings_source(settings: dict) -> str:
    lines = ["# Settings: edit them here, then Run All. Written by `python -m solution kernel` (see its --help)."]
    for name, comment in SETTINGS:
        lines += [f"# {comment}", _assignment(name, settings[name])]
    return "\n".join(lines) + "\n"


def _wrap(text: str, width: int = 100) -> str:
    return "\n".join(text[i:i + width] for i in range(0, len(text), width))


def kit_source(archive: bytes) -> str:
    sha = hashlib.sha256(archive).hexdigest()
    return (KIT_CELL.replace("__SHA256__", repr(sha))
            .replace("__ARCHIVE__", _wrap(base64.b64encode(archive).decode("ascii"))))


def intro_markdown(plan: Plan, meta: dict) -> str:
    attached = [f"- competition `{s}` → `/kaggle/input/{s}/`" for s in meta["competition_sources"]]
    attached += [f"- model `{s}` → `/kaggle/input/{mount_path(s)}/`" for s in meta["model_sources"]]
    attached += [f"- dataset `{s}` → `/kaggle/input/{mount_path(s)}/`" for s in meta["dataset_sources"]]
    attached += [f"- earlier output `{s}` → `/kaggle/input/{mount_path(s)}/`" for s in meta["kernel_sources"]]
    accel = (f"`{plan.accelerator}`: {GPU_SHAPES[plan.accelerator]}" if plan.gpu
             else "none: these models run on the CPU")
    lacking = ", ".join(f"`{p}`" for p in plan.lacking()) or "none"
    wheels = (f"from the wheels dataset `{plan.wheels_id}`" if plan.attach_wheels else
              "**no wheels dataset attached**: the notebook stops at its packages cell unless you attach one")
    return (f"# {plan.title}\n\nMulti-label emotion detection in tweets, trained offline with the `solution` kit. "
            f"Models: {', '.join(f'`{m}`' for m in plan.names)}.\n\n"
            "**Run All** runs: the settings (the first code cell: edit them there); the kit (a generated cell, "
            "source hidden, that unpacks the `solution` package embedded in it); the packages the Kaggle image "
            "lacks; the inputs (data, backbones, and the finished folds of an earlier output); the accelerator "
            "check; `python -m solution run` (folds → train → blend, like `./run.sh`); and "
            "`/kaggle/working/submission.csv`.\n\n"
            f"- accelerator: {accel}\n- packages the Kaggle image lacks: {lacking}"
            f"{'' if lacking == 'none' else ', ' + wheels}\n\n"
            "**Resuming after a timeout:** add this notebook's last output as an input (it mounts at "
            f"`/kaggle/input/{plan.slug}/`) and run again: folds with a `DONE.json` are not retrained.\n\n"
            "Attached by kernel-metadata.json:\n\n" + ("\n".join(attached) or "- nothing"))


def build_notebook(plan: Plan, meta: dict, files: dict[str, bytes]):
    """The notebook (nbformat 4, validated) and its kit archive's sha256; fixed cell ids, so that the same
    inputs give the same bytes."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    archive = make_archive(files)
    cells = [new_markdown_cell(intro_markdown(plan, meta), id="intro"),
             new_code_cell(settings_source(plan.settings()), id="settings"),
             new_code_cell(kit_source(archive), id="kit",
                           metadata={"jupyter": {"source_hidden": True}, "tags": ["generated"]})]
    cells += [new_code_cell(src, id=cid) for cid, src in STEP_CELLS]
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })
    nbformat.validate(nb)
    return nb, hashlib.sha256(archive).hexdigest()


def build_metadata(plan: Plan) -> dict:
    """kernel-metadata.json: private, internet off, a GPU (with its machine_shape) only where asked for."""
    wheels = [plan.wheels_id] if plan.attach_wheels else []
    meta = {
        "id": plan.kernel_id, "title": plan.title, "code_file": f"{plan.slug}.ipynb", "language": "python",
        "kernel_type": "notebook", "is_private": True, "enable_gpu": plan.gpu,
        **({"machine_shape": plan.accelerator} if plan.gpu else {}), "enable_tpu": False,
        "enable_internet": False, "competition_sources": [plan.competition],
        "model_sources": list(dict.fromkeys(plan.model_refs.values())),
        "dataset_sources": list(dict.fromkeys([*plan.data_refs.values(), *wheels])),
        "kernel_sources": list(dict.fromkeys(plan.resume)),
    }
    return validate_metadata(meta)


# ---------------------------------------------------------------------------------------------- plan

def _model_names(args) -> list[str]:
    names = ([m.strip() for m in args.models.split(",") if m.strip()] if args.models
             else config_mod.profile_models(args.profile or DEFAULT_PROFILE))
    if not names:
        raise UserError("--models: no model named")
    return names


def _competition(args) -> str:
    from solution.kaggle_cli import DEFAULT_COMPETITION

    competition = (args.competition or DEFAULT_COMPETITION).strip()
    problems = _problems_slug(competition, "--competition", max_len=100)
    if problems:
        raise UserError("; ".join(problems))
    return competition


def _ids(args) -> tuple[str, str, str, list[str]]:
    """kernel id, title, wheels dataset id and the earlier outputs to attach, all owner/slug."""
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
    resume = [kernel_id if r == "self" else _with_owner(r, owner, "--resume-from") for r in args.resume_from or []]
    return kernel_id, title, wheels_id, resume


def _weight_sources(args) -> tuple[dict[str, str], dict[str, str]]:
    """{hub id: Kaggle Models handle} from --model-source (and its deprecated spelling --weights), {hub id:
    dataset} from --dataset-weights."""
    if args.legacy_weights:
        print("note: `kernel --weights` is deprecated (it will be removed in the next release): use --model-source "
              "HUB_ID=owner/model/framework/variation/version (`blend --weights` are blend weights)")
    model_w = parse_mapping([*args.model_sources, *args.legacy_weights], "--model-source", 4)
    data_w = parse_mapping(args.dataset_weights, "--dataset-weights", 1)
    both = sorted(set(model_w) & set(data_w))
    if both:
        raise UserError(f"{', '.join(both)}: given with both --model-source and --dataset-weights; choose one")
    return model_w, data_w


def _gpu(args, cfgs) -> tuple[bool, str | None]:
    """GPU on where a model needs one (kaggle_env.needs_gpu) or --gpu/--accelerator asks; and its machine_shape."""
    shape = accelerator(args.accelerator) if args.accelerator else None
    gpu_models = [c.name for c in cfgs if kaggle_env.needs_gpu(c)]
    if args.gpu is False and shape:
        raise UserError(f"--accelerator {shape} asks for a GPU and --no-gpu for none: choose one")
    if args.gpu is False and gpu_models:
        raise UserError(f"--no-gpu: {', '.join(gpu_models)} need(s) a GPU (4-bit, or a backbone larger than the "
                        f"cpu profile's); drop --no-gpu or choose other --models")
    gpu = bool(gpu_models or shape) if args.gpu is None else args.gpu
    return gpu, (shape or DEFAULT_ACCELERATOR) if gpu else None


def make_plan(args) -> Plan:
    names = _model_names(args)
    # unknown models and bad --set values fail here, not on Kaggle; the notebook builds them the same way
    cfgs = kaggle_env.configs(names, args.overrides, args.report_to)
    competition = _competition(args)
    model_w, data_w = _weight_sources(args)
    kernel_id, title, wheels_id, resume = _ids(args)
    gpu, shape = _gpu(args, cfgs)
    return Plan(names=names, cfgs=cfgs, overrides=list(args.overrides), report_to=args.report_to,
                competition=competition, kernel_id=kernel_id, title=title, wheels_id=wheels_id,
                attach_wheels=bool(args.wheels or args.wheels_dataset), resume=resume, model_refs=model_w,
                data_refs=data_w, gpu=gpu, accelerator=shape)


def _notes(plan: Plan) -> None:
    """What the user should know before pushing: unused or missing backbones, packages nothing brings."""
    from solution.models.weights import PACKAGED

    mapped = {**plan.model_refs, **plan.data_refs}
    backbones = {c.backbone for c in plan.cfgs if c.kind in kaggle_env.TRANSFORMER_KINDS}
    for hub_id in sorted(set(mapped) - backbones):
        log.warn(f"--model-source/--dataset-weights {hub_id}: none of {', '.join(plan.names)} uses it "
                 f"(backbones: {', '.join(sorted(backbones)) or 'none'})")
    configured = {c.backbone for c in plan.cfgs if c.kind in kaggle_env.TRANSFORMER_KINDS and c.weights}
    unmapped = sorted(backbones - set(mapped) - set(PACKAGED) - configured)
    if unmapped:
        print("note: no --model-source/--dataset-weights for " + ", ".join(unmapped) + ": attach them on Kaggle "
              "yourself (the kit finds a folder under /kaggle/input named like the model); the notebook has no "
              "internet and stops at its inputs cell without them")
    lacking = plan.lacking()
    if lacking and not plan.attach_wheels:
        log.warn(f"the notebook needs {', '.join(lacking)}, which the Kaggle image lacks, and no wheels dataset is "
                 f"attached: add --wheels (downloads them for `kaggle datasets create -p <output>/kernel-wheels`), "
                 f"or --wheels-dataset OWNER/SLUG for one you made before; without it the notebook stops at its "
                 f"packages cell")


# ---------------------------------------------------------------------------------------------- command

def _write(plan: Plan, meta: dict, nb, out_root: Path) -> dict:
    import nbformat

    kdir = out_root / "kernel"
    kdir.mkdir(parents=True, exist_ok=True)
    for old in kdir.glob("*.ipynb"):  # a notebook of an earlier slug would be pushed by mistake by hand
        if old.name != meta["code_file"]:
            old.unlink()
    nb_path = write_text(nbformat.writes(nb) + "\n", kdir / meta["code_file"])
    meta_path = write_json(meta, kdir / "kernel-metadata.json")
    for path in (nb_path, meta_path):
        os.chmod(path, 0o644)  # atomic writes start as 0600
    return {"dir": kdir, "notebook": nb_path, "metadata": meta_path, "meta": meta, "size": nb_path.stat().st_size}


def push_command(kdir: Path, plan: Plan) -> str:
    return f"kaggle kernels push -p {kdir}" + (f" --accelerator {plan.accelerator}" if plan.gpu else "")


def write_kernel(args) -> dict:
    from solution.cli import DEFAULT_OUTPUT

    plan = make_plan(args)
    _notes(plan)
    meta = build_metadata(plan)
    nb, sha = build_notebook(plan, meta, package_files())
    out_root = Path(args.output or DEFAULT_OUTPUT)
    # the wheels first: a failed download leaves no notebook that expects them
    w = wheels_mod.build(out_root / "kernel-wheels", plan.wheels_id) if args.wheels else None
    result = {**_write(plan, meta, nb, out_root), "sha256": sha, "plan": plan}
    gpu = f"GPU {plan.accelerator}" if plan.gpu else "no GPU (CPU models; --gpu asks for one)"
    print(f"notebook: {result['notebook']} ({result['size']:,} bytes; models: {', '.join(plan.names)})")
    print(f"metadata: {result['metadata']} (id {plan.kernel_id}; {gpu})")
    if w:
        result["wheels"] = w
        print(f"wheels:   {w['dir']} ({len(w['wheels'])} wheels; dataset {plan.wheels_id})")
        print(f"next:     kaggle datasets create -p {w['dir']}   (once; `kaggle datasets version -p ... -m msg` "
              f"to update)")
    print(f"next:     {push_command(result['dir'], plan)}")
    return result


def _parser() -> argparse.ArgumentParser:
    from solution.cli import common_parser
    from solution.train import add_model_args

    cpu = config_mod.profile_models("cpu")
    p = argparse.ArgumentParser(
        prog="python -m solution kernel", parents=[common_parser()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write <output>/kernel/: a Kaggle notebook that embeds the kit and runs folds -> train -> "
                    "blend offline, and kernel-metadata.json for `kaggle kernels push -p <output>/kernel`.",
        epilog="examples:\n"
               f"  python -m solution kernel --profile cpu --wheels   # {', '.join(cpu)}; no GPU\n"
               "  python -m solution kernel --profile gpu --wheels \\\n"
               "      --model-source google/gemma-1.1-2b-it=google/gemma/transformers/1.1-2b-it/1 \\\n"
               "      --dataset-weights Qwen/Qwen1.5-7B=me/qwen1-5-7b\n"
               "  kaggle datasets create -p output/kernel-wheels\n"
               f"  kaggle kernels push -p output/kernel --accelerator {DEFAULT_ACCELERATOR}")
    p.add_argument("--profile", choices=sorted(config_mod.PROFILES), default=None,
                   help=f"model set (default: {DEFAULT_PROFILE}); " + "; ".join(
                       f"{k}: {', '.join(v)}" for k, v in sorted(config_mod.PROFILES.items())))
    p.add_argument("--models", default=None, help="comma-separated model names instead of a profile "
                                                   "(`python -m solution train --help` lists them)")
    p.add_argument("--model-source", dest="model_sources", action="append", default=[],
                   metavar="HUB_ID=OWNER/MODEL/FRAMEWORK/VARIATION/VERSION",
                   help="a backbone from Kaggle Models (mounted at /kaggle/input/MODEL/FRAMEWORK/VARIATION/VERSION); "
                        "repeatable")
    p.add_argument("--weights", dest="legacy_weights", action="append", default=[], metavar="HUB_ID=...",
                   help="deprecated spelling of --model-source (removed in the next release)")
    p.add_argument("--dataset-weights", action="append", default=[], metavar="HUB_ID=OWNER/DATASET",
                   help="a backbone from a Kaggle dataset (mounted at /kaggle/input/DATASET); repeatable")
    _add_attach_args(p)
    add_model_args(p)
    return p


def _add_attach_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gpu", action=argparse.BooleanOptionalAction, default=None,
                   help="ask Kaggle for a GPU (default: where a model needs one: 4-bit, or a backbone larger than "
                        "the cpu profile's all-MiniLM-L6-v2)")
    p.add_argument("--accelerator", default=None, metavar="SHAPE",
                   help=f"the GPU's machine_shape (default {DEFAULT_ACCELERATOR}: GPU T4 x2); one of "
                        f"{', '.join(GPU_SHAPES)}")
    p.add_argument("--wheels", action="store_true",
                   help="also download the wheels the Kaggle image lacks into <output>/kernel-wheels/ (+ "
                        "dataset-metadata.json) and attach that dataset")
    p.add_argument("--wheels-dataset", default=None, metavar="[OWNER/]SLUG",
                   help=f"the wheels dataset's id (default: OWNER/{DEFAULT_WHEELS_SLUG}); given alone, attaches "
                        f"that dataset (made before) without downloading")
    p.add_argument("--kernel-slug", default=None, metavar="[OWNER/]SLUG",
                   help=f"the notebook's id (default: $KAGGLE_USERNAME/{DEFAULT_SLUG})")
    p.add_argument("--title", default=None, help="the notebook's title (default: from the slug)")
    p.add_argument("--resume-from", action="append", nargs="?", const="self", default=None, metavar="[OWNER/]SLUG",
                   help="attach the output of an earlier run of a notebook (default: this one, once it has run) "
                        "so that finished folds are not retrained")


def main(argv=None) -> int:
    write_kernel(_parser().parse_args(argv))
    return 0
