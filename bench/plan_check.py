"""The plan `run` makes and the configs it would train, with the CPU's speed fixed and training stubbed: diff
two trees' output to show a change keeps the plan (the first printed config's JSON, or all of them for `none`).

usage: PYTHONPATH=<a tree of the kit> python bench/plan_check.py DATA BUDGET [--set ...]"""
import importlib
import json
import sys
import tempfile

data, budget, *rest = sys.argv[1:]
try:
    run = importlib.import_module("solution.run")
    cal = importlib.import_module("solution.train.calibration")
except ImportError:  # a tree from before the house move
    run = importlib.import_module("solution.pipeline")
    cal = importlib.import_module("solution.budget")
cal.calibrate_cpu = lambda *a, **k: 60e9
trained = []


class Stop(Exception):
    pass


def fake_train(cfgs, *a, **k):
    for c in cfgs:
        trained.append(c.to_dict())
    raise Stop


run.train_models = fake_train
out = tempfile.mkdtemp()
try:
    run.main(["--input", data, "--output", out, "--folds-dir", out + "/folds", "--time-budget", budget, *rest])
except Stop:
    pass
print(json.dumps(trained, sort_keys=True))
