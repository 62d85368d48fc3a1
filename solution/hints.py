"""The commands that hints print, with the user's own locations: followed as printed, a hint reads and writes
where the run that printed it did."""
from __future__ import annotations

import shlex
from pathlib import Path

from solution.options import DEFAULT_FOLDS, DEFAULT_INPUT, DEFAULT_OUTPUT

LOCATIONS = (("--input", "input", DEFAULT_INPUT), ("--folds-dir", "folds", DEFAULT_FOLDS),
             ("--output", "output", DEFAULT_OUTPUT))


def command(name: str, *args, dirs=None, **where) -> str:
    """`python -m solution NAME ARGS` plus --input/--folds-dir/--output for each location (from `dirs`, or the
    keywords input=, folds=, output=) that is not the default one."""
    words = ["python", "-m", "solution", name, *map(str, args)]
    for flag, key, default in LOCATIONS:
        path = where.get(key, getattr(dirs, key, None))
        if path is not None and Path(path) != default:
            words += [flag, str(path)]
    return shlex.join(words)


def fold_model_output(directory) -> Path | None:
    """The --output of a fold model saved in OUTPUT/NAME/fold<k>/model (None: a path too short to be one)."""
    parents = Path(directory).parents
    return parents[2] if len(parents) > 2 else None


def again(name: str, argv, *extra: str) -> str:
    """The user's own command line `python -m solution NAME ARGV`, with `extra` added."""
    return shlex.join(["python", "-m", "solution", name, *map(str, argv), *extra])
