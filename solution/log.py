"""Tiny console helpers: what the kit is doing goes to stderr, results to stdout."""
import sys


def info(msg: str) -> None:
    print(f"[solution] {msg}", file=sys.stderr, flush=True)


def warn(msg: str) -> None:
    print(f"[solution] WARNING: {msg}", file=sys.stderr, flush=True)


def banner(msg: str) -> None:
    line = "=" * min(100, max(40, len(msg) + 8))
    print(f"\n{line}\n    {msg}\n{line}\n", file=sys.stderr, flush=True)
