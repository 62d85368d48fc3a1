"""Blend trained models' probabilities into output/submission.csv and output/blend/; never retrains.

Fitted weights minimise log loss, convex in them and using every probability; threshold F1 is piecewise
constant and chases noise in the rare labels.
"""
from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from solution import folds as folds_mod
from solution import hints, lock, log
from solution.blend import metrics, submission, thresholds
from solution.blend import report as report_mod
from solution.blend import stack as stack_mod
from solution.blend.report import ENCODER_WEIGHT, _warn_if_a_member_wins, build_report, print_summary, score_all
from solution.data import ID, CompetitionData
from solution.errors import UserError
from solution.io import atomic_path, remove_stale_tmp
from solution.options import common_parser, resolve_data
from solution.train import model_dir as trained

NOT_MODELS = {"blend", "demo", "kernel", "kernel-wheels"}
FOLD_AVERAGES = ("mean", "rank", "geometric")
EPS = metrics.EPS
STACK_MODES = ("auto", "on", "off")
STACK_C = 0.03  # strong L2: many features per model, few positives for a rare label
WEIGHT_MODES = ("auto", "equal", "encoders", "optimize")


def discover(output: Path) -> list[str]:
    output = Path(output)
    if not output.is_dir():
        return []
    return sorted(p.name for p in output.iterdir()
                  if p.is_dir() and p.name not in NOT_MODELS and (p / "config.json").exists())


# --- one model -------------------------------------------------------------------------------------

def fold_average(tests: list[np.ndarray], how: str = "mean") -> np.ndarray:
    """`rank` maps mean ranks onto the folds' mean order statistics: the scale the thresholds were tuned on."""
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


def load_probs(output: Path, name: str, data: CompetitionData, folds_dir: Path, how: str = "mean",
               fold: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(OOF, fold-averaged test probabilities) of one model."""
    mdir = Path(output) / name
    rec = trained.read_record(mdir, data, folds_dir)
    fold = folds_mod.load(data, folds_dir) if fold is None else fold
    oof, tests = trained.fold_probs(mdir, data, fold, rec.get("config_fingerprint"), folds_dir)
    return oof, fold_average(tests, how)


# --- weights ---------------------------------------------------------------------------------------

def parse_weights(spec: str | None, names: list[str]) -> tuple[str, dict | None, list[str]]:
    """(mode, {model: weight} if manual, the models to blend)."""
    spec = (spec or "auto").strip()
    if spec in WEIGHT_MODES:
        return spec, None, names
    manual = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise UserError(f"--weights {spec!r}: expected {', '.join(WEIGHT_MODES)} or MODEL=W,MODEL=W "
                            f"(e.g. a=0.7,b=0.3)")
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
    return np.tensordot(np.asarray(w, dtype=np.float64), stack, axes=1)


def optimize_weights(y: np.ndarray, stack: np.ndarray) -> np.ndarray:
    """Non-negative weights summing to 1 minimising the blend's binary log loss."""
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
    """Macro-F1 of thresholds tuned on k-1 folds, applied to the held-out fold."""
    ft = thresholds.cv_thresholds(y, probs, fold)
    return float(metrics.f1_per_class(y, thresholds.cv_predict(probs, fold, ft)).mean())


def weights_cv(y: np.ndarray, stack: np.ndarray, fold: np.ndarray, w_all: np.ndarray) -> dict:
    """The overfitting guard: weights and thresholds fit on k-1 folds, scored on the held-out fold."""
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
        "in_sample": {"log_loss": metrics.log_loss(y, fitted),
                      "macro_f1_tuned": metrics.macro_f1(y, fitted, thresholds.tune(y, fitted))},
        "held_out": {"log_loss": metrics.log_loss(y, held), "macro_f1_tuned": held_f1},
        "equal_weights_held_out": {"log_loss": metrics.log_loss(y, equal),
                                   "macro_f1_tuned": _held_out_macro_f1(y, equal, fold)},
        "per_fold_weights": per_fold,
        "note": "held_out: weights fit on k-1 folds' OOF, scored on the held-out fold (pooled over folds); "
                "macro_f1_tuned there uses thresholds tuned on the k-1 folds (no shrink)",
    }


def member_kinds(output: Path, names: list[str]) -> list[str]:
    return [trained.read_config(Path(output) / n)["config"].get("kind", "") for n in names]


def encoder_weights(kinds: list[str]) -> np.ndarray:
    w = np.array([ENCODER_WEIGHT if k == "hf" else 1.0 for k in kinds])
    return w / w.sum()


def choose_weights(method: str, manual: dict | None, names: list[str], y: np.ndarray, stack_oof: np.ndarray,
                   fold: np.ndarray, kinds: list[str], select) -> tuple[np.ndarray, dict]:
    """(weights in `names` order, how they were chosen)."""
    info = {"method": method}
    equal = np.full(len(names), 1.0 / len(names))
    if method == "equal" or (method in ("auto", "encoders") and len(set(k == "hf" for k in kinds)) < 2):
        return equal, {"method": "equal", **({"asked": method} if method != "equal" else {})}
    if method == "encoders":
        return encoder_weights(kinds), info
    if method == "auto":
        candidates = {"equal": equal, "encoders": encoder_weights(kinds)}
        cv = {m: select(combine(stack_oof, w))["cv_macro_f1"] for m, w in candidates.items()}
        chosen = "encoders" if cv["encoders"] > cv["equal"] + 1e-12 else "equal"
        log.info(f"weights: CV macro-F1 {cv['encoders']:.4f} with fine-tuned members x{ENCODER_WEIGHT:g}, "
                 f"{cv['equal']:.4f} with equal weights -> {chosen} (auto)")
        return candidates[chosen], {"method": chosen, "asked": "auto", "cv_macro_f1": cv}
    if method == "manual":
        return np.array([manual[n] for n in names]), info
    w = optimize_weights(y, stack_oof)
    if len(names) == 1:
        info["note"] = "one model: its weight is 1"
        return w, info
    info.update(weights_cv(y, stack_oof, fold, w))
    h, e = info["held_out"]["macro_f1_tuned"], info["equal_weights_held_out"]["macro_f1_tuned"]
    if h < e:
        log.warn(f"optimised weights score held-out macro-F1 {h:.4f}, equal weights {e:.4f}: "
                 f"the fit does not generalise; consider --weights equal")
    return w, info


# --- average or stacker ----------------------------------------------------------------------------

def average_or_stack(y, stack_oof, stack_test, w, fold, choose, stack: str):
    """The weighted average, or the stacker where --stack asks or auto finds its CV macro-F1 higher."""
    oof, test = combine(stack_oof, w), combine(stack_test, w)
    sel = choose(oof)
    info = {"mode": stack, "used": False}
    if stack == "off":
        return oof, test, sel, info
    s_oof, s_test, params = stack_mod.oof_and_test(y, stack_oof, stack_test, fold, STACK_C)
    s_sel = choose(s_oof)
    info.update(cv_macro_f1_average=sel["cv_macro_f1"], cv_macro_f1_stack=s_sel["cv_macro_f1"], C=STACK_C)
    if stack == "on" or s_sel["cv_macro_f1"] > sel["cv_macro_f1"]:
        info.update(used=True, coef=params["coef"].tolist(), intercept=params["intercept"].tolist())
        oof, test, sel = s_oof, s_test, s_sel
    log.info(f"stacker: CV macro-F1 {s_sel['cv_macro_f1']:.4f} vs weighted average {info['cv_macro_f1_average']:.4f}"
             f" -> {'stacked' if info['used'] else 'average'} ({stack})")
    return oof, test, sel, info


# --- writing: the report first, the submission last -------------------------------------------------

def write_outputs(report: dict, sub, sample, output: Path, y, oof, plots: bool) -> dict:
    """Write output/blend/, then output/submission.csv; returns the files.

    So a submission on disk always has its report: the new one is written under a temporary name (its sha256
    goes into the report), the old one removed, the report written, and only then is the new one renamed.
    A failure leaves no submission rather than one without its report.
    """
    path = Path(output) / "submission.csv"
    with atomic_path(path) as tmp:
        submission.write(sub, sample, tmp)
        report["submission"] = str(path)
        report["submission_sha256"] = hashlib.sha256(tmp.read_bytes()).hexdigest()
        path.unlink(missing_ok=True)
        files = report_mod.write(report, Path(output) / "blend", y=y, oof=oof, plots=plots)
    files["submission"] = path
    report["files"] = {k: str(v) for k, v in files.items()}
    return files


# --- the blend -------------------------------------------------------------------------------------

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


def _left_out(left_out) -> list[dict]:
    """[{model, reason}] from dicts or (model, reason) pairs."""
    out = []
    for item in left_out or []:
        model, reason = (item["model"], item.get("reason", "")) if isinstance(item, dict) else item
        out.append({"model": str(model), "reason": str(reason)})
    return out


def blend(data: CompetitionData, folds_dir: Path, output: Path, names: list[str], **options) -> dict:
    """Blend `names` under the output folder's lock; returns the report."""

    folder = Path(output) / "blend"
    with lock.hold(folder), log.library_log(folder / "blend.log"):
        remove_stale_tmp(folder)
        remove_stale_tmp(output, recursive=False, lock_of=folder)  # submission.csv: blend's, under this lock
        return _blend(data, folds_dir, Path(output), names, **options)


def _blend(data: CompetitionData, folds_dir: Path, output: Path, names: list[str], fold_average_how: str = "mean",
           weights: str = "auto", shrink="auto", center="auto", min_one: str = "auto", plots: bool = True,
           stack: str = "auto", demo: bool = False, left_out=None, plan=None, run_models=None,
           echo: bool = True) -> dict:
    """left_out, plan, run_models: the caller's run, kept in the report."""
    method, manual, names = parse_weights(weights, list(dict.fromkeys(names)))
    if not names:
        raise UserError(f"{output}: no trained models to blend; run "
                        f"`{hints.command('train', input=data.input_dir, folds=folds_dir, output=output)}` first")
    if min_one not in thresholds.MIN_ONE_MODES:
        raise UserError(f"--min-one-label {min_one!r}: choose one of {', '.join(thresholds.MIN_ONE_MODES)}")
    if stack not in STACK_MODES:
        raise UserError(f"--stack {stack!r}: choose one of {', '.join(STACK_MODES)}")
    shrinks, centers = _parse_shrink(shrink), _parse_center(center)
    fold = folds_mod.load(data, folds_dir)
    loaded = [load_probs(output, n, data, folds_dir, fold_average_how, fold) for n in names]
    y = data.y
    stack_oof, stack_test = np.stack([o for o, _ in loaded]), np.stack([t for _, t in loaded])

    select = lambda p: thresholds.select(y, p, fold, shrinks, centers, min_one)  # noqa: E731
    w, weight_info = choose_weights(method, manual, names, y, stack_oof, fold, member_kinds(output, names), select)
    oof, test, sel, stack_info = average_or_stack(y, stack_oof, stack_test, w, fold, select, stack)
    scores = score_all(y, stack_oof, oof, fold, data.labels, names, sel)
    pred = thresholds.predict(test, sel["thresholds"], sel["min_one"]["used"])
    report = build_report(data, names, fold_average_how, w, weight_info, stack_info, sel, scores, stack_oof, pred,
                          output, int(fold.max()) + 1, demo, _left_out(left_out))
    report["plan"] = list(plan or [])
    report["run_models"] = list(run_models or [])
    if not demo:  # advice about generated data would mislead
        _warn_if_a_member_wins(report["table"])
    # 0/1 predictions go through submission.build as probabilities cut at 0.5 (exact for 0.0 and 1.0)
    sub = submission.build(data.sample, data.labels, data.test[ID], pred.astype(np.float64), 0.5)
    files = write_outputs(report, sub, data.sample, output, y, oof, plots)
    if echo:
        print_summary(report, files)
    return report


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m solution blend", parents=[common_parser()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Blend trained models' OOF/test probabilities, tune per-label thresholds on OOF and write\n"
                    "output/submission.csv, output/blend/report.{md,json} and PNG plots. Never retrains.",
        epilog="examples:\n"
               "  python -m solution blend                          # every trained model\n"
               "  python -m solution blend tfidf-lr minilm-lora --weights optimize\n"
               "  python -m solution blend --weights tfidf-lr=0.3,minilm-lora=0.7 --min-one-label off")
    p.add_argument("models", nargs="*", help="models to blend (default: every trained model under --output)")
    p.add_argument("--fold-average", choices=FOLD_AVERAGES, default="mean",
                   help="how a model's per-fold test probabilities are averaged (default: mean)")
    p.add_argument("--weights", default="auto", metavar="auto|equal|encoders|optimize|M=W,...",
                   help="model weights: auto (default) = equal or encoders, whichever has the higher cross-validated "
                        f"macro-F1; encoders = a member that fine-tunes its encoder weighs x{ENCODER_WEIGHT:g}; "
                        "optimize = non-negative, summing to 1, minimising OOF "
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
                        "k-1 folds for OOF); auto (default) uses it instead of the weighted average only if its "
                        "cross-validated macro-F1 is higher (the report says which made the submission)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    args = p.parse_args(argv)
    data, dirs = resolve_data(args)
    names = args.models
    if not names and args.weights not in WEIGHT_MODES:
        names = []  # manual weights name the models
    elif not names:
        names = discover(dirs.output)
    blend(data, dirs.folds, dirs.output, names, fold_average_how=args.fold_average, weights=args.weights,
          shrink=args.shrink, center=args.threshold_center, min_one=args.min_one_label, plots=not args.no_plots,
          stack=args.stack, demo=dirs.demo)
    return 0
