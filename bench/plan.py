"""The plan `run` would make on another machine: estimated minutes per fold and what fits a time budget.

    .venv/bin/python bench/plan.py --input ../shared/data/semeval2018-ec --device T4 --gpus 2 --profile gpu \
        --time-budget 11h40m

Uses the same cost model and planner as `run --time-budget` (solution/budget.py: budget.choose buys the most
expected macro-F1, config expected_f1, that fits) with the data's sizes, for a device class of budget.DEVICES and a
number of GPU workers, without training anything. On the machine itself `run` times the GPU first
(solution/calibration.py) and replaces these estimates with each finished fold's measured time.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    from solution import config
    from solution import data as data_mod
    from solution.blend import metrics
    from solution.train import budget

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True)
    p.add_argument("--device", default="T4", choices=sorted(budget.DEVICES))
    p.add_argument("--gpus", type=int, default=2, help="workers (one per GPU)")
    p.add_argument("--profile", default="gpu", choices=sorted(config.PROFILES))
    p.add_argument("--models", default=None)
    p.add_argument("--time-budget", default="11h40m")
    p.add_argument("--n-splits", type=int, default=5)
    p.add_argument("--output", default="/nonexistent", help="a run's output folder: its finished folds' F1 replace "
                   "the models' expected_f1")
    args = p.parse_args()
    d = data_mod.load(args.input)
    names = args.models.split(",") if args.models else config.profile_models(args.profile)
    n_val = len(d.train) // args.n_splits
    chars = float(d.train["Tweet"].astype(str).str.len().mean())
    cost = {n: budget.prior(config.get(n), len(d.train) - n_val, n_val, len(d.test), chars, args.device)
            for n in names}
    todo = {n: [budget.Job(n, k) for k in range(args.n_splits)] for n in names}
    values = budget.expected_values({n: config.get(n) for n in names}, Path(args.output), metrics.constant_f1(d.y))
    seconds = budget.parse_duration(args.time_budget)
    blend_s = budget.blend_reserve(len(d.train), len(names))
    plan = budget.choose(todo, cost, values, [0.0] * args.gpus, seconds - blend_s, set())
    print(budget.format_plan(plan, cost, todo, {}, seconds, args.gpus, f"{args.device} x{args.gpus}, estimated",
                             blend_s))


if __name__ == "__main__":
    main()
