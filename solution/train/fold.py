"""One (model, fold) job: fit, predict, check the outputs are finite, write the fold folder (model_dir says where)."""
from __future__ import annotations

import resource
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from solution import config as config_mod
from solution import log
from solution.blend import metrics, thresholds
from solution.data import ID, TEXT, CompetitionData
from solution.errors import UserError
from solution.hardware import is_main_process
from solution.io import prob_table, write_csv, write_json
from solution.models import embed
from solution.models.base import NonFinite
from solution.models.registry import model_class
from solution.train.budget import machine_id
from solution.train.model_dir import DONE


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def train_fold(cfg, data: CompetitionData, fold: np.ndarray, k: int, mdir: Path) -> dict:
    fold_dir = mdir / f"fold{k}"
    writes = is_main_process()  # data-parallel (accelerate launch): every process trains, one writes
    if writes and fold_dir.exists():  # a killed run's leftovers: start this fold cleanly
        shutil.rmtree(fold_dir)
    if writes:
        fold_dir.mkdir(parents=True)
    tr, va = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
    y = data.y
    texts = data.train[TEXT].tolist()
    cls = model_class(cfg.kind)
    model = cls(cfg, data.labels)
    model.fold_name = f"{cfg.name} fold {k}"
    t0, once0 = time.time(), _once_seconds(cfg)
    res, test_probs, fit_s = fit_and_predict(model, [texts[i] for i in tr], y[tr], [texts[i] for i in va], y[va],
                                             data.test[TEXT].tolist(), fold_dir)
    if not writes:
        return {"model": cfg.name, "fold": k, "wall_time_s": time.time() - t0}
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
        "wall_time_s": time.time() - t0, "once_s": _once_seconds(cfg) - once0, "fit_time_s": fit_s,
        "peak_rss_mb": peak_rss_mb(), **res.extra, "overflow_retry": getattr(model, "overflow_retry", ""),
        "machine": _machine(), "config_fingerprint": cfg.fingerprint(),
    }
    write_json(m, fold_dir / "metrics.json")
    write_json({"fold": k, "seed": cfg.seed, "config_fingerprint": cfg.fingerprint()}, fold_dir / DONE)
    return m


def fit_and_predict(model, train_texts, y_train, val_texts, y_val, test_texts, fold_dir: Path):
    """(FitResult, test probabilities, fit seconds); after a non-finite output, once more in a safer form."""

    t0 = time.time()
    while True:
        try:
            res = model.fit(train_texts, y_train, val_texts, y_val, log_dir=fold_dir)
            check_finite(res.val_probs, model.fold_name, "validation")
            fit_s = time.time() - t0
            test_probs = check_finite(model.predict(test_texts), model.fold_name, "test")
            return res, test_probs, fit_s
        except NonFinite as e:
            if not getattr(model, "make_safe", lambda e: False)(e):
                raise


def check_finite(probs, who: str, split: str):
    probs = np.asarray(probs)
    bad = int((~np.isfinite(probs)).reshape(len(probs), -1).any(axis=1).sum())
    if bad:
        raise NonFinite(f"{who}: non-finite probabilities on {bad} of {len(probs)} {split} rows")
    return probs


def run_job(cfg, data: CompetitionData, fold: np.ndarray, k: int, mdir: Path) -> dict:
    """One (model, fold) job: library messages go to train.log, a refused setting becomes one line naming it."""
    with log.library_log(mdir / "train.log"), rejected_setting(cfg):
        return train_fold(cfg, data, fold, k, mdir)


def _once_seconds(cfg) -> float:
    """This process's seconds in once-per-model passes, recorded apart so they are priced once, not per fold."""
    if cfg.kind == "embed":

        return embed.seconds()
    if not getattr(cfg, "frozen_layers", 0):
        return 0.0
    from solution.models import frozen  # lazy: torch

    return frozen.seconds()


def _machine() -> str:
    return machine_id()


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
    """A library's ValueError/TypeError while training `cfg` becomes one line naming its --set settings; under
    registry settings it keeps its traceback (a kit bug) unless the library calls it a parameter error."""
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
    try:
        base = config_mod.get(cfg.name).to_dict()
    except UserError:
        return []
    return [f"{k}={v}" for k, v in cfg.to_dict().items() if k != "description" and base.get(k) != v]

