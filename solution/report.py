"""The blend report: output/blend/report.{md,json}, per_class_f1.png and f1_vs_threshold.png.

Tables are built from the report dict that solution.blend assembles; the plots use matplotlib's Agg
backend (no display needed). Every file is written atomically. The report names the method that made
the submission (weighted average or stacker) and gives what CV is judged by: per-fold macro-F1 and its
spread, the members' correlation, training time, and train vs predicted test label rates.
"""
from __future__ import annotations

import colorsys
import hashlib
import math
from pathlib import Path

import numpy as np

from solution import thresholds as thresholds_mod
from solution.io import atomic_path, write_json, write_text

COLUMNS = [("macro_f1_at_0.5", "macro-F1 @0.5"), ("macro_f1_tuned", "macro-F1 tuned"), ("macro_f1_cv", "macro-F1 CV"),
           ("macro_f1_cv_std", "CV std (folds)"), ("micro_f1", "micro-F1"), ("subset_accuracy", "subset acc"),
           ("jaccard", "Jaccard"), ("log_loss", "log loss"), ("train_time_s", "train time")]
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
    """The summary table; a weight column only for a weighted average (the stacker has no model weights)."""
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
            f"{report['n_train']} train tweets in {report['n_folds']} folds (all scores on out-of-fold predictions).", ""]
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
              "blend tuned", "threshold", "unshrunk", "precision", "recall", "train pos. rate", "test pos. rate (pred.)"]
    rows = []
    for lab in labels:
        pc, pc05 = blend_s["at_tuned"]["per_class"][lab], blend_s["at_0.5"]["per_class"][lab]
        rows.append([lab, pc["support"], *[report["scores"][n]["at_tuned"]["per_class"][lab]["f1"] for n in names],
                     *([] if stacked else [pc05["f1"]]), pc["f1"], report["thresholds"][lab], sel["unshrunk"][lab],
                     pc["precision"], pc["recall"], report["label_rate_train"][lab], report["label_rate_test_pred"][lab]])
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
                f"Objective: {wi['objective']}. Overfitting check (weights fit on k−1 folds, scored on the held-out fold):", "",
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
    inputs = [f"{n}:{lab}" for n in names for lab in labels]  # solution.stack.features' column order
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

def model_colour(name: str) -> str:
    """A colour fixed by the model's name (a hash, not its position), so a model looks the same in every run."""
    if name == "blend":
        return "#303030"
    h = int(hashlib.sha256(name.encode("utf-8")).hexdigest()[:8], 16)
    r, g, b = colorsys.hls_to_rgb((h % 997) / 997, 0.42 + 0.08 * (h // 997 % 3), 0.7)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _title(report: dict, what: str) -> str:
    b = report["scores"]["blend"]
    return (f"{'DEMO DATA: ' if report['demo'] else ''}{what} (blend: {report['method']['kind']}, "
            f"macro-F1 {b['at_tuned']['macro_f1']:.4f} tuned, {b['cv_macro_f1']:.4f} CV)")


def _save(fig, path: Path, demo: bool) -> Path:
    plt = _pyplot()
    if demo:
        fig.text(0.5, 0.5, "DEMO DATA", fontsize=48, color="red", alpha=0.15, rotation=20, ha="center", va="center")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def plot_per_class_f1(report: dict, path: Path) -> Path:
    plt = _pyplot()
    labels, series = report["labels"], [*report["models"], "blend"]
    x = np.arange(len(labels))
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(8, 0.9 * len(labels) * max(1, len(series) / 2)), 4.5))
    for i, n in enumerate(series):
        s = report["scores"][n]["at_tuned"]
        f1 = [s["per_class"][lab]["f1"] for lab in labels]
        bars = ax.bar(x - 0.4 + width * (i + 0.5), f1, width, label=f"{n} ({s['macro_f1']:.3f})",
                      color=model_colour(n), edgecolor="black" if n == "blend" else None)
        ax.bar_label(bars, fmt="%.2f", fontsize=6, rotation=90, padding=2)  # a 0.00 bar still shows its value
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=30, ha="right")
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("OOF F1 at tuned thresholds")
    ax.set_title(_title(report, "Per-class F1 by model"), fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, title="model (macro-F1 tuned)", title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return _save(fig, path, report["demo"])


def plot_f1_vs_threshold(report: dict, y: np.ndarray, probs: np.ndarray, path: Path) -> Path:
    plt = _pyplot()
    labels, sel = report["labels"], report["threshold_selection"]
    grid = np.linspace(0.0, 1.0, 401)
    ncol = min(4, len(labels))
    nrow = math.ceil(len(labels) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.5 * nrow), sharex=True, sharey=True, squeeze=False)
    for j, lab in enumerate(labels):
        ax = axes[j // ncol][j % ncol]
        ax.plot(grid, thresholds_mod.f1_curve(y[:, j], probs[:, j], grid), lw=1.2, color=model_colour("blend"))
        t = float(report["thresholds"][lab])
        f1_t = float(thresholds_mod.f1_curve(y[:, j], probs[:, j], [t])[0])
        ax.axvline(t, color="red", lw=1, label="chosen")
        ax.plot([t], [f1_t], "o", color="red", ms=4)
        ax.axvline(float(sel["unshrunk"][lab]), color="red", lw=0.8, ls="--", alpha=0.6, label="best (unshrunk)")
        if report["method"]["at_0.5_meaningful"]:
            ax.axvline(0.5, color="gray", lw=0.8, ls=":", label="0.5")
        ax.set_title(f"{lab} (n={int(y[:, j].sum())}) t={t:.2f} F1={f1_t:.2f}", fontsize=8)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    for j in range(len(labels), nrow * ncol):
        axes[j // ncol][j % ncol].axis("off")
    axes[0][0].legend(fontsize=6, loc="lower left")
    fig.supxlabel("threshold")
    fig.supylabel("OOF F1 of the blend")
    fig.suptitle(_title(report, "F1 vs threshold per label"), fontsize=10)
    fig.tight_layout()
    return _save(fig, path, report["demo"])


def write(report: dict, out_dir: Path, y: np.ndarray, oof: np.ndarray, plots: bool = True) -> dict:
    """Write the plots, report.md and report.json into out_dir; returns {kind: path}. y, oof: the labels and
    the submission method's OOF probabilities, for the F1-vs-threshold curves."""
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
