"""`python -m solution <command>`: argument parsing and dispatch only; each command is a `main(argv)`."""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from solution import log
from solution.errors import UserError, as_os_error, os_error

COMMANDS = {
    "folds": ("solution.folds", "make multilabel-stratified folds into folds/ (once)"),
    "train": ("solution.train", "train models fold by fold; writes output/<model>/"),
    "blend": ("solution.blend", "blend models' OOF/test probabilities, tune thresholds, write the submission"),
    "submit": ("solution.submit", "check output/submission.csv and submit it with the kaggle CLI"),
    "run": ("solution.pipeline", "folds -> train -> blend [-> submit], the whole job"),
    "predict": ("solution.predict", "predict emotions of new tweets with the trained models"),
    "kernel": ("solution.kernel", "write a Kaggle notebook (+ metadata) that runs the kit offline"),
}

DEFAULT_INPUT, DEFAULT_FOLDS, DEFAULT_OUTPUT = Path("input"), Path("folds"), Path("output")
DEMO_DIR = Path("output") / "demo"
# run.sh changes into the kit's folder; it passes the folder the user ran it from here
CALLER_DIR = "SOLUTION_CWD"


def user_path(value: str) -> Path:
    """A path the user typed (argparse type of every path option), relative to where the user stands.

    run.sh runs the kit from its own folder, so that the defaults (input/, folds/, output/) are the kit's;
    a path the user gives is taken against the folder they ran it from (SOLUTION_CWD).
    """
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
    g.add_argument("--competition", default=None, help="kaggle competition slug (default: emotion-detection-spring-2024)")
    p.add_argument("--verbose", action="store_true",
                   help="show the libraries' warnings here instead of in the step's log file (train.log, blend.log)")
    return p


def resolve_dirs(args) -> Dirs:
    """Where the data comes from: --input always wins; else input/; else a kaggle download; else the demo."""
    from solution.kaggle_cli import DEFAULT_COMPETITION, download_competition, has_credentials

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
    # a demo keeps its folds and outputs apart, so a demo submission can never be submitted by mistake
    folds = args.folds_dir or (DEMO_DIR / "folds" if demo else DEFAULT_FOLDS)
    output = args.output or (DEMO_DIR if demo else DEFAULT_OUTPUT)
    for option, path in (("--folds-dir", folds), ("--output", output)):
        if Path(path).exists() and not Path(path).is_dir():
            raise UserError(f"{path}: {option} is a file, not a directory")
    return Dirs(Path(input_dir), Path(folds), Path(output), demo)


def resolve_data(args):
    from solution import data as data_mod

    dirs = resolve_dirs(args)
    if dirs.demo:
        from solution.demo import write_demo

        if not (dirs.input / "train.csv").exists():
            write_demo(dirs.input)
        log.banner(f"DEMO DATA: no input/train.csv and no kaggle credentials; using the generated demo set in "
                   f"{dirs.input}/. Results are NOT competition results.")
    return data_mod.load(dirs.input), dirs


def usage() -> str:
    from solution import config

    lines = ["Emotion detection in tweets: a Kaggle solution kit (README.md has the whole story).", "",
             "The two commands:",
             "  ./run.sh                 set up (first time), then folds -> train -> blend -> output/submission.csv",
             "  ./run.sh test            set up the same way, then run the test suite", "",
             "usage: ./run.sh <command> [options]   or   python -m solution <command> [options]",
             "       (<command> --help for its options; ./run.sh with no command is `run`)", "", "commands:"]
    lines += [f"  {name:<8} {desc}" for name, (_, desc) in COMMANDS.items()]
    lines += ["", "models (--models a,b or train NAME; NAME-seedN for another seed):"]
    lines += _wrap_names(config.known())
    lines += ["", "profiles (--profile):"] + [f"  {p:<5} {', '.join(m)}" for p, m in config.PROFILES.items()]
    return "\n".join(lines)


def _wrap_names(names: list[str], width: int = 100) -> list[str]:
    out, line = [], " "
    for n in names:
        if len(line) + len(n) + 2 > width:
            out.append(line.rstrip(","))
            line = " "
        line += f" {n},"
    return out + [line.rstrip(",")]


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    from solution.hardware import world_size

    if world_size() > 1:
        join_process_group()
    log.route_libraries(log.verbose_requested(rest), transformers=name in ("train", "run", "predict"))
    module = importlib.import_module(COMMANDS[name][0])
    return run_main(module.main, rest)


def join_process_group() -> None:
    """Under `accelerate launch` / torchrun: join the processes training each fold together before any library
    sets accelerate's state up for one process (on a CPU it must be told, or it trains alone); only the first
    process prints."""
    import torch
    from accelerate import PartialState

    from solution.hardware import is_main_process

    PartialState(cpu=not torch.cuda.is_available())
    if not is_main_process():
        sys.stdout = open(os.devnull, "w")


def run_main(fn, argv) -> int:
    """Call a command's main; a UserError, or an OSError (full disk, read-only file system, a file where a
    folder must be, ...: errors.os_error), becomes one line on stderr and exit code 2."""
    try:
        return int(fn(argv) or 0)
    except UserError as e:
        return _refuse(str(e), e.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `... | head`: the reader went away; not an error worth a traceback
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141
    except Exception as e:
        err = as_os_error(e)
        if err is None:
            raise
        return _refuse(os_error(err), UserError.exit_code)


def _refuse(message: str, code: int) -> int:
    from solution.kaggle_cli import scrub

    print(f"error: {scrub(message)}", file=sys.stderr)
    return code


def entry() -> None:
    sys.exit(main())
