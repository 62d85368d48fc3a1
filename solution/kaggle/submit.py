"""`submit`: check a submission against sample_submission, then `kaggle competitions submit`.

Credentials come from the kaggle CLI's usual places and are never printed; --dry-run needs none.
"""
from __future__ import annotations

import argparse
import hashlib
import shlex
from pathlib import Path

import pandas as pd

from solution import log
from solution.blend import submission
from solution.errors import UserError
from solution.io import REPORT_JSON, read_checked
from solution.kaggle.cli import CREDENTIALS_HELP, DEFAULT_COMPETITION, has_credentials, run_kaggle, scrub
from solution.options import common_parser, resolve_data, user_path

MAX_MESSAGE = 400


def default_message(path: Path) -> str:
    """'solution blend of A+B (optimize weights), OOF macro-F1 X (CV thresholds)' from the blend's report.json."""
    path = Path(path)
    rep_path = path.parent / "blend" / "report.json"
    if not rep_path.exists():
        return f"solution: {path.name}"
    try:
        rep = read_checked(rep_path, REPORT_JSON)
        if rep.get("submission_sha256") and rep["submission_sha256"] != hashlib.sha256(path.read_bytes()).hexdigest():
            return f"solution: {path.name} (not the file {rep_path} describes)"
        b = rep["scores"]["blend"]
        models = "+".join(rep["models"])
        sel = rep.get("threshold_selection", {})
        method = ((rep.get("method") or {}).get("kind")
                  or f"{rep.get('weights_info', {}).get('method', 'equal')} weights")
        msg = (f"solution blend of {models} ({method}), "
               f"OOF macro-F1 {b['at_tuned']['macro_f1']:.4f} tuned, {b.get('cv_macro_f1', float('nan')):.4f} CV"
               f" (shrink {sel.get('shrink', 0):g})")
    except (UserError, KeyError, TypeError, ValueError):
        return f"solution: {path.name}"
    return msg


def command(path: Path, competition: str, message: str) -> list[str]:
    return ["competitions", "submit", "-c", competition, "-f", str(path), "-m", message]


def submit(path: Path, sample: pd.DataFrame, competition: str | None = None, message: str | None = None,
           dry_run: bool = False, dirs=None) -> list[str]:
    """Check `path` against `sample`, then submit it (or only print the command with dry_run)."""
    path = Path(path)
    sub = submission.read(path, dirs)
    submission.check(sub, sample, str(path))
    competition = competition or DEFAULT_COMPETITION
    message = (message or default_message(path)).strip() or f"solution: {path.name}"
    message = message[:MAX_MESSAGE]
    args = command(path, competition, message)
    shown = scrub(shlex.join(["kaggle", *args]))
    if not dry_run and not has_credentials():  # before any other output: the refusal is one line
        raise UserError(f"no kaggle credentials: {CREDENTIALS_HELP}")
    log.info(f"{path}: {len(sub)} rows, columns and IDs match sample_submission")
    if dry_run:
        print(f"dry run, would run: {shown}")
        return args
    log.info(f"running: {shown}")
    proc = run_kaggle(args)
    out = scrub((proc.stdout or "").strip())
    if out:
        print(out)
    print(f"submitted {path} to {competition}")
    return args


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m solution submit", parents=[common_parser()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Check a submission file against sample_submission.csv (columns, IDs in order, 0/1 values), then\n"
                    "run `kaggle competitions submit -c SLUG -f FILE -m MESSAGE`. Needs kaggle credentials\n"
                    "(KAGGLE_API_TOKEN, or KAGGLE_USERNAME + KAGGLE_KEY, or ~/.kaggle/kaggle.json) unless --dry-run.",
        epilog="examples:\n"
               "  python -m solution submit --dry-run\n"
               "  python -m solution submit -m 'blend of 3 models, shrink 0.25'")
    p.add_argument("-m", "--message", default=None,
                   help="submission message "
                        "(default: the blend's models and OOF macro-F1 from output/blend/report.json)")
    p.add_argument("--file", type=user_path, default=None, help="the file to submit (default: OUTPUT/submission.csv)")
    p.add_argument("--dry-run", action="store_true", help="check the file and print the kaggle command; send nothing")
    args = p.parse_args(argv)
    data, dirs = resolve_data(args)
    path = args.file or dirs.output / "submission.csv"
    if dirs.demo:
        if not args.dry_run:
            raise UserError(f"no competition data: {path} would be checked against the generated demo set; refusing "
                            f"to submit (put the competition files in input/ or pass --input)")
        log.warn(f"checking {path} against the generated demo set; without --dry-run this is refused")
    submit(path, data.sample, args.competition, args.message, dry_run=args.dry_run, dirs=dirs)
    return 0
