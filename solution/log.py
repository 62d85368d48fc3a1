"""Console helpers (progress to stderr, output to stdout) and the libraries' log.

Within a step the libraries' warnings go to a log file beside its output; with `--verbose`, to stderr.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from solution.hardware import is_main_process

LIBRARIES = ("transformers", "peft", "accelerate", "bitsandbytes", "torch", "datasets", "huggingface_hub",
             "sklearn", "py.warnings", "urllib3", "filelock", "ray")


def _main() -> bool:  # under `accelerate launch` one process talks

    return is_main_process()


def info(msg: str) -> None:
    if _main():
        print(f"[solution] {msg}", file=sys.stderr, flush=True)


def warn(msg: str) -> None:
    if _main():
        print(f"[solution] WARNING: {msg}", file=sys.stderr, flush=True)


def banner(msg: str) -> None:
    line = "=" * min(100, max(40, len(msg) + 8))
    print(f"\n{line}\n    {msg}\n{line}\n", file=sys.stderr, flush=True)


class _LibraryHandler(logging.Handler):
    """Writes each record to its thread's step log, else the main thread's, else stderr."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
        self.files: list[list] = []  # stack of [path, count, thread id]

    def target(self) -> list | None:
        for thread in (threading.get_ident(), threading.main_thread().ident):
            mine = [entry for entry in self.files if entry[2] == thread]
            if mine:
                return mine[-1]
        return None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record) + "\n"
            target = self.target()
            if target:
                with open(target[0], "a", encoding="utf-8") as f:
                    f.write(text)
                target[1] += 1
            else:
                sys.stderr.write(text)
        except Exception:  # a log line must never break a run
            self.handleError(record)


_HANDLER = _LibraryHandler()


def verbose_requested(argv) -> bool:
    return "--verbose" in argv or os.environ.get("SOLUTION_VERBOSE", "") not in ("", "0")


def route_libraries(verbose: bool = False, transformers: bool = True) -> None:
    """Send the libraries' warnings through one handler, once, before they load."""
    if verbose:
        return
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    logging.captureWarnings(True)
    for name in LIBRARIES:
        lg = logging.getLogger(name)
        lg.handlers = [_HANDLER]
        lg.propagate = False
        if lg.level == logging.NOTSET or lg.level > logging.WARNING:
            lg.setLevel(logging.WARNING)
    if not transformers:
        return
    try:  # transformers keeps its own stderr handler and a "Loading weights" bar
        from transformers.utils import logging as tf_logging

        tf_logging.disable_default_handler()
        tf_logging.disable_progress_bar()
    except ImportError:
        pass


@contextmanager
def library_log(path):
    """While the block runs, the libraries' messages go to `path`; says how many there were."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = [path, 0, threading.get_ident()]
    _HANDLER.files.append(entry)
    try:
        yield path
    finally:
        _HANDLER.files.remove(entry)
        if entry[1]:
            info(f"{entry[1]} message(s) from the libraries written to {path} (--verbose shows them here)")


def progress(iterable=None, **kw):
    """A tqdm bar on stderr, refreshing rarely off a terminal: a log keeps every refresh."""
    from tqdm.auto import tqdm

    interactive = sys.stderr.isatty()
    if not is_main_process():  # accelerate launch: one bar
        kw["disable"] = True
    every = 2 if interactive else 60
    return tqdm(iterable, file=sys.stderr, mininterval=every, maxinterval=max(10, every), leave=False, **kw)
