"""The Kaggle notebook's steps, kept here so they are linted and tested; each cell calls a function or two.

Paths hang off SOLUTION_KAGGLE_ROOT so tests can fake the layout.
"""
from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from solution import cli, config, hardware
from solution import data as data_mod
from solution import folds as folds_mod
from solution.errors import UserError
from solution.hardware import KAGGLE_T4_HINT as T4_HINT
from solution.io import REPORT_JSON, read_checked, read_table
from solution.kaggle import wheels
from solution.models import weights
from solution.options import configs_for, model_settings
from solution.run import models_table
from solution.train.model_dir import fold_done, folds_signature, read_config

ROOT_ENV = "SOLUTION_KAGGLE_ROOT"
CSVS = ("train.csv", "test.csv", "sample_submission.csv")
# import name -> pip name
BASE_PACKAGES = {"numpy": "numpy", "pandas": "pandas", "sklearn": "scikit-learn", "scipy": "scipy",
                 "iterstrat": "iterative-stratification", "emoji": "emoji", "matplotlib": "matplotlib",
                 "tqdm": "tqdm", "psutil": "psutil"}
TRANSFORMER_KINDS = ("hf", "embed")  # model kinds that run a transformers backbone
HF_PACKAGES = {"torch": "torch", "transformers": "transformers", "peft": "peft", "accelerate": "accelerate"}


class NotebookStop(UserError):
    """Stops the notebook at its cell with one line: IPython prints `_render_traceback_` instead of a traceback."""

    def _render_traceback_(self) -> list[str]:
        return [f"error: {self}"]


def stops(fn):
    """A notebook step: a UserError becomes a NotebookStop."""
    @functools.wraps(fn)
    def step(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except NotebookStop:
            raise
        except UserError as e:
            raise NotebookStop(str(e)) from None
    return step


@dataclass(frozen=True)
class Paths:
    root: Path

    @property
    def input(self) -> Path:
        return self.root / "input"

    @property
    def working(self) -> Path:
        return self.root / "working"

    @property
    def folds(self) -> Path:
        return self.working / "folds"


def paths() -> Paths:
    return Paths(Path(os.environ.get(ROOT_ENV, "/kaggle")))


# ---------------------------------------------------------------------------------------------- the models

@stops
def configs(models, overrides=(), report_to=None) -> list:
    return configs_for(list(models), model_settings(overrides, report_to))


def packages_for(cfgs) -> dict[str, str]:
    pk = dict(BASE_PACKAGES)
    for cfg in cfgs:
        if cfg.kind in TRANSFORMER_KINDS:
            pk.update(HF_PACKAGES)
            if getattr(cfg, "quantize", "none") == "4bit":
                pk["bitsandbytes"] = "bitsandbytes"
            if cfg.backbone in weights.PACKAGED and not cfg.weights:
                pk[weights.PACKAGED[cfg.backbone]] = weights.PACKAGED[cfg.backbone].replace("_", "-")
        if getattr(cfg, "report_to", "none") == "wandb":
            pk["wandb"] = "wandb"
    return pk


def cpu_backbones() -> set[str]:
    return {getattr(config.get(name), "backbone", "") for name in config.profile_models("cpu")} - {""}


def needs_gpu(cfg) -> bool:
    """A transformer in 4 bits or larger than the cpu profile's."""
    return cfg.kind in TRANSFORMER_KINDS and (getattr(cfg, "quantize", "none") == "4bit"
                                              or cfg.backbone not in cpu_backbones())


# ---------------------------------------------------------------------------------------------- packages

def missing_packages(packages: dict[str, str]) -> dict[str, str]:
    return {imp: pip for imp, pip in packages.items() if importlib.util.find_spec(imp) is None}


def find_wheels(dataset: str, input_root: Path) -> Path | None:
    """<input>/<slug>, else a wheels folder named like it."""
    direct = Path(input_root) / dataset
    if direct.is_dir() and any(direct.glob("*.whl")):
        return direct
    hits = weights.shallowest_dirs(input_root, lambda parts, files: any(f.endswith(".whl") for f in files)
                                   and weights.path_names(parts, dataset), max_depth=4)
    return hits[0] if hits else None


def _pip(cmd: list[str]) -> subprocess.CompletedProcess:
    """Tests replace it."""
    return subprocess.run(cmd, capture_output=True, text=True)


def installed_version(pip_name: str) -> str | None:
    """Tests replace it."""
    try:
        return importlib.metadata.version(pip_name)
    except importlib.metadata.PackageNotFoundError:
        return None


def floor(pip: str) -> str | None:
    return {wheels.dist_name(k): v for k, v in wheels.FLOORS.items()}.get(wheels.dist_name(pip))


def too_old(packages: dict[str, str]) -> dict[str, str]:
    """pip name -> installed version, of those below their floor."""
    out = {}
    for pip in sorted(set(packages.values())):
        version = installed_version(pip) if floor(pip) else None
        if version is not None and not wheels.meets(version, floor(pip)):
            out[pip] = version
    return out


def _wheels_in(wheels_dir: Path) -> dict[str, list[str]]:
    have: dict[str, list[str]] = {}
    for w in wheels_dir.glob("*.whl"):
        have.setdefault(wheels.dist_name(w.name), []).append(wheels.wheel_version(w.name))
    return have


def _pip_install(wheels_dir: Path, specs: list[str], *flags: str) -> str:
    """Offline pip install; pip's complaint or ''."""
    print(f"installing offline from {wheels_dir}: {', '.join(specs)}", flush=True)
    proc = _pip([sys.executable, "-m", "pip", "install", "--no-index", *flags, "--quiet",
                 "--find-links", str(wheels_dir), *specs])
    importlib.invalidate_caches()
    lines = [ln for ln in (proc.stderr or "").splitlines() if ln.strip()]
    return lines[-1] if proc.returncode and lines else ""


def _install_from(wheels_dir: Path, missing: dict[str, str]) -> str:
    have = _wheels_in(wheels_dir)
    wanted = sorted({pip for pip in missing.values() if wheels.dist_name(pip) in have})
    if not wanted:
        return "no wheel for them there"
    return _pip_install(wheels_dir, wanted, "--no-deps")


def _upgrade_from(wheels_dir: Path, old: dict[str, str]) -> str:
    have = _wheels_in(wheels_dir)
    wanted = [f"{pip}>={floor(pip)}" for pip in sorted(old)
              if any(wheels.meets(v, floor(pip)) for v in have.get(wheels.dist_name(pip), []))]
    return _pip_install(wheels_dir, wanted) if wanted else ""


def _older(old: dict[str, str]) -> str:
    found = ", ".join(f"{pip} {version}" for pip, version in old.items())
    needs = ", ".join(f"{pip}>={floor(pip)}" for pip in old)
    return f"{found} {'is' if len(old) == 1 else 'are'} older than the kit needs ({needs})"


@stops
def install_missing(packages: dict[str, str], wheels_dataset: str) -> Path | None:
    """Install what the image lacks or holds too old from the attached wheels dataset, or stop."""
    missing, old = missing_packages(packages), too_old(packages)
    wheels_dir = find_wheels(wheels_dataset, paths().input)
    print(f"wheels: {wheels_dir or 'none attached'}")
    problem = ""
    if missing and wheels_dir:
        problem = _install_from(wheels_dir, missing)
        missing = missing_packages(packages)
    if missing and wheels_dir:
        raise NotebookStop(f"missing package(s) {', '.join(sorted(set(missing.values())))}, not installable "
                           f"from {wheels_dir} ({problem or 'pip installed nothing'}): rebuild the dataset with "
                           f"`python -m solution kernel --wheels` and `kaggle datasets version -p "
                           f"output/kernel-wheels -m update`")
    if missing:
        raise NotebookStop(f"missing package(s) {', '.join(sorted(set(missing.values())))} (the Kaggle image "
                           f"lacks them) and no wheels dataset {wheels_dataset!r} is attached: run `python -m "
                           f"solution kernel --wheels` and `kaggle datasets create -p output/kernel-wheels`, then "
                           f"push again (or Add Input > Datasets in the editor; or turn the internet on and pip "
                           f"install them)")
    problem = _upgrade_from(wheels_dir, old) if old and wheels_dir else ""
    if problem:
        raise NotebookStop(f"{_older(too_old(packages) or old)}, and pip would not install the newer wheel from "
                           f"{wheels_dir} ({problem}): set the notebook to Kaggle's latest environment (\"Always use "
                           f"latest environment\" in the editor's settings), or turn the internet on and `pip install "
                           f"-U` it")
    print(f"packages: all {len(packages)} present")
    return wheels_dir


@stops
def check_versions(packages: dict[str, str], wheels_dir: Path | None) -> None:
    """Stop before any model loads where a library is older than wheels.FLOORS."""
    old = too_old(packages)
    if not old:
        checked = sorted(p for p in set(packages.values()) if floor(p))
        print(f"versions: {', '.join(f'{p} {installed_version(p)}' for p in checked) or 'nothing to check'}")
        return
    what = _older(old)
    update = "`python -m solution kernel --wheels` then `kaggle datasets version -p output/kernel-wheels -m update`"
    if wheels_dir:
        raise NotebookStop(f"{what}, and {wheels_dir} holds no newer wheel: rebuild the wheels dataset with {update}, "
                           f"then run again")
    raise NotebookStop(f"{what}, and no wheels dataset is attached to bring a newer one: {update} (`kaggle datasets "
                       f"create` the first time), then attach it (Add Input > Datasets, or `kernel --wheels-dataset`) "
                       f"and run again")


# ---------------------------------------------------------------------------------------------- inputs

@stops
def find_data(competition: str) -> Path:
    """The folder with the competition's CSVs, preferring one named like the competition."""
    root = paths().input
    hits = weights.shallowest_dirs(root, lambda parts, files: all(f in files for f in CSVS), max_depth=3)
    named = [d for d in hits if d.name == competition]
    if not hits:
        raise NotebookStop(f"no {', '.join(CSVS)} under {root}: attach the competition {competition!r} "
                           f"(Add Input > Competitions)")
    print(f"data: {(named or hits)[0]}")
    return (named or hits)[0]


@stops
def point_to_weights(backbones: dict[str, str], cfgs) -> dict[str, str]:
    """SOLUTION_WEIGHTS from the attached mounts."""
    root = paths().input
    os.environ["SOLUTION_KAGGLE_INPUT"] = str(root)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the notebook has no internet
    os.environ.setdefault("TRANSFORMERS_OFFLINE", os.environ["HF_HUB_OFFLINE"])
    found = {}
    for hub_id, mount in backbones.items():
        folder = weights.model_folder(root / mount, max_depth=4)
        print(f"weights {hub_id}: {folder or f'NOT ATTACHED (expected under {root / mount})'}")
        if folder:
            found[hub_id] = str(folder)
    if found:
        os.environ["SOLUTION_WEIGHTS"] = ";".join(f"{k}={v}" for k, v in found.items())
    if os.environ["HF_HUB_OFFLINE"] == "1":
        _check_backbones(cfgs)
    return found


def _check_backbones(cfgs) -> None:
    nowhere: dict[str, list[str]] = {}
    for cfg in cfgs:
        if cfg.kind in TRANSFORMER_KINDS and weights.resolve(cfg.backbone, cfg.weights) == cfg.backbone:
            nowhere.setdefault(cfg.backbone, []).append(cfg.name)
    if nowhere:
        what = "; ".join(f"{hub_id} ({', '.join(names)})" for hub_id, names in nowhere.items())
        raise NotebookStop(f"no weights under {paths().input} for {what}, and the notebook has no internet: "
                           f"attach each (`python -m solution kernel --model-source HUB_ID=owner/model/framework/"
                           f"variation/version` or `--dataset-weights HUB_ID=owner/dataset`, or Add Input in the "
                           f"editor and name its folder in BACKBONES)")


def find_previous(names) -> list[Path]:
    root = paths().input
    out = []
    for name in names:
        hits = weights.shallowest_dirs(root, lambda parts, files: bool(parts) and parts[-1] == name
                                       and root.joinpath(*parts, "folds", "folds.json").is_file(), max_depth=3)
        out += [d for d in hits[:1] if d not in out]
    return out


# ---------------------------------------------------------------------------------------------- resume

@stops
def resume(previous: list[str], data_dir: Path, cfgs) -> dict[str, list[str]]:
    """Copy attached earlier outputs' folds and finished folds in, so `run` trains only the rest."""

    prev_dirs = find_previous(previous)
    if not prev_dirs:
        print("resume: no earlier output attached; training from scratch")
        return {}
    wanted = {"fingerprint": data_mod.load(data_dir).fingerprint(), "n_splits": folds_mod.DEFAULT_N_SPLITS,
              "seed": folds_mod.DEFAULT_SEED}
    p = paths()
    copied: dict[str, list[str]] = {}
    for prev in prev_dirs:
        if _same_folds(prev, p.folds, wanted):
            for cfg in cfgs:
                copied.setdefault(cfg.name, []).extend(_copy_finished(prev, p.working, cfg, wanted))
    return copied


def _signature(folds_dir: Path) -> dict | None:
    try:
        return folds_signature(folds_dir)
    except UserError:
        return None


def _same_folds(prev: Path, folds_dir: Path, wanted: dict) -> bool:
    if _signature(prev / "folds") != wanted:
        print(f"resume: {prev} was made from other data or folds; not used")
        return False
    if not (folds_dir / "folds.json").is_file():
        shutil.copytree(prev / "folds", folds_dir, dirs_exist_ok=True)
    if _signature(folds_dir) != wanted:
        print(f"resume: {prev} has other folds than {folds_dir}; not used")
        return False
    return True


def _copy_finished(prev: Path, working: Path, cfg, signature: dict) -> list[str]:
    src, dst = prev / cfg.name, working / cfg.name
    if not (src / "config.json").is_file():
        return []
    try:
        record = read_config(src)
    except UserError:  # damaged: retrained, as another config would be
        record = {}
    if record.get("config_fingerprint") != cfg.fingerprint() or record.get("folds") != signature:
        print(f"resume: {src} was trained with another config or other folds; retraining {cfg.name}")
        return []
    dst.mkdir(parents=True, exist_ok=True)
    if not (dst / "config.json").exists():
        shutil.copy2(src / "config.json", dst / "config.json")
    copied = []
    for fold in sorted(d for d in src.iterdir() if d.is_dir() and d.name.startswith("fold")):
        if fold_done(fold, cfg.fingerprint()) and not fold_done(dst / fold.name, cfg.fingerprint()):
            shutil.rmtree(dst / fold.name, ignore_errors=True)  # a half-trained fold of this run
            shutil.copytree(fold, dst / fold.name)
            copied.append(fold.name)
    print(f"resume: {cfg.name}: {len(copied)} finished fold(s) from {prev}: {', '.join(copied) or '-'}")
    return copied


# ---------------------------------------------------------------------------------------------- run

@stops
def check_accelerator(cfgs) -> int:
    """Refuse a GPU this torch cannot run, or GPU models without a GPU."""

    n = hardware.check_gpus()
    gpu_models = [cfg.name for cfg in cfgs if needs_gpu(cfg)]
    if gpu_models and not n:
        raise NotebookStop(f"{', '.join(gpu_models)} need(s) a GPU and this session has none: {T4_HINT}")
    print(f"accelerator: {n} GPU(s) that torch can run" if n else "accelerator: none; the models run on the CPU")
    return n


def run_argv(data_dir, models, overrides=(), report_to=None, time_budget=None) -> list[str]:
    p = paths()
    argv = ["run", "--input", str(data_dir), "--folds-dir", str(p.folds), "--output", str(p.working),
            "--models", ",".join(models)]
    for item in overrides:
        argv += ["--set", item]
    argv += ["--report-to", report_to] if report_to else []
    return argv + (["--time-budget", str(time_budget)] if time_budget else [])


def run_cli(argv: list[str]) -> None:
    print("python -m solution " + " ".join(argv), flush=True)
    code = cli.main(list(argv))
    if code != 0:
        raise NotebookStop(f"`python -m solution {argv[0]}` failed with exit code {code}; its error is above")


@stops
def show_result() -> Path:
    p = paths()
    path, report = p.working / "submission.csv", p.working / "blend" / "report.json"
    if not path.is_file():
        raise NotebookStop(f"no {path}: the run cell above says why")
    sub = read_table(path)  # IDs as written
    print(f"{path}: {len(sub)} rows; report: {report.with_suffix('.md')}")
    print(sub.head().to_string(index=False))
    rows = read_checked(report, REPORT_JSON).get("run_models") if report.is_file() else None
    if rows:
        print(models_table(rows))
    return path
