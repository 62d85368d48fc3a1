"""The blend report: output/blend/report.{md,json}, per_class_f1.png and f1_vs_threshold.png.

Tables are built from the report dict that solution.blend assembles; the plots use matplotlib's Agg
backend (no display needed). Every file is written atomically.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from solution import thresholds as thresholds_mod
from solution.io import atomic_path, write_json, write_text

COLUMNS = [("macro_f1_at_0.5", "macro-F1 @0.5"), ("macro_f1_tuned", "macro-F1 tuned"), ("macro_f1_cv", "macro-F1 CV"),
           ("micro_f1", "micro-F1"), ("subset_accuracy", "subset acc"), ("jaccard", "Jaccard"), ("log_loss", "log loss")]


def _fmt(v, nd=4) -> str:
    return "" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))


def md_table(header: list[str], rows: list[list], align: str | None = None) -> str:
    align = align or "l" + "r" * (len(header) - 1)
    sep = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def scores_table_rows(report: dict) -> tuple[list[str], list[list]]:
    header = ["model", "weight", *[h for _, h in COLUMNS]]
    rows = [[r["model"], "" if r["model"] == "blend" else float(r["weight"]), *[r[k] for k, _ in COLUMNS]]
            for r in report["table"]]
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


def markdown(report: dict) -> str:
    labels, names = report["labels"], report["models"]
    sel, mo, wi = report["threshold_selection"], report["min_one_label"], report["weights_info"]
    blend_s = report["scores"]["blend"]
    out = ["# Blend report", "",
           f"Models: {', '.join(names)}; fold average of test probabilities: **{report['fold_average']}**; "
           f"weights: **{wi['method']}**; {report['n_train']} train tweets in {report['n_folds']} folds "
           f"(all scores on out-of-fold predictions).", "",
           "## Scores (OOF)", "", md_table(*scores_table_rows(report)), "",
           "- *macro-F1 tuned*: per-label thresholds tuned on all OOF rows (optimistic, in-sample).",
           "- *macro-F1 CV*: thresholds tuned on k−1 folds' OOF, applied to the held-out fold, pooled over folds: "
           "the honest estimate of what the thresholds give on new tweets.",
           f"- micro-F1, subset accuracy and Jaccard are at the tuned thresholds"
           f"{', with at-least-one-label' if mo['used'] else ''}; log loss is of the probabilities.",
           "- Every model row uses the blend's threshold procedure (same shrink and center) for comparability.", ""]

    out += ["## Per-class F1 (OOF)", ""]
    header = ["label", "support", *[f"{n} (tuned)" for n in names], "blend @0.5", "blend tuned", "threshold",
              "unshrunk", "precision", "recall", "test pos. rate"]
    rows = []
    for lab in labels:
        pc, pc05 = blend_s["at_tuned"]["per_class"][lab], blend_s["at_0.5"]["per_class"][lab]
        rows.append([lab, pc["support"], *[report["scores"][n]["at_tuned"]["per_class"][lab]["f1"] for n in names],
                     pc05["f1"], pc["f1"], report["thresholds"][lab], sel["unshrunk"][lab], pc["precision"],
                     pc["recall"], report["label_rate_test_pred"][lab]])
    out += [md_table(header, rows), ""]

    out += ["## Weights", ""]
    if wi["method"] == "optimize" and "per_fold_weights" in wi:
        k = len(wi["per_fold_weights"])
        out += [md_table(["model", "weight", *[f"fold {i} held out" for i in range(k)]],
                         [[n, report["weights"][n], *[wi["per_fold_weights"][i][j] for i in range(k)]]
                          for j, n in enumerate(names)]), "",
                f"Objective: {wi['objective']}. Overfitting check (weights fit on k−1 folds, scored on the held-out fold):", "",
                md_table(["", "log loss", "macro-F1 (tuned on k−1 folds)"],
                         [["optimised, in-sample", wi["in_sample"]["log_loss"], wi["in_sample"]["macro_f1_tuned"]],
                          ["optimised, held-out", wi["held_out"]["log_loss"], wi["held_out"]["macro_f1_tuned"]],
                          ["equal weights, held-out", wi["equal_weights_held_out"]["log_loss"],
                           wi["equal_weights_held_out"]["macro_f1_tuned"]]]), ""]
    else:
        out += [md_table(["model", "weight"], [[n, report["weights"][n]] for n in names]), ""]
        if wi.get("note"):
            out += [wi["note"], ""]

    out += ["## Thresholds", "",
            f"Chosen: shrink **{sel['shrink']:g}** toward **{sel['center']}** ({sel['center_value']:.4f}); "
            f"cross-validated macro-F1 **{sel['cv_macro_f1']:.4f}** (in-sample {sel['in_sample_macro_f1']:.4f}). "
            "threshold = (1 − shrink) · best-F1 threshold + shrink · center.", "",
            md_table(["shrink", "center", "CV macro-F1", ""],
                     [[f'{g["shrink"]:g}', g["center"], g["cv_macro_f1"],
                       "chosen" if (g["shrink"], g["center"]) == (sel["shrink"], sel["center"]) else ""]
                      for g in sel["grid"]], "llrl"), ""]
    out += ["## At least one label per tweet", "",
            f"Mode {mo['mode']}: **{'on' if mo['used'] else 'off'}**. Cross-validated macro-F1 without "
            f"{mo['cv_macro_f1_off']:.4f}, with {mo['cv_macro_f1_on']:.4f}"
            f"{' (auto keeps it only if it helps)' if mo['mode'] == 'auto' else ''}.", ""]
    files = report.get("files", {})
    out += ["## Plots", ""]
    for key, title in (("per_class_f1", "Per-class F1 by model"), ("f1_vs_threshold", "F1 vs threshold per label")):
        if key in files:
            out += [f"![{title}]({Path(files[key]).name})", ""]
    out += [f"Submission: `{report['submission']}` (sha256 {report['submission_sha256'][:16]}…)", ""]
    return "\n".join(out)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    plt = _pyplot()
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
        f1 = [report["scores"][n]["at_tuned"]["per_class"][lab]["f1"] for lab in labels]
        ax.bar(x - 0.4 + width * (i + 0.5), f1, width, label=n, edgecolor="black" if n == "blend" else None)
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("OOF F1 at tuned thresholds")
    ax.set_title("Per-class F1 by model")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=min(4, len(series)))
    return _save(fig, path)


def plot_f1_vs_threshold(y: np.ndarray, probs: np.ndarray, labels: list[str], chosen, unshrunk, path: Path) -> Path:
    plt = _pyplot()
    grid = np.linspace(0.0, 1.0, 401)
    ncol = min(4, len(labels))
    nrow = math.ceil(len(labels) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.5 * nrow), sharex=True, sharey=True, squeeze=False)
    for j, lab in enumerate(labels):
        ax = axes[j // ncol][j % ncol]
        f1 = thresholds_mod.f1_curve(y[:, j], probs[:, j], grid)
        ax.plot(grid, f1, lw=1.2)
        t = float(chosen[j])
        f1_t = float(thresholds_mod.f1_curve(y[:, j], probs[:, j], [t])[0])
        ax.axvline(t, color="red", lw=1, label="chosen")
        ax.plot([t], [f1_t], "o", color="red", ms=4)
        ax.axvline(float(unshrunk[j]), color="red", lw=0.8, ls="--", alpha=0.6, label="best (unshrunk)")
        ax.axvline(0.5, color="gray", lw=0.8, ls=":", label="0.5")
        ax.set_title(f"{lab} (n={int(y[:, j].sum())}) t={t:.2f} F1={f1_t:.2f}", fontsize=8)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    for j in range(len(labels), nrow * ncol):
        axes[j // ncol][j % ncol].axis("off")
    axes[0][0].legend(fontsize=6, loc="lower left")
    fig.supxlabel("threshold")
    fig.supylabel("OOF F1 of the blend")
    fig.tight_layout()
    return _save(fig, path)


def write(report: dict, out_dir: Path, y: np.ndarray, oof: np.ndarray, labels: list[str], plots: bool = True) -> dict:
    """Write the plots, report.md and report.json into out_dir; returns {kind: path}."""
    out_dir = Path(out_dir)
    files = {}
    if plots:
        labs = report["labels"]
        files["per_class_f1"] = plot_per_class_f1(report, out_dir / "per_class_f1.png")
        files["f1_vs_threshold"] = plot_f1_vs_threshold(
            y, oof, labels, [report["thresholds"][lab] for lab in labs],
            [report["threshold_selection"]["unshrunk"][lab] for lab in labs], out_dir / "f1_vs_threshold.png")
    files["md"], files["json"] = out_dir / "report.md", out_dir / "report.json"
    report["files"] = {k: str(v) for k, v in files.items()}
    write_text(markdown(report), files["md"])
    write_json(report, files["json"])
    return files
