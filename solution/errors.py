"""UserError, which the CLI shows as one line and a non-zero exit, and the errors turned into it."""
from __future__ import annotations

import errno
import os
import re


class UserError(Exception):
    """Bad input or state the user can fix; shown as is, without a traceback."""

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


def where(path, row: int | None = None, column: str | None = None) -> str:
    """`file, row N, column C`; rows count as a spreadsheet does (header = row 1)."""
    parts = [str(path)]
    if row is not None:
        parts.append(f"row {row}")
    if column is not None:
        parts.append(f"column {column!r}")
    return ", ".join(parts)


# --- the filesystem says no ------------------------------------------------------------------------

_ELSEWHERE = "write elsewhere (--output, --folds-dir)"
OS_ADVICE = {
    errno.ENOSPC: f"free some space, or {_ELSEWHERE}",
    errno.EDQUOT: f"free some space, or {_ELSEWHERE}",
    errno.EROFS: _ELSEWHERE,
    errno.EACCES: "check its permissions",
    errno.EPERM: "check its permissions",
}
# how Rust's std::io::Error shows in the messages of safetensors' and tokenizers' errors (not OSErrors)
RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)(?: at path \"(.*)\")?")
RUST_LIBRARIES = ("safetensors", "tokenizers")


def as_os_error(e: BaseException) -> OSError | None:
    """`e` as an OSError: itself, or one a Rust library wraps in its own error."""
    if isinstance(e, OSError):
        return e
    found = RUST_OS_ERROR.search(str(e))
    if found and type(e).__module__.split(".")[0] in RUST_LIBRARIES:
        code = int(found.group(1))
        return OSError(code, os.strerror(code), found.group(2))
    return None


def os_error(e: OSError) -> str:
    """An unexpected OSError in the system's words, with advice."""
    if e.errno == errno.EEXIST:  # from mkdir: a file where a folder must go
        words = "exists and is not a directory"
    elif e.errno is not None:
        words = os.strerror(e.errno)
        words = words[:1].lower() + words[1:]
    else:  # an OSError a library raised with a message of its own
        words = (str(e).strip().splitlines() or [type(e).__name__])[0]
    advice = OS_ADVICE.get(e.errno)
    name = os.fsdecode(e.filename) if isinstance(e.filename, bytes) else e.filename
    name = f"{name}: " if name is not None else ""
    return name + words + (f"; {advice}" if advice else "")


# --- a library says no to a setting ----------------------------------------------------------------


