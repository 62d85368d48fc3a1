"""The one exception type the CLI turns into a one-line message and a non-zero exit, and the one wording
of the errors it translates into it: a filesystem's refusal (OSError) and a library's refusal of a setting."""
from __future__ import annotations

import errno
import os
import re
from contextlib import contextmanager


class UserError(Exception):
    """Bad input or state that the user can fix; the message is shown as is, without a traceback."""

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


def where(path, row: int | None = None, column: str | None = None) -> str:
    """`file, row N, column C` for error messages (row N is the Nth CSV record, header = row 1, as a spreadsheet shows it; a quoted multi-line tweet is one row)."""
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
    """`e` as an OSError: itself, or the one a Rust library reports inside its own error, e.g. safetensors'
    `Error while serializing: I/O error: No space left on device (os error 28)` when saving an adapter."""
    if isinstance(e, OSError):
        return e
    found = RUST_OS_ERROR.search(str(e))
    if found and type(e).__module__.split(".")[0] in RUST_LIBRARIES:
        code = int(found.group(1))
        return OSError(code, os.strerror(code), found.group(2))
    return None


def os_error(e: OSError) -> str:
    """`<path>: no space left on device; free some space, ...`: every OSError the kit does not expect, in
    the system's own words (os.strerror), naming the file where the error does."""
    if e.errno == errno.EEXIST:  # the kit only ever meets it from mkdir: a file where a folder must go
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

LIBRARIES = {"sklearn": "scikit-learn", "peft": "peft", "transformers": "transformers", "tokenizers": "tokenizers"}


def _raised_in(e: BaseException) -> str | None:
    """The library (of LIBRARIES) whose code raised `e`: its innermost frame's package."""
    tb, module = e.__traceback__, ""
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        tb = tb.tb_next
    return LIBRARIES.get(module.split(".")[0])


@contextmanager
def rejected_setting(cfg):
    """A ValueError/TypeError that scikit-learn, peft or transformers raise while training with `cfg`
    becomes one line naming the config and the settings changed with --set (the likely culprits).

    The config checks its own ranges first (config.ModelConfig.check); this catches what only the library
    knows, e.g. a min_df higher than the documents a fold has, or target_modules the backbone lacks. A
    library error under the registry's own settings is the kit's bug, and keeps its traceback, unless the
    library calls it a parameter error itself (scikit-learn's InvalidParameterError).
    """
    try:
        yield
    except (ValueError, TypeError) as e:
        library = _raised_in(e)
        changed = _changed_settings(cfg)
        if library is None or not (changed or type(e).__name__ == "InvalidParameterError"):
            raise
        why = (str(e).strip().splitlines() or [type(e).__name__])[0]
        given = f" ({', '.join(f'--set {kv}' for kv in changed)})" if changed else ""
        raise UserError(f"config {cfg.name!r}{given}: {library} refused a setting: {why}") from None


def _changed_settings(cfg) -> list[str]:
    """key=value of each setting where `cfg` differs from its registry entry (runtime ones included)."""
    from solution import config as config_mod

    try:
        base = config_mod.get(cfg.name).to_dict()
    except UserError:
        return []
    return [f"{k}={v}" for k, v in cfg.to_dict().items() if k != "description" and base.get(k) != v]
