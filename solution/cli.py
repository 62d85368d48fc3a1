"""`python -m solution <command>`: argument parsing and dispatch only; each command is a `main(argv)`."""
from __future__ import annotations

import importlib
import os
import sys

from solution import config, log
from solution.errors import UserError, as_os_error, os_error
from solution.hardware import is_main_process, world_size
from solution.kaggle.cli import scrub

COMMANDS = {
    "folds": ("solution.folds", "make multilabel-stratified folds into folds/ (once)"),
    "train": ("solution.train.train", "train models fold by fold; writes output/<model>/"),
    "blend": ("solution.blend.blend", "blend models' OOF/test probabilities, tune thresholds, write the submission"),
    "submit": ("solution.kaggle.submit", "check output/submission.csv and submit it with the kaggle CLI"),
    "run": ("solution.run", "folds -> train -> blend [-> submit], the whole job"),
    "predict": ("solution.predict", "predict emotions of new tweets with the trained models"),
    "kernel": ("solution.kaggle.kernel", "write a Kaggle notebook (+ metadata) that runs the kit offline"),
}


def usage() -> str:
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

    if world_size() > 1:
        join_process_group()
    log.route_libraries(log.verbose_requested(rest), transformers=name in ("train", "run", "predict"))
    module = importlib.import_module(COMMANDS[name][0])
    return run_main(module.main, rest)


def join_process_group() -> None:
    """Under `accelerate launch`: join the process group before a library sets accelerate up alone; only the
    first process prints."""
    import torch
    from accelerate import PartialState

    PartialState(cpu=not torch.cuda.is_available())
    if not is_main_process():
        sys.stdout = open(os.devnull, "w")


def run_main(fn, argv) -> int:
    """Call a command's main; a UserError or OSError becomes one line on stderr and exit code 2."""
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
    print(f"error: {scrub(message)}", file=sys.stderr)
    return code


def entry() -> None:
    sys.exit(main())
