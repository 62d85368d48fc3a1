"""The blend report: output/blend/report.{md,json} and its plots."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from solution import log
from solution.blend import metrics, thresholds
from solution.blend.plots import plot_f1_vs_threshold, plot_per_class_f1
from solution.errors import UserError
from solution.io import METRICS_JSON, read_checked, write_json, write_text

COLUMNS = [("macro_f1_at_0.5", "macro-F1 @0.5"), ("macro_f1_tuned", "macro-F1 tuned"), ("macro_f1_cv", "macro-F1 CV"),
           ("macro_f1_cv_std", "CV std (folds)"), ("micro_f1", "micro-F1"), ("subset_accuracy", "subset acc"),
           ("jaccard", "Jaccard"), ("log_loss", "log loss"), ("train_time_s", "train time")]
# `encoders`: how many times a member that fine-tunes its encoder weighs one that does not
ENCODER_WEIGHT = 2.0


AT_05_NOTE = ("not meaningful for the stacker: its strong L2 penalty pulls every probability toward the "
              "label's base rate, so a cut at 0.5 is arbitrary; only tuned thresholds are used")
DEMO_BANNER = ("> **DEMO**: made from the generated demo data, not the competition's. These scores say nothing "
               "about the leaderboard.")


def _fmt(v, nd=4) -> str:
    return "" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))


def duration(seconds) -> str:
    if seconds is None:
        return "n/a"
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.1f} min"


def md_table(header: list[str], rows: list[list], align: str | None = None) -> str:
    align = align or "l" + "r" * (len(header) - 1)
    sep = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _stacked(report: dict) -> bool:
    return report["method"]["kind"] == "stacker"


def scores_table_rows(report: dict) -> tuple[list[str], list[list]]:
    """The summary table; a weight column only for a weighted average."""
    weight = [] if _stacked(report) else ["weight"]
    header = ["model", *weight, *[h for _, h in COLUMNS]]
    rows = []
    for r in report["table"]:
        cells = [duration(r[k]) if k == "train_time_s" else r[k] for k, _ in COLUMNS]
        rows.append([r["model"], *([r["weight"]] if weight else []), *cells])
    return header, rows


def console_table(report: dict) -> str:
    header, rows = scores_table_rows(report)
    cells = [header] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    out = []
    for n, r in enumerate(cells):
        out.append("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)))
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


# --- report.md, one function per section ------------------------------------------------------------

def _md_head(report: dict) -> list[str]:
    out = ["# Blend report", ""]
    if report["demo"]:
        out += [DEMO_BANNER, ""]
    out += [f"**Submission made by:** {report['headline'].removeprefix('DEMO DATA: ')}.", "",
            f"Models: {', '.join(report['models'])}; fold average of test probabilities: **{report['fold_average']}**; "
            f"{report['n_train']} train tweets in {report['n_folds']} folds "
            f"(all scores on out-of-fold predictions).", ""]
    if report["left_out"]:
        out += ["Not in this blend: " + ", ".join(f"{d['model']} ({d['reason']})" if d["reason"] else d["model"]
                                                 for d in report["left_out"]) + ".", ""]
    if report.get("plan"):
        out += ["What the time budget chose:", "", "```", *report["plan"], "```", ""]
    return out


def _md_scores(report: dict) -> list[str]:
    mo = report["min_one_label"]
    out = ["## Scores (OOF)", "", md_table(*scores_table_rows(report)), "",
           "- *macro-F1 tuned*: per-label thresholds tuned on all OOF rows (optimistic, in-sample).",
           "- *macro-F1 CV*: thresholds tuned on k−1 folds' OOF, applied to the held-out fold, pooled over folds: "
           "the honest estimate of what the thresholds give on new tweets. *CV std*: its spread over the folds "
           "(per fold below).",
           f"- micro-F1, subset accuracy and Jaccard are at the tuned thresholds"
           f"{', with at-least-one-label' if mo['used'] else ''}; log loss is of the probabilities.",
           "- Every model row uses the blend's threshold procedure (same shrink and center) for comparability.",
           "- *train time*: the sum over folds of `fold<k>/metrics.json` `wall_time_s` (fit, test prediction, "
           "saving); the blend row adds the members."]
    if _stacked(report):
        out.append(f"- *macro-F1 @0.5* of the blend: left out, {report['method']['note_at_0.5']}.")
    return out + [""]


def _md_per_fold(report: dict) -> list[str]:
    k = report["n_folds"]
    rows = [[n, *s["cv_macro_f1_per_fold"], float(np.mean(s["cv_macro_f1_per_fold"])), s["cv_macro_f1_std"]]
            for n, s in ((n, report["scores"][n]) for n in [*report["models"], "blend"])]
    return ["## Macro-F1 per fold", "", md_table(["model", *[f"fold {i}" for i in range(k)], "mean", "std"], rows), "",
            "Each held-out fold scored on its own, with thresholds tuned on the other folds (a label absent from "
            "a fold and never predicted there counts 0, as Kaggle scores it); *macro-F1 CV* above pools the "
            "folds' rows instead, so it differs from the mean.", ""]


def _md_diversity(report: dict) -> list[str]:
    names, corr = report["diversity"]["models"], report["diversity"]["correlation"]
    if len(names) < 2:
        return ["## Diversity", "", "One model: nothing to compare.", ""]
    rows = [[n, *[_fmt(v, 2) for v in row]] for n, row in zip(names, corr)]
    return ["## Diversity", "", md_table(["", *names], rows), "",
            f"{report['diversity']['measure']}. Lower means members that err differently, which is what a "
            f"blend gains from.", ""]


def _md_per_class(report: dict) -> list[str]:
    labels, names, stacked = report["labels"], report["models"], _stacked(report)
    blend_s, sel = report["scores"]["blend"], report["threshold_selection"]
    header = ["label", "support", *[f"{n} (tuned)" for n in names], *([] if stacked else ["blend @0.5"]),
              "blend tuned", "threshold", "unshrunk", "precision", "recall", "train pos. rate",
              "test pos. rate (pred.)"]
    rows = []
    for lab in labels:
        pc, pc05 = blend_s["at_tuned"]["per_class"][lab], blend_s["at_0.5"]["per_class"][lab]
        rows.append([lab, pc["support"], *[report["scores"][n]["at_tuned"]["per_class"][lab]["f1"] for n in names],
                     *([] if stacked else [pc05["f1"]]), pc["f1"], report["thresholds"][lab], sel["unshrunk"][lab],
                     pc["precision"], pc["recall"], report["label_rate_train"][lab],
                     report["label_rate_test_pred"][lab]])
    return ["## Per-class F1 (OOF)", "", md_table(header, rows), "",
            "*train pos. rate*: share of train tweets with the label; *test pos. rate (pred.)*: share of test "
            "tweets the submission gives it. A large gap is worth a look.", ""]


def _md_weights(report: dict) -> list[str]:
    wi, names, weights = report["weights_info"], report["models"], report["weights"]
    out = ["## Method: weighted average", "", f"The submission is made by a {report['method']['description']}.", ""]
    if wi["method"] == "optimize" and "per_fold_weights" in wi:
        k = len(wi["per_fold_weights"])
        out += [md_table(["model", "weight", *[f"fold {i} held out" for i in range(k)]],
                         [[n, weights[n], *[wi["per_fold_weights"][i][j] for i in range(k)]]
                          for j, n in enumerate(names)]), "",
                f"Objective: {wi['objective']}. "
                f"Overfitting check (weights fit on k−1 folds, scored on the held-out fold):", "",
                md_table(["", "log loss", "macro-F1 (tuned on k−1 folds)"],
                         [["optimised, in-sample", wi["in_sample"]["log_loss"], wi["in_sample"]["macro_f1_tuned"]],
                          ["optimised, held-out", wi["held_out"]["log_loss"], wi["held_out"]["macro_f1_tuned"]],
                          ["equal weights, held-out", wi["equal_weights_held_out"]["log_loss"],
                           wi["equal_weights_held_out"]["macro_f1_tuned"]]]), ""]
    else:
        out += [md_table(["model", "weight"], [[n, weights[n]] for n in names]), ""]
        if wi.get("note"):
            out += [wi["note"], ""]
    st = report["stacker"]
    if "cv_macro_f1_stack" in st:
        out += [f"The stacker was tried (--stack {st['mode']}) and not used: CV macro-F1 {st['cv_macro_f1_stack']:.4f} "
                f"against {st['cv_macro_f1_average']:.4f} for this average.", ""]
    return out


def _md_stacker(report: dict) -> list[str]:
    st, m, names, labels = report["stacker"], report["method"], report["models"], report["labels"]
    inputs = [f"{n}:{lab}" for n in names for lab in labels]  # stack.features' column order
    rows = []
    for lab, coef, b in zip(labels, st["coef"], st["intercept"]):
        top = np.argsort(-np.abs(coef), kind="stable")[:3]
        rows.append([lab, b, ", ".join(f"{inputs[i]} {coef[i]:+.2f}" for i in top)])
    why = "forced by --stack on" if st["mode"] == "on" else "chosen by --stack auto for its higher CV macro-F1"
    return ["## Method: stacker", "",
            f"The submission is made by the {m['description']}: for each label, a logistic regression whose inputs "
            f"are the logits of every model's probability for every label. Its OOF comes from fits on k−1 folds; "
            f"the test probabilities from the fit on all OOF rows, applied to the fold-averaged test probabilities.",
            "",
            f"It was {why}: CV macro-F1 {st['cv_macro_f1_stack']:.4f} against {st['cv_macro_f1_average']:.4f} for "
            f"the {m['instead_of']}.", "",
            md_table(["label", "intercept", "largest coefficients (model:label)"], rows, "lrl"), ""]


def _md_thresholds(report: dict) -> list[str]:
    sel, mo = report["threshold_selection"], report["min_one_label"]
    return ["## Thresholds", "",
            f"Chosen: shrink **{sel['shrink']:g}** toward **{sel['center']}** ({sel['center_value']:.4f}); "
            f"cross-validated macro-F1 **{sel['cv_macro_f1']:.4f}** (in-sample {sel['in_sample_macro_f1']:.4f}). "
            "threshold = (1 − shrink) · best-F1 threshold + shrink · center.", "",
            md_table(["shrink", "center", "CV macro-F1", ""],
                     [[f'{g["shrink"]:g}', g["center"], g["cv_macro_f1"],
                       "chosen" if (g["shrink"], g["center"]) == (sel["shrink"], sel["center"]) else ""]
                      for g in sel["grid"]], "llrl"), "",
            "## At least one label per tweet", "",
            f"Mode {mo['mode']}: **{'on' if mo['used'] else 'off'}**. Cross-validated macro-F1 without "
            f"{mo['cv_macro_f1_off']:.4f}, with {mo['cv_macro_f1_on']:.4f}"
            f"{' (auto keeps it only if it helps)' if mo['mode'] == 'auto' else ''}.", ""]


def _md_files(report: dict) -> list[str]:
    files, out = report.get("files", {}), ["## Plots", ""]
    for key, title in (("per_class_f1", "Per-class F1 by model"), ("f1_vs_threshold", "F1 vs threshold per label")):
        if key in files:
            out += [f"![{title}]({Path(files[key]).name})", ""]
    return out + [f"Submission: `{report['submission']}` (sha256 {report['submission_sha256'][:16]}…)", ""]


def markdown(report: dict) -> str:
    method = _md_stacker if _stacked(report) else _md_weights
    sections = (_md_head, _md_scores, _md_per_fold, _md_diversity, _md_per_class, method, _md_thresholds, _md_files)
    return "\n".join(line for section in sections for line in section(report))


# --- plots -----------------------------------------------------------------------------------------


def write(report: dict, out_dir: Path, y: np.ndarray, oof: np.ndarray, plots: bool = True) -> dict:
    """Write the plots, report.md and report.json into out_dir; returns {kind: path}."""
    out_dir = Path(out_dir)
    files = {}
    if plots:
        files["per_class_f1"] = plot_per_class_f1(report, out_dir / "per_class_f1.png")
        files["f1_vs_threshold"] = plot_f1_vs_threshold(report, y, oof, out_dir / "f1_vs_threshold.png")
    files["md"], files["json"] = out_dir / "report.md", out_dir / "report.json"
    report["files"] = {k: str(v) for k, v in files.items()}
    write_text(markdown(report), files["md"])
    write_json(report, files["json"])
    return files


WEIGHTING = {"equal": "equal weights", "optimize": "weights optimised on OOF log loss", "manual": "manual weights",
             "encoders": f"members that fine-tune their encoder x{ENCODER_WEIGHT:g}"}


def describe_method(models: list[str], weights: dict | None, stacker: dict, weighting: str | None = None) -> str:
    """One line naming the method that made the submission."""
    if stacker.get("used"):
        n_labels, n_in = len(stacker["coef"]), len(stacker["coef"][0])
        return (f"stacker (per-label logistic regression, C={stacker['C']:g}, on the logits of {len(models)} "
                f"model{'s' if len(models) > 1 else ''} x {n_labels} labels = {n_in} inputs; "
                f"models: {', '.join(models)})")
    if len(models) == 1:
        return f"single model {models[0]} (nothing to blend)"
    how = WEIGHTING.get(weighting, "weights")
    return f"weighted average of probabilities ({how}: {', '.join(f'{m} {weights[m]:.2f}' for m in models)})"


def _row(y, probs, t, min_one: bool, labels) -> dict:
    """metrics.scores at thresholds t, with the at-least-one-label rule if asked."""
    pred = thresholds.predict(probs, t, min_one)
    s = metrics.scores(y, pred.astype(np.float64), 0.5, labels)
    s["log_loss"] = metrics.log_loss(y, probs)
    for j, lab in enumerate(labels):
        s["per_class"][lab]["threshold"] = float(np.broadcast_to(t, (len(labels),))[j])
    return s


def score_model(y, probs, fold, labels, t, fold_t, min_one: bool) -> dict:
    """Scores at 0.5, at thresholds t, and cross-validated with fold_t[k] cutting fold k."""
    cv_pred = thresholds.cv_predict(probs, fold, fold_t, min_one)
    per_fold = [float(metrics.f1_per_class(y[fold == k], cv_pred[fold == k]).mean()) for k in range(len(fold_t))]
    return {"at_0.5": metrics.scores(y, probs, 0.5, labels), "at_tuned": _row(y, probs, t, min_one, labels),
            "cv_macro_f1": float(metrics.f1_per_class(y, cv_pred).mean()),
            "cv_macro_f1_per_fold": per_fold, "cv_macro_f1_std": float(np.std(per_fold))}


def score_all(y, stack_oof, oof, fold, labels, names, sel) -> dict:
    """{model or "blend": scores}, all with the blend's shrink and center so rows compare like with like."""
    min_one = sel["min_one"]["used"]
    out = {}
    for n, probs in zip(names, stack_oof):
        t = thresholds.tune_guarded(y, probs, sel["shrink"], sel["center"])
        ft = thresholds.cv_thresholds(y, probs, fold, sel["shrink"], sel["center"])
        out[n] = score_model(y, probs, fold, labels, t, ft, min_one)
    out["blend"] = score_model(y, oof, fold, labels, sel["thresholds"], sel["fold_thresholds"], min_one)
    return out


def table_rows(scores: dict, names: list[str], weights: dict | None, train_time: dict, stacked: bool) -> list[dict]:
    """One summary row per model and the blend."""
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


def diversity(stack_oof: np.ndarray) -> list[list[float | None]]:
    """(M, M): the members' OOF correlation, averaged over labels (None where undefined)."""
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
    """Sum of the folds' wall_time_s; None when a fold's metrics.json is missing or not of its shape."""
    try:
        return sum(read_checked(Path(output) / name / f"fold{k}" / "metrics.json", METRICS_JSON)["wall_time_s"]
                   for k in range(n_splits))
    except (UserError, OSError):
        return None


def method_info(names, w, weight_info, stack_info) -> dict:
    """report["method"]: what made the submission."""
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
    """The method and its OOF macro-F1, in one line."""
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
    """report.json; submission and submission_sha256 are filled in when it is written."""
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


def print_summary(report: dict, files: dict) -> None:
    sel, mo = report["threshold_selection"], report["min_one_label"]
    print(console_table(report))
    print(f"thresholds: shrink {sel['shrink']:g} toward {sel['center']} ({sel['center_value']:.3f}); "
          f"at-least-one-label {'on' if mo['used'] else 'off'} ({mo['mode']}); CV macro-F1 {sel['cv_macro_f1']:.4f}")
    print(report["headline"])
    print(f"report: {files['md']}\nsubmission: {files['submission']}")
