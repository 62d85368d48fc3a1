"""Blend what training wrote into output/submission.csv and output/blend/report.{md,json} (+ PNG plots).

Never retrains. Per model, the OOF probabilities (one row per train tweet) are assembled from the
fold<k>/oof.csv files and the test probabilities averaged over the fold<k>/test.csv files (`mean`,
`rank` or `geometric`). The submission comes from one of two methods, and the report names which:
- a weighted average of the models' probabilities: equal weights; members that fine-tune their encoder
  counted twice (`encoders`); `auto` (the default), whichever of those two has the higher cross-validated
  macro-F1; manual weights; or non-negative weights summing to one fitted on OOF by minimising log loss
  (checked fold by fold on held-out OOF);
- a stacker (--stack on, or auto when its cross-validated macro-F1 is higher): per label, a logistic
  regression on the logits of every model's probability for every label (solution.stack).
Per-label thresholds are tuned on the chosen method's OOF, shrunk by an amount chosen by
cross-validating the thresholds themselves (see solution.thresholds.select).

Why log loss for the weights: the blend is linear in the weights, so its binary cross-entropy is a
smooth convex function of them: one global optimum, found exactly and reproducibly, that uses every
probability (not just the cut points), so it moves little between folds. The F1-based alternatives
(best-threshold F1 per label) are piecewise constant in the weights: an optimiser chases noise in a
few hundred rare-label positives. Thresholds are tuned afterwards anyway, and the held-out check
reports macro-F1 of the optimised weights next to equal weights, so the choice can be judged.

The report is written before the submission (see write_outputs), so a submission always has its report.
"""
from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from solution import folds as folds_mod
from solution import log, metrics, submission, thresholds, trained
from solution import report as report_mod
from solution import stack as stack_mod
from solution.data import ID, CompetitionData
from solution.errors import UserError
from solution.io import atomic_path, read_json

NOT_MODELS = {"blend", "demo", "kernel", "kernel-wheels"}
FOLD_AVERAGES = ("mean", "rank", "geometric")
EPS = metrics.EPS
STACK_MODES = ("auto", "on", "off")
STACK_C = 0.03  # strong L2: 11 x models features, rare labels with ~300 positives
WEIGHT_MODES = ("auto", "equal", "encoders", "optimize")
# `encoders`: a member that fine-tunes its encoder (kind hf) weighs this many times one that does not (TF-IDF, frozen
# embeddings + LR): over nine blends of real runs, nested-CV macro-F1 +0.0015 on average, seven up (RESULTS.md,
# "Fine-tuned members count twice")
ENCODER_WEIGHT = 2.0


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


def load_probs(output: Path, name: str, data: CompetitionData, folds_dir: Path, how: str = "mean",
               fold: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(OOF, fold-averaged test probabilities) of one model in train/test order, from its fold files.

    Refuses a model trained on other folds or labels, with a fold not done, or with rows that are not
    its folds' (solution.trained: the same reader and rule as training's assembly and predict).
    """
    mdir = Path(output) / name
    rec = trained.read_record(mdir, data, folds_dir)
    fold = folds_mod.load(data, folds_dir) if fold is None else fold
    oof, tests = trained.fold_probs(mdir, data, fold, rec.get("config_fingerprint"))
    return oof, fold_average(tests, how)


# --- weights ---------------------------------------------------------------------------------------

def parse_weights(spec: str | None, names: list[str]) -> tuple[str, dict | None, list[str]]:
    """(one of WEIGHT_MODES, or "manual"; {model: weight} for manual; the models to blend)."""
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


def member_kinds(output: Path, names: list[str]) -> list[str]:
    """Each member's config kind from its config.json (hf: it fine-tunes its encoder), "" where it does not say."""
    return [read_json(Path(output) / n / "config.json").get("config", {}).get("kind", "") for n in names]


def encoder_weights(kinds: list[str]) -> np.ndarray:
    """ENCODER_WEIGHT for each member that fine-tunes its encoder, 1 for the others; summing to 1."""
    w = np.array([ENCODER_WEIGHT if k == "hf" else 1.0 for k in kinds])
    return w / w.sum()


def choose_weights(method: str, manual: dict | None, names: list[str], y: np.ndarray, stack_oof: np.ndarray,
                   fold: np.ndarray, kinds: list[str], select) -> tuple[np.ndarray, dict]:
    """(weights in `names` order, how they were chosen) for --weights auto, equal, encoders, manual or optimize.
    kinds: each member's config kind; select(oof) -> thresholds.select's result (auto compares its cv_macro_f1)."""
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
    """(OOF, test probabilities, threshold selection, stacker info) of the method that makes the submission.

    The weighted average always; with --stack on/auto the stacker too, its OOF from fits on k-1 folds.
    `choose(oof)` selects thresholds (solution.thresholds.select); auto keeps the higher CV macro-F1.
    """
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


WEIGHTING = {"equal": "equal weights", "optimize": "weights optimised on OOF log loss", "manual": "manual weights",
             "encoders": f"members that fine-tune their encoder x{ENCODER_WEIGHT:g}"}


def describe_method(models: list[str], weights: dict | None, stacker: dict, weighting: str | None = None) -> str:
    """One line naming the method that made the submission: report, headline and `predict` all print it."""
    if stacker.get("used"):
        n_labels, n_in = len(stacker["coef"]), len(stacker["coef"][0])
        return (f"stacker (per-label logistic regression, C={stacker['C']:g}, on the logits of {len(models)} "
                f"model{'s' if len(models) > 1 else ''} x {n_labels} labels = {n_in} inputs; models: {', '.join(models)})")
    if len(models) == 1:
        return f"single model {models[0]} (nothing to blend)"
    how = WEIGHTING.get(weighting, "weights")
    return f"weighted average of probabilities ({how}: {', '.join(f'{m} {weights[m]:.2f}' for m in models)})"


# --- scores ----------------------------------------------------------------------------------------

def _row(y, probs, t, min_one: bool, labels) -> dict:
    """metrics.scores at thresholds t, with the at-least-one-label rule applied when asked."""
    pred = thresholds.predict(probs, t, min_one)
    s = metrics.scores(y, pred.astype(np.float64), 0.5, labels)
    s["log_loss"] = metrics.log_loss(y, probs)
    for j, lab in enumerate(labels):
        s["per_class"][lab]["threshold"] = float(np.broadcast_to(t, (len(labels),))[j])
    return s


def score_model(y, probs, fold, labels, t, fold_t, min_one: bool) -> dict:
    """Scores at 0.5, at thresholds t (tuned on all OOF) and cross-validated: fold_t[k] were tuned on the
    other folds and cut fold k; macro-F1 pooled over folds and per fold, with the folds' std."""
    cv_pred = thresholds.cv_predict(probs, fold, fold_t, min_one)
    per_fold = [float(metrics.f1_per_class(y[fold == k], cv_pred[fold == k]).mean()) for k in range(len(fold_t))]
    return {"at_0.5": metrics.scores(y, probs, 0.5, labels), "at_tuned": _row(y, probs, t, min_one, labels),
            "cv_macro_f1": float(metrics.f1_per_class(y, cv_pred).mean()),
            "cv_macro_f1_per_fold": per_fold, "cv_macro_f1_std": float(np.std(per_fold))}


def score_all(y, stack_oof, oof, fold, labels, names, sel) -> dict:
    """{model or "blend": score_model}; every model gets the blend's threshold procedure (same shrink and
    center), so the rows compare like with like."""
    min_one = sel["min_one"]["used"]
    out = {}
    for n, probs in zip(names, stack_oof):
        t = thresholds.tune_guarded(y, probs, sel["shrink"], sel["center"])
        ft = thresholds.cv_thresholds(y, probs, fold, sel["shrink"], sel["center"])
        out[n] = score_model(y, probs, fold, labels, t, ft, min_one)
    out["blend"] = score_model(y, oof, fold, labels, sel["thresholds"], sel["fold_thresholds"], min_one)
    return out


def table_rows(scores: dict, names: list[str], weights: dict | None, train_time: dict, stacked: bool) -> list[dict]:
    """One summary row per model and the blend. The stacker's blend row has no score at 0.5 (see report)."""
    rows = []
    for n in [*names, "blend"]:
        s = scores[n]
        at05 = None if n == "blend" and stacked else s["at_0.5"]["macro_f1"]
        rows.append({"model": n, "weight": weights[n] if weights and n != "blend" else None,
                     "macro_f1_at_0.5": at05, "macro_f1_tuned": s["at_tuned"]["macro_f1"],
                     "macro_f1_cv": s["cv_macro_f1"], "macro_f1_cv_std": s["cv_macro_f1_std"],
                     **{k: s["at_tuned"][k] for k in ("micro_f1", "subset_accuracy", "jaccard", "log_loss")},
                     "train_time_s": train_time.get(n)})
    return rows


def _warn_if_a_member_wins(table: list[dict]) -> None:
    if len(table) > 2:
        best, blend_row = max(table[:-1], key=lambda r: r["macro_f1_cv"]), table[-1]
        if best["macro_f1_cv"] > blend_row["macro_f1_cv"]:
            log.warn(f"{best['model']} alone has a higher cross-validated macro-F1 ({best['macro_f1_cv']:.4f}) than "
                     f"the blend ({blend_row['macro_f1_cv']:.4f}); consider blending fewer models or other --weights")


# --- what else a Kaggler judges CV by ----------------------------------------------------------------

def diversity(stack_oof: np.ndarray) -> list[list[float | None]]:
    """(M, M): Pearson correlation of two members' OOF probabilities per label, averaged over labels
    (None where undefined: a member constant on every label). Lower means more diverse members."""
    m = stack_oof.shape[0]
    total, count = np.zeros((m, m)), np.zeros((m, m))
    for j in range(stack_oof.shape[2]):
        x = stack_oof[:, :, j] - stack_oof[:, :, j].mean(1, keepdims=True)
        norm = np.sqrt((x * x).sum(1))
        ok = norm > 1e-9  # a constant column has no correlation with anything
        both = np.outer(ok, ok)
        total += np.where(both, (x @ x.T) / np.where(both, np.outer(norm, norm), 1.0), 0.0)
        count += both
    mean = total / np.maximum(count, 1)
    return [[float(v) if c else None for v, c in zip(row, crow)] for row, crow in zip(mean, count > 0)]


def train_time_s(output: Path, name: str, n_splits: int) -> float | None:
    """Sum of the folds' wall_time_s (fold<k>/metrics.json); None when a fold's is missing or unreadable."""
    total = 0.0
    for k in range(n_splits):
        try:
            t = read_json(Path(output) / name / f"fold{k}" / "metrics.json").get("wall_time_s")
        except (UserError, OSError, AttributeError):
            return None
        if not isinstance(t, (int, float)):
            return None
        total += float(t)
    return total


# --- the report ------------------------------------------------------------------------------------

AT_05_NOTE = ("not meaningful for the stacker: its strong L2 penalty pulls every probability toward the "
              "label's base rate, so a cut at 0.5 is arbitrary; only tuned thresholds are used")


def method_info(names, w, weight_info, stack_info) -> dict:
    """report["method"]: what made the submission, in words and in numbers."""
    stacked = bool(stack_info["used"])
    weights = dict(zip(names, w.tolist()))
    info = {"kind": "stacker" if stacked else "average",
            "description": describe_method(names, None if stacked else weights, stack_info, weight_info["method"]),
            "at_0.5_meaningful": not stacked}
    if stacked:
        info["note_at_0.5"] = AT_05_NOTE
        info["instead_of"] = describe_method(names, weights, {}, weight_info["method"])
    return info


def headline(report: dict) -> str:
    """The one line `blend` (and the pipeline) print: the method and its OOF macro-F1."""
    b, m = report["scores"]["blend"], report["method"]
    at05 = (f"; {b['at_0.5']['macro_f1']:.4f} at 0.5" if m["at_0.5_meaningful"]
            else "; no score at 0.5 (not meaningful for the stacker)")
    return (f"{'DEMO DATA: ' if report['demo'] else ''}{m['description']}; OOF macro-F1 "
            f"{b['at_tuned']['macro_f1']:.4f} with per-label thresholds tuned on OOF, {b['cv_macro_f1']:.4f} "
            f"cross-validated ({b['cv_macro_f1_std']:.4f} std over {report['n_folds']} folds){at05}")


def _threshold_report(sel: dict, labels: list[str]) -> dict:
    return {
        "shrink": sel["shrink"], "center": sel["center"], "center_value": sel["center_value"],
        "cv_macro_f1": sel["cv_macro_f1"], "in_sample_macro_f1": sel["in_sample_macro_f1"],
        "grid": sel["grid"], "unshrunk": dict(zip(labels, sel["unshrunk"].tolist())),
        "fold_thresholds": sel["fold_thresholds"].tolist(),
        "note": "cv_macro_f1: thresholds tuned on k-1 folds' blended OOF, applied to the held-out fold, "
                "pooled over folds; the shrink/center with the best cv_macro_f1 is used",
    }


def build_report(data, names, how, w, weight_info, stack_info, sel, scores, stack_oof, pred, output, n_folds,
                 demo: bool, left_out: list[dict]) -> dict:
    """The report dict (report.json); submission and submission_sha256 are filled in when it is written."""
    labels = data.labels
    weights = None if stack_info["used"] else dict(zip(names, w.tolist()))
    train_time = {n: train_time_s(output, n, n_folds) for n in names}
    if all(t is not None for t in train_time.values()):
        train_time["blend"] = sum(train_time.values())
    report = {
        "demo": bool(demo), "method": method_info(names, w, weight_info, stack_info),
        "models": names, "left_out": left_out, "fold_average": how,
        "weights": weights, "weights_info": weight_info,
        "thresholds": dict(zip(labels, sel["thresholds"].tolist())),
        "threshold_selection": _threshold_report(sel, labels),
        "min_one_label": sel["min_one"], "stacker": stack_info,
        "table": table_rows(scores, names, weights, train_time, bool(stack_info["used"])),
        "scores": scores, "train_time_s": train_time,
        "diversity": {"models": names, "correlation": diversity(stack_oof),
                      "measure": "Pearson correlation of OOF probabilities per label, mean over labels"},
        "n_train": int(len(data.train)), "n_folds": int(n_folds), "labels": labels,
        "label_rate_train": dict(zip(labels, data.y.mean(0).tolist())),
        "label_rate_test_pred": dict(zip(labels, pred.mean(0).tolist())),
        "input_dir": str(data.input_dir),
    }
    report["headline"] = headline(report)
    return report


# --- writing: the report first, the submission last -------------------------------------------------

def write_outputs(report: dict, sub, sample, output: Path, y, oof, plots: bool) -> dict:
    """Write output/blend/ (plots, report.md, report.json), then output/submission.csv; returns the files.

    Order, so that a submission on disk always has the report that describes it: the new submission is
    first written and checked under a temporary name (its sha256 goes into the report); then the old
    submission is removed, since from here on the report is being replaced and would no longer describe
    it; then the report is written; only then does the new submission take its name. If anything fails
    (a full disk, say) there is no submission rather than one the report does not describe. A failure
    before this point (bad input, a missing fold) leaves the old submission and its old report together.
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


def print_summary(report: dict, files: dict) -> None:
    sel, mo = report["threshold_selection"], report["min_one_label"]
    print(report_mod.console_table(report))
    print(f"thresholds: shrink {sel['shrink']:g} toward {sel['center']} ({sel['center_value']:.3f}); "
          f"at-least-one-label {'on' if mo['used'] else 'off'} ({mo['mode']}); CV macro-F1 {sel['cv_macro_f1']:.4f}")
    print(report["headline"])
    print(f"report: {files['md']}\nsubmission: {files['submission']}")


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
    """[{model, reason}] as a caller passes them (dicts or (model, reason) pairs)."""
    out = []
    for item in left_out or []:
        model, reason = (item["model"], item.get("reason", "")) if isinstance(item, dict) else item
        out.append({"model": str(model), "reason": str(reason)})
    return out


def blend(data: CompetitionData, folds_dir: Path, output: Path, names: list[str], **options) -> dict:
    """Blend `names` into output/submission.csv and output/blend/report.{md,json}; returns the report.

    One blend at a time per output folder (a second is refused, naming the first's PID); what killed blends
    left in output/blend/ is removed first; the libraries' warnings go to output/blend/blend.log.
    Options: see `_blend`.
    """
    from solution import lock
    from solution.io import remove_stale_tmp

    folder = Path(output) / "blend"
    with lock.hold(folder), log.library_log(folder / "blend.log"):
        remove_stale_tmp(folder)
        return _blend(data, folds_dir, Path(output), names, **options)


def _blend(data: CompetitionData, folds_dir: Path, output: Path, names: list[str], fold_average_how: str = "mean",
           weights: str = "auto", shrink="auto", center="auto", min_one: str = "auto", plots: bool = True,
           stack: str = "auto", demo: bool = False, left_out=None, plan=None, run_models=None,
           echo: bool = True) -> dict:
    """demo: the data is the generated demo set (marked in the report and plots). left_out: models a caller
    chose not to blend, as [{"model": ..., "reason": ...}], listed in the report. plan: the lines of the time
    budget's plan that chose the models (kept in the report). run_models: what became of each model of a `run`
    ([{"model", "status", "reason"}], kept in the report for the table the notebook shows). echo: print the
    summary (an interim blend on another thread prints nothing, without touching sys.stdout)."""
    method, manual, names = parse_weights(weights, list(dict.fromkeys(names)))
    if not names:
        raise UserError(f"{output}: no trained models to blend; run `python -m solution train` first")
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
    from solution.cli import common_parser, resolve_data

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
