"""One flock per folder a step writes, so two runs never write the same files at once.

`.lock` is emptied, never deleted, or a second holder could lock a new file: use `clear(folder)`.
"""
from __future__ import annotations

import errno
import fcntl
import os
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from solution import log
from solution.errors import UserError

LOCK_NAME = ".lock"
_held: dict[str, int] = {}  # realpath of a held lock file -> hold() depth


@contextmanager
def hold(folder, wait: bool = False):
    """Hold `folder`'s lock for the block; re-entrant within a process."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    key = os.path.realpath(path)
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        _acquire(fd, folder, wait)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {_command()}\n".encode("utf-8", "replace"), 0)
        _held[key] = 1
        try:
            yield
        finally:
            del _held[key]
            os.ftruncate(fd, 0)  # a run refused from now on reads no stale holder
    finally:
        os.close(fd)  # drops the flock


def _acquire(fd: int, folder: Path, wait: bool) -> None:
    """Lock `fd`, or wait or refuse naming the holder."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    except OSError as e:  # a file system without locks (some network mounts): work on, unprotected
        if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
            raise
        log.warn(f"{folder}: this file system cannot lock files ({os.strerror(e.errno)}); "
                 f"do not run two steps on it at once")
        return
    pid, command = holder(fd)
    who = f"PID {pid}" + (f": {command}" if command else "") if pid else "a process that has not said its PID yet"
    if not wait:
        raise UserError(f"{folder} is in use by another run ({who}); wait for it to finish, or write elsewhere "
                        f"with --output")
    log.info(f"{folder} is in use by another run ({who}); waiting for it")
    fcntl.flock(fd, fcntl.LOCK_EX)


def holder(fd: int) -> tuple[int | None, str]:
    """(PID, command) the holder wrote just after locking; an empty file is retried briefly."""
    for _ in range(50):
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
        pid, _, command = text.partition(" ")
        if pid.isdigit():
            return int(pid), command
        time.sleep(0.02)
    return None, ""


def held(folder) -> bool:
    """Whether this process holds `folder`'s lock."""
    return os.path.realpath(Path(folder) / LOCK_NAME) in _held


def clear(folder) -> None:
    """Remove everything in `folder` but its lock file; the caller must hold the lock."""
    folder = Path(folder)
    if not held(folder):
        raise RuntimeError(f"clear({folder}) without holding its lock")
    for p in folder.iterdir():
        if p.name == LOCK_NAME:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def _command() -> str:
    args = " ".join(sys.argv[1:])
    return ("solution " + args)[:200] if args else "python"
