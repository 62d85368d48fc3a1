"""Blend what training wrote into output/submission.csv and output/blend/report.{md,json} (+ PNG plots).

Never retrains. Per model, the OOF probabilities (one row per train tweet) are assembled from the
fold<k>/oof.csv files and the test probabilities averaged over the fold<k>/test.csv files (`mean`,
`rank` or `geometric`). Models are combined with equal weights, manual weights, or non-negative
weights summing to one fitted on OOF by minimising log loss (checked fold by fold on held-out OOF).
Per-label thresholds are tuned on the blended OOF, shrunk by an amount chosen by cross-validating the
thresholds themselves (see solution.thresholds.select).

Why log loss for the weights: the blend is linear in the weights, so its binary cross-entropy is a
smooth convex function of them: one global optimum, found exactly and reproducibly, that uses every
probability (not just the cut points), so it moves little between folds. The F1-based alternatives
(best-threshold F1 per label) are piecewise constant in the weights: an optimiser chases noise in a
few hundred rare-label positives. Thresholds are tuned afterwards anyway, and the held-out check
reports macro-F1 of the optimised weights next to equal weights, so the choice can be judged.
"""
from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from solution import folds as folds_mod
from solution import log, metrics, submission, thresholds
from solution import stack as stack_mod
from solution.data import ID, CompetitionData
from solution.errors import UserError
from solution.io import read_json, read_prob_table
from solution.train import DONE, folds_signature

NOT_MODELS = {"blend", "demo", "kernel", "kernel-wheels"}
FOLD_AVERAGES = ("mean", "rank", "geometric")
EPS = metrics.EPS
STACK_MODES = ("auto", "on", "off")
STACK_C = 0.03  # strong L2: 11 x models features, rare labels with ~300 positives


def discover(output: Path) -> list[str]:
    output = Path(output)
    if not output.is_dir():
        return []
    return sorted(p.name for p in output.iterdir()
                  if p.is_dir() and p.name not in NOT_MODELS and (p / "config.json").exists())


# --- one model -------------------------------------------------------------------------------------

def fold_average(tests: list[np.ndarray], how: str = "mean") -> np.ndarray:
    """Average the folds' test probabilities (each (n_test, n_labels)) into one table.

    mean:      arithmetic mean.
    geometric: exp(mean(log p)), p clipped to [1e-7, 1]: a fold that is sure a label is absent pulls harder.
    rank:      per label, the folds' ranks (ties averaged) are averaged, then mapped back onto the
               probability scale through the folds' mean order statistics (np.interp of the mean rank
               on ranks 1..n -> mean of the folds' sorted probabilities). The result orders tweets by
               mean rank yet keeps the probability distribution of the folds, so thresholds tuned on
               OOF probabilities still apply; when every fold ranks the tweets alike it equals `mean`.
    """
    if how not in FOLD_AVERAGES:
        raise UserError(f"--fold-average {how!r}: choose one of {', '.join(FOLD_AVERAGES)}")
    a = np.stack([np.asarray(t, dtype=np.float64) for t in tests])  # (K, n, L)
    if how == "mean":
        return a.mean(0)
    if how == "geometric":
        return np.exp(np.log(np.clip(a, EPS, 1.0)).mean(0))
    from scipy.stats import rankdata

    n = a.shape[1]
    out = np.empty(a.shape[1:])
    positions = np.arange(1, n + 1, dtype=np.float64)
    for j in range(a.shape[2]):
        mean_rank = np.mean([rankdata(a[k, :, j], method="average") for k in range(a.shape[0])], axis=0)
        order_stats = np.sort(a[:, :, j], axis=1).mean(0)
        out[:, j] = np.interp(mean_rank, positions, order_stats)
    return out


def load_model(output: Path, name: str, data: CompetitionData, folds_dir: Path, how: str = "mean",
               fold: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(oof, test) of one model in train/test order, from its fold files; refuses incomplete or stale models."""
    mdir = Path(output) / name
    if not (mdir / "config.json").exists():
        raise UserError(f"{mdir}: no trained model {name!r}; train it with `python -m solution train {name}`")
    rec = read_json(mdir / "config.json")
    sig = folds_signature(folds_dir)
    if rec.get("folds") != sig:
        raise UserError(f"{mdir} was trained with other folds than {Path(folds_dir) / 'folds.csv'}; "
                        f"retrain it with `python -m solution train {name} --force`")
    if rec.get("labels") != data.labels:
        raise UserError(f"{mdir} was trained with other labels than {data.input_dir / 'sample_submission.csv'}")
    n_splits = int(sig["n_splits"])
    missing = [k for k in range(n_splits) if not _fold_ok(mdir / f"fold{k}", rec)]
    if missing:
        raise UserError(f"{mdir}: fold(s) {missing} not trained; run `python -m solution train {name}` to finish them")
    pos = {i: r for r, i in enumerate(data.train[ID])}
    oof = np.full((len(data.train), len(data.labels)), np.nan)
    tests = []
    for k in range(n_splits):
        fdir = mdir / f"fold{k}"
        o = read_prob_table(fdir / "oof.csv", data.labels)
        rows = [pos.get(i, -1) for i in o[ID]]
        if -1 in rows or (fold is not None and set(rows) != set(np.flatnonzero(fold == k).tolist())):
            raise UserError(f"{fdir / 'oof.csv'}: its IDs are not fold {k}'s train rows of "
                            f"{Path(folds_dir) / 'folds.csv'}; retrain with `python -m solution train {name} --force`")
        oof[rows] = o[data.labels].to_numpy()
        t = read_prob_table(fdir / "test.csv", data.labels).set_index(ID)
        try:
            tests.append(t.loc[data.test[ID], data.labels].to_numpy())
        except KeyError:
            raise UserError(f"{fdir / 'test.csv'}: its IDs do not match {data.input_dir / 'test.csv'}; "
                            f"retrain with `python -m solution train {name} --force`") from None
    if np.isnan(oof).any():
        raise UserError(f"{mdir}: the folds' oof.csv files do not cover every train row once; retrain with --force")
    return oof, fold_average(tests, how)


def _fold_ok(fold_dir: Path, rec: dict) -> bool:
    if not (fold_dir / DONE).exists():
        return False
    try:
        done = read_json(fold_dir / DONE)
    except UserError:
        return False
    fp = rec.get("config_fingerprint")
    return fp is None or done.get("config_fingerprint") in (None, fp)


# --- weights ---------------------------------------------------------------------------------------

def parse_weights(spec: str | None, names: list[str]) -> tuple[str, dict | None, list[str]]:
    """("equal"|"optimize"|"manual", {model: weight} for manual, the models to blend)."""
    spec = (spec or "equal").strip()
    if spec in ("equal", "optimize"):
        return spec, None, names
    manual = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise UserError(f"--weights {spec!r}: expected equal, optimize or MODEL=W,MODEL=W (e.g. a=0.7,b=0.3)")
        k, v = (s.strip() for s in part.split("=", 1))
        try:
            w = float(v)
        except ValueError:
            raise UserError(f"--weights: {k}={v!r} is not a number") from None
        if not np.isfinite(w) or w < 0:
            raise UserError(f"--weights: {k}={v}: weights must be non-negative numbers")
        if k in manual:
            raise UserError(f"--weights: {k!r} given twice")
        manual[k] = w
    if not names:
        names = list(manual)
    unknown = [k for k in manual if k not in names]
    unweighted = [n for n in names if n not in manual]
    if unknown:
        raise UserError(f"--weights names {', '.join(unknown)}, which is not among the blended models "
                        f"({', '.join(names)})")
    if unweighted:
        raise UserError(f"--weights gives no weight to {', '.join(unweighted)}; give every blended model one "
                        f"(0 leaves it out)")
    total = sum(manual.values())
    if total <= 0:
        raise UserError("--weights: at least one weight must be positive")
    return "manual", {k: v / total for k, v in manual.items()}, names


def combine(stack: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted sum of (M, n, L) probabilities."""
    return np.tensordot(np.asarray(w, dtype=np.float64), stack, axes=1)


def optimize_weights(y: np.ndarray, stack: np.ndarray) -> np.ndarray:
    """Non-negative weights summing to 1 minimising the blend's mean binary log loss (convex; SLSQP)."""
    from scipy.optimize import minimize

    m = stack.shape[0]
    if m == 1:
        return np.ones(1)
    y = np.asarray(y, dtype=np.float64)
    flat = stack.reshape(m, -1)
    yf = y.ravel()
    n = flat.shape[1]

    def f(w):
        p = np.clip(w @ flat, EPS, 1 - EPS)
        loss = -(yf * np.log(p) + (1 - yf) * np.log1p(-p)).mean()
        g = -(flat @ (yf / p - (1 - yf) / (1 - p))) / n
        return loss, g

    w0 = np.full(m, 1.0 / m)
    res = minimize(f, w0, jac=True, method="SLSQP", bounds=[(0.0, 1.0)] * m,
                   constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1, "jac": lambda w: np.ones(m)}],
                   options={"maxiter": 500, "ftol": 1e-12})
    w = np.clip(res.x if res.success or np.isfinite(res.fun) else w0, 0.0, None)
    if w.sum() <= 0:
        w = w0
    w = w / w.sum()
    return w if f(w)[0] <= f(w0)[0] + 1e-12 else w0


def _held_out_macro_f1(y, probs, fold) -> float:
    """Macro-F1 of thresholds tuned on k-1 folds and applied to the held-out fold, pooled over folds."""
    ft = thresholds.cv_thresholds(y, probs, fold)
    return float(metrics.f1_per_class(y, thresholds.cv_predict(probs, fold, ft)).mean())


def weights_cv(y: np.ndarray, stack: np.ndarray, fold: np.ndarray, w_all: np.ndarray) -> dict:
    """The overfitting guard: fit weights on k-1 folds' OOF, score the blend on the held-out fold.

    Held-out rows of every fold are pooled; macro-F1 uses thresholds tuned on the same k-1 folds.
    Equal weights go through the same procedure, for comparison.
    """
    n_splits = int(fold.max()) + 1
    held = np.zeros(stack.shape[1:])
    per_fold = []
    for k in range(n_splits):
        tr, va = fold != k, fold == k
        w = optimize_weights(y[tr], stack[:, tr])
        per_fold.append(w.tolist())
        held[va] = combine(stack[:, va], w)
    # fold k's blend for threshold tuning must use fold k's weights on its training rows too
    ft = []
    for k in range(n_splits):
        tr = fold != k
        ft.append(thresholds.tune(y[tr], combine(stack[:, tr], per_fold[k])))
    held_f1 = float(metrics.f1_per_class(y, thresholds.cv_predict(held, fold, np.array(ft))).mean())
    equal = combine(stack, np.full(stack.shape[0], 1.0 / stack.shape[0]))
    fitted = combine(stack, w_all)
    return {
        "objective": "mean binary log loss of the blended OOF probabilities (convex in the weights)",
        "in_sample": {"log_loss": metrics.log_loss(y, fitted), "macro_f1_tuned": metrics.macro_f1(y, fitted, thresholds.tune(y, fitted))},
        "held_out": {"log_loss": metrics.log_loss(y, held), "macro_f1_tuned": held_f1},
        "equal_weights_held_out": {"log_loss": metrics.log_loss(y, equal), "macro_f1_tuned": _held_out_macro_f1(y, equal, fold)},
        "per_fold_weights": per_fold,
        "note": "held_out: weights fit on k-1 folds' OOF, scored on the held-out fold (pooled over folds); "
                "macro_f1_tuned there uses thresholds tuned on the k-1 folds (no shrink)",
    }


# --- the blend -------------------------------------------------------------------------------------

def _row(y, probs, t, min_one: bool, labels) -> dict:
    """metrics.scores at thresholds t, with the at-least-one-label rule applied when asked."""
    pred = thresholds.predict(probs, t, min_one)
    s = metrics.scores(y, pred.astype(np.float64), 0.5, labels)
    s["log_loss"] = metrics.log_loss(y, probs)
    for j, lab in enumerate(labels):
        s["per_class"][lab]["threshold"] = float(np.broadcast_to(t, (len(labels),))[j])
    return s


def _parse_shrink(shrink) -> tuple[float, ...]:
    if shrink is None or str(shrink) == "auto":
        return thresholds.SHRINK_GRID
    try:
        s = float(shrink)
    except ValueError:
        raise UserError(f"--shrink {shrink!r}: expected auto or a number in [0, 1]") from None
    if not 0 <= s <= 1:
        raise UserError(f"--shrink {shrink}: must be in [0, 1]")
    return (s,)


def _parse_center(center) -> tuple[str, ...]:
    if center is None or str(center) == "auto":
        return thresholds.CENTERS
    if str(center) == "global":
        return ("global",)
    try:
        c = float(center)
    except ValueError:
        raise UserError(f"--threshold-center {center!r}: expected auto, global or a number in (0, 1)") from None
    if not 0 < c < 1:
        raise UserError(f"--threshold-center {center}: must be in (0, 1)")
    return (str(c),)


def blend(data: CompetitionData, folds_dir: Path, output: Path, names: list[str], fold_average_how: str = "mean",
          weights: str = "equal", shrink="auto", center="auto", min_one: str = "auto", plots: bool = True,
          stack: str = "auto") -> dict:
    from solution import report as report_mod

    output = Path(output)
    method, manual, names = parse_weights(weights, list(dict.fromkeys(names)))
    if not names:
        raise UserError(f"{output}: no trained models to blend; run `python -m solution train` first")
    if min_one not in thresholds.MIN_ONE_MODES:
        raise UserError(f"--min-one-label {min_one!r}: choose one of {', '.join(thresholds.MIN_ONE_MODES)}")
    shrinks, centers = _parse_shrink(shrink), _parse_center(center)
    fold = folds_mod.load(data, folds_dir)
    loaded = {n: load_model(output, n, data, folds_dir, fold_average_how, fold) for n in names}
    y, labels = data.y, data.labels
    stack_oof = np.stack([loaded[n][0] for n in names])
    stack_test = np.stack([loaded[n][1] for n in names])

    weight_info = {"method": method}
    if method == "equal":
        w = np.full(len(names), 1.0 / len(names))
    elif method == "manual":
        w = np.array([manual[n] for n in names])
    else:
        w = optimize_weights(y, stack_oof)
        if len(names) > 1:
            weight_info.update(weights_cv(y, stack_oof, fold, w))
            h, e = weight_info["held_out"]["macro_f1_tuned"], weight_info["equal_weights_held_out"]["macro_f1_tuned"]
            if h < e:
                log.warn(f"optimised weights score held-out macro-F1 {h:.4f}, equal weights {e:.4f}: "
                         f"the fit does not generalise; consider --weights equal")
        else:
            weight_info["note"] = "one model: its weight is 1"
    oof_b, test_b = combine(stack_oof, w), combine(stack_test, w)

    sel = thresholds.select(y, oof_b, fold, shrinks, centers, min_one)
    stack_info = {"mode": stack, "used": False}
    if stack not in STACK_MODES:
        raise UserError(f"--stack {stack!r}: choose one of {', '.join(STACK_MODES)}")
    if stack != "off":
        s_oof, s_test, params = stack_mod.oof_and_test(y, stack_oof, stack_test, fold, STACK_C)
        s_sel = thresholds.select(y, s_oof, fold, shrinks, centers, min_one)
        stack_info.update(cv_macro_f1_average=sel["cv_macro_f1"], cv_macro_f1_stack=s_sel["cv_macro_f1"], C=STACK_C)
        if stack == "on" or s_sel["cv_macro_f1"] > sel["cv_macro_f1"]:
            oof_b, test_b, sel = s_oof, s_test, s_sel
            stack_info.update(used=True, coef=params["coef"].tolist(), intercept=params["intercept"].tolist())
        log.info(f"stacker: CV macro-F1 {s_sel['cv_macro_f1']:.4f} vs weighted average {stack_info['cv_macro_f1_average']:.4f}"
                 f" -> {'stacked' if stack_info['used'] else 'average'} ({stack})")
    t, use_min_one = sel["thresholds"], sel["min_one"]["used"]

    scores, table = {}, []
    for i, n in enumerate([*names, "blend"]):
        probs = oof_b if n == "blend" else stack_oof[i]
        if n == "blend":
            tn, cv = t, sel["cv_macro_f1"]
        else:  # every model gets the blend's threshold procedure, so the rows compare like with like
            tn = thresholds.tune_guarded(y, probs, sel["shrink"], sel["center"])
            ft = thresholds.cv_thresholds(y, probs, fold, sel["shrink"], sel["center"])
            cv = float(metrics.f1_per_class(y, thresholds.cv_predict(probs, fold, ft, use_min_one)).mean())
        at05 = metrics.scores(y, probs, 0.5, labels)
        tuned = _row(y, probs, tn, use_min_one, labels)
        scores[n] = {"at_0.5": at05, "at_tuned": tuned, "cv_macro_f1": cv}
        table.append({"model": n, "weight": 1.0 if n == "blend" else float(w[i]),
                      "macro_f1_at_0.5": at05["macro_f1"], "macro_f1_tuned": tuned["macro_f1"], "macro_f1_cv": cv,
                      "micro_f1": tuned["micro_f1"], "subset_accuracy": tuned["subset_accuracy"],
                      "jaccard": tuned["jaccard"], "log_loss": tuned["log_loss"]})

    if len(names) > 1:
        best = max(table[:-1], key=lambda r: r["macro_f1_cv"])
        if best["macro_f1_cv"] > sel["cv_macro_f1"]:
            log.warn(f"{best['model']} alone has a higher cross-validated macro-F1 ({best['macro_f1_cv']:.4f}) than "
                     f"the blend ({sel['cv_macro_f1']:.4f}); consider blending fewer models or other --weights")

    pred = thresholds.predict(test_b, t, use_min_one)
    # 0/1 predictions go through submission.build as probabilities cut at 0.5 (exact for 0.0 and 1.0)
    sub = submission.build(data.sample, labels, data.test[ID], pred.astype(np.float64), 0.5)
    path = submission.write(sub, data.sample, output / "submission.csv")
    report = {
        "models": names, "fold_average": fold_average_how,
        "weights": dict(zip(names, w.tolist())), "weights_info": weight_info,
        "thresholds": dict(zip(labels, t.tolist())),
        "threshold_selection": {
            "shrink": sel["shrink"], "center": sel["center"], "center_value": sel["center_value"],
            "cv_macro_f1": sel["cv_macro_f1"], "in_sample_macro_f1": sel["in_sample_macro_f1"],
            "grid": sel["grid"], "unshrunk": dict(zip(labels, sel["unshrunk"].tolist())),
            "fold_thresholds": sel["fold_thresholds"].tolist(),
            "note": "cv_macro_f1: thresholds tuned on k-1 folds' blended OOF, applied to the held-out fold, "
                    "pooled over folds; the shrink/center with the best cv_macro_f1 is used",
        },
        "min_one_label": sel["min_one"],
        "stacker": stack_info,
        "table": table, "scores": scores,
        "n_train": int(len(y)), "n_folds": int(fold.max()) + 1, "labels": labels,
        "label_rate_test_pred": dict(zip(labels, pred.mean(0).tolist())),
        "submission": str(path), "submission_sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
        "input_dir": str(data.input_dir),
    }
    files = report_mod.write(report, output / "blend", y=y, oof=oof_b, labels=labels, plots=plots)
    report["files"] = {k: str(v) for k, v in files.items()}
    print(report_mod.console_table(report))
    print(f"thresholds: shrink {sel['shrink']:g} toward {sel['center']} ({sel['center_value']:.3f}); "
          f"at-least-one-label {'on' if use_min_one else 'off'} ({min_one}); "
          f"CV macro-F1 {sel['cv_macro_f1']:.4f}")
    print(f"report: {files['md']}\nsubmission: {path}")
    return report


def main(argv=None) -> int:
    from solution.cli import common_parser, resolve_data

    p = argparse.ArgumentParser(
        prog="python -m solution blend", parents=[common_parser()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Blend trained models' OOF/test probabilities, tune per-label thresholds on OOF and write\n"
                    "output/submission.csv, output/blend/report.{md,json} and PNG plots. Never retrains.",
        epilog="examples:\n"
               "  python -m solution blend                          # every trained model, equal weights\n"
               "  python -m solution blend tfidf-lr minilm-lora --weights optimize\n"
               "  python -m solution blend --weights tfidf-lr=0.3,minilm-lora=0.7 --min-one-label off")
    p.add_argument("models", nargs="*", help="models to blend (default: every trained model under --output)")
    p.add_argument("--fold-average", choices=FOLD_AVERAGES, default="mean",
                   help="how a model's per-fold test probabilities are averaged (default: mean)")
    p.add_argument("--weights", default="equal", metavar="equal|optimize|M=W,...",
                   help="model weights: equal (default); optimize = non-negative, summing to 1, minimising OOF "
                        "log loss, checked on held-out folds; or manual, e.g. tfidf-lr=0.3,minilm-lora=0.7 "
                        "(normalised to sum to 1)")
    p.add_argument("--shrink", default="auto", metavar="auto|S",
                   help="shrink tuned thresholds toward the center by S in [0,1]; auto (default) picks S from "
                        f"{', '.join(f'{s:g}' for s in thresholds.SHRINK_GRID)} by cross-validating the thresholds")
    p.add_argument("--threshold-center", default="auto", metavar="auto|global|C",
                   help="what thresholds shrink toward: 0.5, global (one best threshold for all labels) or a "
                        "number; auto (default) lets the cross-validation choose between 0.5 and global")
    p.add_argument("--min-one-label", choices=thresholds.MIN_ONE_MODES, default="auto",
                   help="predict at least one label per tweet (argmax of prob/threshold when none passes); "
                        "auto (default) keeps it only if it raises the cross-validated OOF macro-F1")
    p.add_argument("--stack", choices=STACK_MODES, default="auto",
                   help="second stage: per-label logistic regression over all models' OOF for all labels (fit on "
                        "k-1 folds for OOF); auto (default) uses it only if its cross-validated macro-F1 is higher")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    args = p.parse_args(argv)
    data, dirs = resolve_data(args)
    names = args.models
    if not names and args.weights not in ("equal", "optimize"):
        names = []  # manual weights name the models
    elif not names:
        names = discover(dirs.output)
    blend(data, dirs.folds, dirs.output, names, fold_average_how=args.fold_average, weights=args.weights,
          shrink=args.shrink, center=args.threshold_center, min_one=args.min_one_label, plots=not args.no_plots,
          stack=args.stack)
    return 0
