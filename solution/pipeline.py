"""`run`: folds -> train (a profile or --models) -> blend [-> submit], the whole job in one command."""
from __future__ import annotations

import argparse
import time

from solution import config as config_mod
from solution import folds as folds_mod
from solution import log
from solution.train import add_model_args, configs_from_args, default_profile, train_model


def main(argv=None) -> int:
    from solution.cli import common_parser, resolve_data

    p = argparse.ArgumentParser(prog="python -m solution run", parents=[common_parser()],
                                description="The whole job: folds -> train -> blend [-> submit].")
    p.add_argument("--profile", choices=sorted(config_mod.PROFILES), default=None,
                   help="model set to train (default: gpu if CUDA is present, else cpu)")
    p.add_argument("--models", default=None, help="comma-separated model names instead of a profile")
    folds_mod.add_args(p)
    p.add_argument("--force", action="store_true", help="retrain models even when their folds are done")
    p.add_argument("--submit", action="store_true", help="submit output/submission.csv with the kaggle CLI at the end")
    p.add_argument("-m", "--message", default=None, help="submission message (with --submit)")
    add_model_args(p)
    args = p.parse_args(argv)
    t0 = time.time()
    profile = args.profile or default_profile()
    names = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else config_mod.profile_models(profile)
    cfgs = configs_from_args(names, args)
    data, dirs = resolve_data(args)
    log.info(f"input {dirs.input}/, folds {dirs.folds}/, output {dirs.output}/; models: {', '.join(names)}")
    folds_mod.ensure(data, dirs.folds, args.n_splits, args.fold_seed)
    for cfg in cfgs:
        train_model(cfg, data, dirs.folds, dirs.output, force=args.force)
    from solution.blend import blend

    report = blend(data, dirs.folds, dirs.output, names)
    if args.submit:
        if dirs.demo:
            log.warn("not submitting: this was a demo run")
        else:
            from solution.submit import submit

            submit(dirs.output / "submission.csv", data.sample, args.competition, args.message)
    b = report["scores"]["blend"]
    print(f"done in {time.time() - t0:.0f}s: OOF macro-F1 {b['at_0.5']['macro_f1']:.4f} at 0.5, "
          f"{b['at_tuned']['macro_f1']:.4f} with per-class thresholds -> {report['submission']}")
    if dirs.demo:
        log.banner(f"DEMO RESULT ONLY: {report['submission']} was made from generated demo data, not the competition's.")
    return 0
