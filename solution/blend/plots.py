"""The blend report's plots: per-class F1 of each member and the blend, F1 against the threshold."""
from __future__ import annotations

import colorsys
import hashlib
import math
from pathlib import Path

import numpy as np

from solution.blend import thresholds as thresholds_mod
from solution.io import atomic_path


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

