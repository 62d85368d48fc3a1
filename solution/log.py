"""Console helpers (progress to stderr, in a notebook stdout; output to stdout) and the libraries' log.

Within a step the libraries' warnings go to a log file beside its output; with `--verbose`, to stderr.
Off a terminal progress is whole lines, never a bar's carriage returns.
"""
from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
import time
import warnings
from contextlib import contextmanager, suppress
from pathlib import Path

from tqdm.std import tqdm

from solution.hardware import is_main_process

LIBRARIES = ("transformers", "peft", "accelerate", "bitsandbytes", "torch", "datasets", "huggingface_hub",
             "sklearn", "py.warnings", "urllib3", "filelock", "ray")


def _main() -> bool:  # under `accelerate launch` one process talks

    return is_main_process()


def in_notebook() -> bool:
    """Jupyter's kernel streams: there stderr is shaded as an error."""
    return type(sys.stderr).__module__.split(".")[0] == "ipykernel"


def console():
    """Where progress and [solution] lines go: stderr, but stdout in a notebook."""
    return sys.stdout if in_notebook() else sys.stderr


def _say(text: str, stream) -> None:
    with tqdm.external_write_mode(file=stream):  # a bar on this terminal steps aside: no shared line
        print(text, file=stream, flush=True)


def info(msg: str) -> None:
    if _main():
        _say(f"[solution] {msg}", console())


def warn(msg: str) -> None:
    if _main():
        _say(f"[solution] WARNING: {msg}", sys.stderr)


def banner(msg: str) -> None:
    line = "=" * min(100, max(40, len(msg) + 8))
    _say(f"\n{line}\n    {msg}\n{line}\n", console())


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
        except OSError:  # the log file refused it: the message is shown, not lost, and never breaks a run
            with suppress(Exception):
                sys.stderr.write(text)
        except Exception:
            self.handleError(record)


_HANDLER = _LibraryHandler()


def verbose_requested(argv) -> bool:
    return "--verbose" in argv or os.environ.get("SOLUTION_VERBOSE", "") not in ("", "0")


def route_libraries(verbose: bool = False, transformers: bool = True) -> None:
    """Send the libraries' warnings through one handler, once, before they load."""
    # in Jupyter, importing tqdm.auto (huggingface_hub does) asks for ipywidgets; the kit's progress is plain lines
    warnings.filterwarnings("ignore", message="IProgress not found")
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
    """While the block runs, the libraries' messages go to `path`, or to a private temp file where this run may
    not write `path`; says how many there were and where."""
    path, temp = Path(path), None
    if not _appendable(path):
        fd, temp = tempfile.mkstemp(prefix="solution-", suffix=f"-{path.name}")
        os.close(fd)
        path = Path(temp)
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = [path, 0, threading.get_ident()]
    _HANDLER.files.append(entry)
    try:
        yield path
    finally:
        _HANDLER.files.remove(entry)
        if entry[1]:
            info(f"{entry[1]} message(s) from the libraries written to {path} (--verbose shows them here)")
        elif temp:
            Path(temp).unlink(missing_ok=True)


def _appendable(path: Path) -> bool:
    """Whether this process may append to `path`, making it (and its folders) where missing."""
    if path.exists():
        return path.is_file() and os.access(path, os.W_OK)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


def progress(iterable=None, **kw):
    """A tqdm bar on a terminal; elsewhere (a log file, a notebook) whole lines (Lines)."""
    if not is_main_process():  # accelerate launch: one bar
        kw["disable"] = True
    stream = console()
    if stream.isatty():
        return tqdm(iterable, file=stream, mininterval=2, maxinterval=10, leave=False, **kw)
    return Lines(iterable, stream=stream, **kw)


class Lines:
    """tqdm's calls as whole lines: one when a pass of LINE_AFTER_S or more ends, one each LINE_EVERY_S before."""

    LINE_AFTER_S, LINE_EVERY_S = 10.0, 300.0

    def __init__(self, iterable=None, desc: str = "", total=None, unit: str = "it", disable: bool = False,
                 stream=None, **_):
        self.iterable, self.desc, self.unit, self.disable = iterable, desc, unit, disable
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.stream, self.n, self.postfix = stream or sys.stderr, 0, ""
        self.start = self.last = time.monotonic()

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        if not self.disable and time.monotonic() - self.last >= self.LINE_EVERY_S:
            self._line()

    def set_postfix(self, refresh: bool = True, **kw) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in kw.items())

    def close(self) -> None:
        if not self.disable and time.monotonic() - self.start >= self.LINE_AFTER_S:
            self._line()
        self.disable = True  # once

    def _line(self) -> None:
        self.last = time.monotonic()
        done = f"{self.n}/{self.total}" if self.total else str(self.n)
        took = tqdm.format_interval(self.last - self.start)
        print(f"{self.desc}: {done} {self.unit} in {took}" + (f" ({self.postfix})" if self.postfix else ""),
              file=self.stream, flush=True)
