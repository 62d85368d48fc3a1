"""The fold loop: train a model once per fold, write OOF/test probabilities, metrics and weights.

Layout under output/<model>/:
  config.json                       resolved config + fingerprints of the config, data and folds
  fold<k>/oof.csv, fold<k>/test.csv ID + one probability per label (validation rows / test rows)
  fold<k>/metrics.json              scores at 0.5 and at thresholds tuned on the fold, speed, memory
  fold<k>/model/                    what `predict` reloads (adapter + head, or the sklearn pipeline)
  fold<k>/DONE.json                 written last: a fold without it is redone from scratch
  oof.csv, test.csv                 all folds assembled (train order; test averaged over folds)
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from solution import config as config_mod
from solution import folds as folds_mod
from solution import log, metrics, thresholds
from solution.data import ID, TEXT, CompetitionData
from solution.errors import UserError
from solution.io import prob_table, read_json, read_prob_table, write_csv, write_json
from solution.models import model_class

DONE = "DONE.json"


def folds_signature(folds_dir: Path) -> dict:
    m = folds_mod.meta(folds_dir)
    return {k: m.get(k) for k in ("fingerprint", "n_splits", "seed")}


def model_dir(output: Path, name: str) -> Path:
    return Path(output) / name


def _check_or_write_config(cfg, mdir: Path, signature: dict, labels: list[str], force: bool) -> None:
    """One config -> one folder: a folder trained with another config or other folds is never mixed in."""
    path = mdir / "config.json"
    record = {"name": cfg.name, "config": cfg.to_dict(), "config_fingerprint": cfg.fingerprint(),
              "folds": signature, "labels": labels}
    if path.exists():
        old = read_json(path)
        new = json.loads(json.dumps(record["config"]))  # as stored: tuples read back as lists
        diff = sorted(k for k, v in new.items()
                      if k not in config_mod.RUNTIME_FIELDS and old.get("config", {}).get(k) != v)
        if old.get("config_fingerprint") != record["config_fingerprint"]:
            problem = f"another config (differs in: {', '.join(diff) or '?'})"
        elif old.get("folds") != signature or old.get("labels") != labels:
            problem = "other folds or data than the current folds/"
        else:
            problem = None
        if problem and not force:
            raise UserError(f"{mdir} holds a model trained with {problem}; rerun with --force to retrain it, "
                            f"or use another --output")
        if problem:
            log.info(f"{mdir}: trained with {problem}; --force given, removing it")
            shutil.rmtree(mdir)
    write_json(record, path)


def fold_done(fold_dir: Path, cfg) -> bool:
    from solution.trained import fold_done as done  # the one rule, shared with blend and predict

    return done(fold_dir, cfg.fingerprint())


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def train_fold(cfg, data: CompetitionData, fold: np.ndarray, k: int, mdir: Path) -> dict:
    fold_dir = mdir / f"fold{k}"
    if fold_dir.exists():  # a killed run's leftovers: start this fold cleanly
        shutil.rmtree(fold_dir)
    fold_dir.mkdir(parents=True)
    tr, va = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
    y = data.y
    texts = data.train[TEXT].tolist()
    cls = model_class(cfg.kind)
    model = cls(cfg, data.labels)
    t0 = time.time()
    res = model.fit([texts[i] for i in tr], y[tr], [texts[i] for i in va], y[va], log_dir=fold_dir)
    fit_s = time.time() - t0
    test_probs = model.predict(data.test[TEXT].tolist())
    model.save(fold_dir / "model")
    ids = data.train[ID].to_numpy()
    write_csv(prob_table(ids[va], res.val_probs, data.labels), fold_dir / "oof.csv")
    write_csv(prob_table(data.test[ID], test_probs, data.labels), fold_dir / "test.csv")
    tuned = thresholds.tune(y[va], res.val_probs)
    m = {
        "model": cfg.name, "fold": k, "seed": cfg.seed, "n_train": len(tr), "n_val": len(va),
        "at_0.5": metrics.scores(y[va], res.val_probs, 0.5, data.labels),
        "at_tuned_thresholds": metrics.scores(y[va], res.val_probs, tuned, data.labels),
        "note": "tuned thresholds are fit on this fold's validation rows (optimistic); the blend tunes them on all OOF",
        "kept_epoch": res.kept_epoch, "history": res.history,
        "wall_time_s": time.time() - t0, "fit_time_s": fit_s, "peak_rss_mb": peak_rss_mb(), **res.extra,
    }
    write_json(m, fold_dir / "metrics.json")
    write_json({"fold": k, "seed": cfg.seed, "config_fingerprint": cfg.fingerprint()}, fold_dir / DONE)
    return m


def assemble(cfg, data: CompetitionData, fold: np.ndarray, mdir: Path) -> bool:
    """Write oof.csv (train order) and test.csv (mean over folds) once every fold is done."""
    from solution.trained import fold_probs, missing_folds  # the one reader of fold files, shared with blend

    if missing_folds(mdir, cfg.fingerprint(), int(fold.max()) + 1):
        return False
    oof, tests = fold_probs(mdir, data, fold, cfg.fingerprint())
    write_csv(prob_table(data.train[ID], oof, data.labels), mdir / "oof.csv")
    write_csv(prob_table(data.test[ID], np.mean(tests, axis=0), data.labels), mdir / "test.csv")
    return True


def train_model(cfg, data: CompetitionData, folds_dir: Path, output: Path, only_folds=None, force=False) -> dict:
    fold = folds_mod.load(data, folds_dir)
    n_splits = int(fold.max()) + 1
    wanted = list(range(n_splits)) if only_folds is None else list(only_folds)
    bad = [k for k in wanted if not 0 <= k < n_splits]
    if bad:
        raise UserError(f"--folds {bad}: folds are 0..{n_splits - 1}")
    mdir = model_dir(output, cfg.name)
    _check_or_write_config(cfg, mdir, folds_signature(folds_dir), data.labels, force)
    todo = wanted if force else [k for k in wanted if not fold_done(mdir / f"fold{k}", cfg)]
    skipped = sorted(set(wanted) - set(todo))
    if skipped:
        log.info(f"{cfg.name}: fold(s) {skipped} already done, skipping (--force retrains)")
    log.info(f"{cfg.name}: training fold(s) {todo} into {mdir}/")
    results = {}
    for k in todo:
        m = train_fold(cfg, data, fold, k, mdir)
        a, t = m["at_0.5"], m["at_tuned_thresholds"]
        print(f"{cfg.name} fold {k}: macro-F1 {a['macro_f1']:.4f} at 0.5, {t['macro_f1']:.4f} tuned on fold; "
              f"micro-F1 {a['micro_f1']:.4f}; {m['wall_time_s']:.0f}s; peak RSS {m['peak_rss_mb']:.0f} MB", flush=True)
        results[k] = m
    if assemble(cfg, data, fold, mdir):
        oof = read_prob_table(mdir / "oof.csv", data.labels)[data.labels].to_numpy()
        s05 = metrics.scores(data.y, oof, 0.5)
        st = metrics.scores(data.y, oof, thresholds.tune(data.y, oof))
        print(f"{cfg.name} OOF ({n_splits} folds): macro-F1 {s05['macro_f1']:.4f} at 0.5, "
              f"{st['macro_f1']:.4f} with per-class thresholds tuned on OOF -> {mdir / 'oof.csv'}", flush=True)
        return {"oof_macro_f1": s05["macro_f1"], "oof_macro_f1_tuned": st["macro_f1"], "folds": results}
    return {"folds": results}


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config setting, cast to its type (repeatable), e.g. --set epochs=2")
    p.add_argument("--report-to", choices=["none", "wandb"], default=None, help="optional Weights & Biases logging")


def configs_from_args(names: list[str], args) -> list:
    overrides = list(args.overrides)
    if getattr(args, "report_to", None):
        overrides.append(f"report_to={args.report_to}")
    cfgs = []
    for n in names:
        base = config_mod.get(n)
        applicable = [o for o in overrides if o.split("=", 1)[0].strip() in base.to_dict()]
        if len(names) == 1:
            applicable = overrides  # a single model: an unknown key is an error, not skipped
        cfgs.append(config_mod.get(n, applicable))
    return cfgs


def default_profile() -> str:
    return "gpu" if _cuda_count() else "cpu"


def parse_folds(s: str | None):
    if s is None:
        return None
    try:
        return sorted({int(x) for x in s.split(",") if x.strip()})
    except ValueError:
        raise UserError(f"--folds {s!r}: expected comma-separated fold numbers, e.g. 0,2") from None


def gpu_parallel(cfgs, data: CompetitionData, dirs, args, n_gpus: int) -> int:
    """Several GPUs: one `train MODEL --folds k` subprocess per GPU (CUDA_VISIBLE_DEVICES), folds round-robin.

    The parent checks the model folder (and clears it or the chosen folds' DONE markers for --force)
    before starting the children, and assembles oof.csv/test.csv after them, so children never race
    on shared files.
    """
    fold = folds_mod.load(data, dirs.folds)
    n_splits = int(fold.max()) + 1
    wanted = parse_folds(args.folds) or list(range(n_splits))
    common = ["--input", str(dirs.input), "--folds-dir", str(dirs.folds), "--output", str(dirs.output)]
    code = 0
    for cfg in cfgs:
        mdir = model_dir(dirs.output, cfg.name)
        _check_or_write_config(cfg, mdir, folds_signature(dirs.folds), data.labels, args.force)
        todo = wanted if args.force else [k for k in wanted if not fold_done(mdir / f"fold{k}", cfg)]
        for k in todo:
            (mdir / f"fold{k}" / DONE).unlink(missing_ok=True)
        sets = [x for kv in cfg_overrides(cfg) for x in ("--set", kv)]
        for start in range(0, len(todo), n_gpus):
            procs = []
            for gpu, k in enumerate(todo[start:start + n_gpus]):
                env = {**os.environ, "CUDA_VISIBLE_DEVICES": str(gpu), "SOLUTION_NO_PARALLEL": "1"}
                cmd = [sys.executable, "-m", "solution", "train", cfg.name, "--folds", str(k), *common, *sets]
                log.info(f"{cfg.name} fold {k} on GPU {gpu}")
                procs.append(subprocess.Popen(cmd, env=env))
            code = max([code, *(p.wait() for p in procs)])
        assemble(cfg, data, fold, mdir)
    return code


def cfg_overrides(cfg) -> list[str]:
    """The settings where `cfg` differs from its registry entry, as key=value for a child `--set`."""
    base = config_mod.get(cfg.name).to_dict()
    out = []
    for k, v in cfg.to_dict().items():
        if base.get(k) != v:
            out.append(f"{k}={','.join(map(str, v)) if isinstance(v, (list, tuple)) else v}")
    return out


def main(argv=None) -> int:
    from solution.cli import common_parser, resolve_data

    p = argparse.ArgumentParser(prog="python -m solution train", parents=[common_parser()],
                                description="Train models once per fold (reads folds/folds.csv; run `folds` first).")
    p.add_argument("models", nargs="*",
                   help=f"model names (known: {', '.join(config_mod.known())}; NAME-seedN trains NAME with "
                        f"seed N into its own folder, e.g. minilm-lora-seed7)")
    p.add_argument("--profile", choices=sorted(config_mod.PROFILES), default=None,
                   help="train a profile's models (default when no model is named: gpu if CUDA is present, else cpu)")
    p.add_argument("--folds", default=None, help="only these folds, e.g. 0,2 (default: all)")
    p.add_argument("--force", action="store_true", help="retrain folds that are already done")
    add_model_args(p)
    args = p.parse_args(argv)
    names = args.models or config_mod.profile_models(args.profile or default_profile())
    cfgs = configs_from_args(names, args)  # validate every config before any work
    data, dirs = resolve_data(args)
    n_gpus = _cuda_count()
    if n_gpus > 1 and os.environ.get("SOLUTION_NO_PARALLEL") != "1":
        log.info(f"{n_gpus} GPUs visible: training folds in parallel, one process per GPU")
        return gpu_parallel(cfgs, data, dirs, args, n_gpus)
    for cfg in cfgs:
        train_model(cfg, data, dirs.folds, dirs.output, parse_folds(args.folds), force=args.force)
    return 0


def _cuda_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:
        return 0
