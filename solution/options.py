"""The CLI options shared by the commands: data locations, --set overrides, --time-budget, --folds."""
from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path

from solution import config as config_mod
from solution import data as data_mod
from solution import log
from solution.demo import write_demo
from solution.errors import UserError
from solution.hardware import cuda_count
from solution.kaggle.cli import DEFAULT_COMPETITION, download_competition, has_credentials
from solution.train import budget as budget_mod

DEFAULT_INPUT, DEFAULT_FOLDS, DEFAULT_OUTPUT = Path("input"), Path("folds"), Path("output")


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config setting, cast to its type (repeatable), e.g. --set epochs=2")
    p.add_argument("--report-to", choices=["none", "wandb"], default=None, help="optional Weights & Biases logging")
    p.add_argument("--time-budget", default=None, metavar="DURATION",
                   help="e.g. 28m, 2h, 11h30m, or none (or 0): train only what fits, in an order that gives a "
                        "submission early (default: on Kaggle the 12-hour session less 20 minutes; `run` of the cpu "
                        "profile on a CPU 28m; else none)")


ENGINES = ("local", "ray")


def add_engine_args(p: argparse.ArgumentParser) -> None:
    """--engine and --ray-address, for `run` and `train`."""
    p.add_argument("--engine", choices=ENGINES, default="local",
                   help="where the (model, fold) jobs run: local (this machine: one worker per GPU, else this "
                        "process) or ray (a Ray cluster's GPUs or CPU slots, one Ray task a job; docs/parallel.md)")
    p.add_argument("--ray-address", default=None, metavar="HOST:PORT",
                   help="with --engine ray: the cluster to join (`auto`: the one `ray start` made on this machine; "
                        "default: RAY_ADDRESS, else a Ray instance started on this machine for the run)")


def configs_from_args(names: list[str], args) -> list:
    return configs_for(names, model_settings(args.overrides, getattr(args, "report_to", None)))


def model_settings(overrides, report_to: str | None = None) -> tuple[str, ...]:
    """The user's --set items, with --report-to as one more."""
    return (*overrides, *([f"report_to={report_to}"] if report_to else []))


def configs_for(names: list[str], settings) -> list:
    """Each model's config with its --set items: KEY=VALUE to every model with the setting, MODEL.KEY=VALUE to one."""
    common, per_model = split_overrides(list(settings))
    for model in per_model:
        if model not in names:
            raise UserError(f"--set {model}.{per_model[model][0]}: {model!r} is not among the models of this run "
                            f"({', '.join(names)})")
    bases = {n: config_mod.get(n).to_dict() for n in names}
    unknown = [o for o in common if len(names) > 1 and not any(o.split("=", 1)[0].strip() in b for b in bases.values())]
    if unknown:
        raise UserError(f"--set {unknown[0]}: no model of this run ({', '.join(names)}) has that setting; "
                        f"`python -m solution train NAME --set x=1` lists a model's settings")
    cfgs = []
    for n in names:
        applicable = common if len(names) == 1 else [o for o in common if o.split("=", 1)[0].strip() in bases[n]]
        cfgs.append(config_mod.get(n, [*applicable, *per_model.get(n, [])]))
    return cfgs


def split_overrides(overrides: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """(KEY=VALUE items, {model: [KEY=VALUE, ...]} from MODEL.KEY=VALUE items)."""
    common, per_model = [], {}
    for o in overrides:
        key, eq, value = o.partition("=")
        model, dot, setting = key.strip().rpartition(".")
        if dot and model:
            per_model.setdefault(model, []).append(f"{setting}{eq}{value}")
        else:
            common.append(o)
    return common, per_model


def overrides_for(name: str, overrides: list[str]) -> list[str]:
    """The --set items that reach model `name` (common ones it has, then its own)."""
    common, per_model = split_overrides(overrides)
    base = config_mod.get(name).to_dict()
    return [o for o in common if o.split("=", 1)[0].strip() in base] + per_model.get(name, [])


def default_profile() -> str:
    return "gpu" if cuda_count() else "cpu"


def parse_folds(s: str | None):
    if s is None:
        return None
    try:
        return sorted({int(x) for x in s.split(",") if x.strip()})
    except ValueError:
        raise UserError(f"--folds {s!r}: expected comma-separated fold numbers, e.g. 0,2") from None


def parse_budget(args, default_s=None):
    """--time-budget in seconds; `none` (or any zero) for no budget; else Kaggle's 12-hour limit, else `default_s`."""
    given = getattr(args, "time_budget", None)
    if given and given.strip().lower() in ("none", "off"):
        return None
    if given:
        return budget_mod.parse_duration(given) or None  # 0, 0s and 0m agree: like `timeout 0`, no limit
    kaggle = kaggle_session_budget()
    return kaggle if kaggle is not None else default_s


DEMO_DIR = Path("output") / "demo"


# run.sh changes into the kit's folder; it passes the folder the user ran it from here
CALLER_DIR = "SOLUTION_CWD"


def user_path(value: str) -> Path:
    """A path option, relative to where the user ran run.sh (SOLUTION_CWD)."""
    p = Path(value).expanduser()
    caller = os.environ.get(CALLER_DIR)
    return p if p.is_absolute() or not caller else Path(caller) / p


@dataclass
class Dirs:
    input: Path
    folds: Path
    output: Path
    demo: bool = False


def common_parser() -> argparse.ArgumentParser:
    """--input/--folds-dir/--output/--competition, shared by every command that reads data."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("data and output locations")
    g.add_argument("--input", type=user_path, default=None,
                   help="directory with train.csv, test.csv, sample_submission.csv (default: input/, "
                        "downloaded with the kaggle CLI if missing, else a generated demo set)")
    g.add_argument("--folds-dir", type=user_path, default=None, help="where folds.csv lives (default: folds/)")
    g.add_argument("--output", type=user_path, default=None,
                   help="where models, blend and submission go (default: output/)")
    g.add_argument("--competition", default=None,
                   help="kaggle competition slug (default: emotion-detection-spring-2024)")
    p.add_argument("--verbose", action="store_true",
                   help="show the libraries' warnings here instead of in the step's log file (train.log, blend.log)")
    return p


def resolve_dirs(args) -> Dirs:
    """Where the data comes from: --input always wins; else input/; else a kaggle download; else the demo."""

    demo = False
    if args.input is not None:
        input_dir = Path(args.input)
        if not input_dir.is_dir():
            what = "is not a directory" if input_dir.exists() else "directory not found"
            raise UserError(f"{input_dir}: --input {what}")
    elif (DEFAULT_INPUT / "train.csv").exists():
        input_dir = DEFAULT_INPUT
    elif has_credentials() and not getattr(args, "no_download", False):
        input_dir = download_competition(args.competition or DEFAULT_COMPETITION, DEFAULT_INPUT)
    else:
        demo = True
        input_dir = DEMO_DIR / "input"
    # a demo keeps its folds and outputs apart, so its submission is never sent by mistake
    folds = args.folds_dir or (DEMO_DIR / "folds" if demo else DEFAULT_FOLDS)
    output = args.output or (DEMO_DIR if demo else DEFAULT_OUTPUT)
    for option, path in (("--folds-dir", folds), ("--output", output)):
        if Path(path).exists() and not Path(path).is_dir():
            raise UserError(f"{path}: {option} is a file, not a directory")
    return Dirs(Path(input_dir), Path(folds), Path(output), demo)


def resolve_data(args):
    dirs = resolve_dirs(args)
    if dirs.demo:

        if not (dirs.input / "train.csv").exists():
            write_demo(dirs.input)
        log.banner(f"DEMO DATA: no input/train.csv and no kaggle credentials; using the generated demo set in "
                   f"{dirs.input}/. Results are NOT competition results.")
    return data_mod.load(dirs.input), dirs


def kaggle_session_budget(margin_s: float = 20 * 60, session_s: float = 12 * 3600) -> float | None:
    """On Kaggle: the 12-hour limit less the time since the container started, less a margin."""
    if not (os.environ.get("KAGGLE_KERNEL_RUN_TYPE") or os.environ.get("KAGGLE_URL_BASE")):
        return None
    try:  # PID 1 started with the container; a restarted kernel did not
        import psutil

        started = min(psutil.Process(1).create_time(), psutil.Process(os.getpid()).create_time())
    except Exception:
        started = time.time()
    return max(60.0, session_s - margin_s - (time.time() - started))

