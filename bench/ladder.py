"""What one more member buys: train candidates 5-fold, blend them with the base members, print one row each.

    .venv/bin/python bench/ladder.py --input ../shared/data/semeval2018-ec --work /work/runs/ladder \
        --members /work/runs/ladder/base,/work/runs/oof11 tfidf-lex-lr
    .venv/bin/python bench/ladder.py ... --tag lora-labels minilm-lora --set 'prompt=anger anticipation ...: '

Each candidate trains through the real `train` command into WORK/TAG/ (resumes: finished folds are kept),
with WORK/folds/ made by `folds` (5 folds, seed 42: the same folds as every run on this input). The base
members (default: the cpu profile's four) are found, already trained on those folds, in the --members
folders. Blends run through the real `blend` command, each in its own folder of links to the member folders
(WORK/blends/...), so no trained folder is written to; `--replace tfidf-lr` puts the candidates in a
base member's place instead of next to it. The row: the candidate alone (its OOF macro-F1 with
thresholds tuned on OOF / cross-validated, both with the blend's threshold procedure), the blend's CV
macro-F1 without and with it, the rare labels' F1 in the blend with it (tuned thresholds) and their change,
and the candidate's training minutes (the sum of its folds' wall_time_s: one worker on this machine).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE = ["tfidf-lr", "minilm-emb-lr", "minilm-lora", "minilm-ft"]
RARE = ["trust", "surprise", "anticipation", "pessimism"]


def solution(*argv: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "solution", *argv], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        sys.exit(f"`solution {argv[0]}` failed: {lines[-1] if lines else proc.returncode}")


def find_member(name: str, where: list[Path]) -> Path:
    for d in where:
        if (d / name / "oof.csv").exists():
            return d / name
    sys.exit(f"member {name} has no oof.csv in any of {', '.join(map(str, where))}")


def blend(args, members: dict[str, Path], stack: str) -> dict:
    """The blend report of these members (a folder of links per member set and stacking mode)."""
    key = hashlib.sha1(json.dumps([sorted(map(str, members.values())), stack]).encode()).hexdigest()[:10]
    out = args.work / "blends" / f"{'+'.join(members)[:80]}-{stack}-{key}"
    out.mkdir(parents=True, exist_ok=True)
    for name, path in members.items():
        link = out / name
        if not link.exists():
            link.symlink_to(path.resolve(), target_is_directory=True)
    report = out / "blend" / "report.json"
    if not report.exists() or args.reblend:
        solution("blend", *members, "--stack", stack, "--no-plots", "--input", str(args.input),
                 "--folds-dir", str(args.work / "folds"), "--output", str(out))
    return json.loads(report.read_text())


def row(args, tag: str, names: list[str], where: list[Path]) -> dict:
    cands = {n: args.work / tag / n for n in names}
    base = {n: find_member(n, where) for n in args.base}
    alone = blend(args, cands, "off")
    kept = {n: p for n, p in base.items() if n not in args.replace}
    without, with_ = blend(args, base, args.stack), blend(args, {**kept, **cands}, args.stack)
    per_class = lambda r: {lab: r["scores"]["blend"]["at_tuned"]["per_class"][lab]["f1"] for lab in RARE}  # noqa: E731
    rare, rare0 = per_class(with_), per_class(without)
    minutes = sum(alone["train_time_s"][n] or 0 for n in names) / 60
    return {"tag": tag, "candidates": names, "sets": args.set, "replaces": args.replace,
            "alone_tuned": alone["scores"]["blend"]["at_tuned"]["macro_f1"],
            "alone_cv": alone["threshold_selection"]["cv_macro_f1"],
            "alone_rare": per_class(alone),
            "blend_cv_without": without["threshold_selection"]["cv_macro_f1"],
            "blend_cv_with": with_["threshold_selection"]["cv_macro_f1"],
            "blend_tuned_without": without["scores"]["blend"]["at_tuned"]["macro_f1"],
            "blend_tuned_with": with_["scores"]["blend"]["at_tuned"]["macro_f1"],
            "method_with": with_["method"]["kind"], "method_without": without["method"]["kind"],
            "rare_with": rare, "rare_without": rare0, "train_minutes": minutes}


def print_row(r: dict) -> None:
    gain = r["blend_cv_with"] - r["blend_cv_without"]
    rare = " ".join(f"{lab[:5]} {r['rare_with'][lab]:.3f} ({r['rare_with'][lab] - r['rare_without'][lab]:+.3f})"
                    for lab in RARE)
    swap = f" for {'+'.join(r['replaces'])}" if r["replaces"] else ""
    print(f"{'+'.join(r['candidates'])}{swap}: alone {r['alone_tuned']:.4f} tuned / {r['alone_cv']:.4f} CV | blend CV "
          f"{r['blend_cv_without']:.4f} -> {r['blend_cv_with']:.4f} ({gain:+.4f}; {r['method_with']}) | {rare} | "
          f"{r['train_minutes']:.1f} min", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", type=Path, required=True)
    p.add_argument("--work", type=Path, default=Path("/tmp/ladder"))
    p.add_argument("--members", default="", help="comma-separated folders holding the trained base members")
    p.add_argument("--base", default=",".join(BASE), help=f"base members (default: {','.join(BASE)})")
    p.add_argument("--replace", default="", help="comma-separated base members the candidates replace")
    p.add_argument("--tag", default=None, help="folder name under --work (default: the candidates' names)")
    p.add_argument("--set", action="append", default=[], help="passed to `train` (key=value or model.key=value)")
    p.add_argument("--stack", choices=["auto", "on", "off"], default="auto", help="the blends' --stack")
    p.add_argument("--no-train", action="store_true", help="only blend candidates already under --work/TAG")
    p.add_argument("--reblend", action="store_true", help="blend again even where a report exists")
    p.add_argument("candidates", nargs="+")
    args = p.parse_args()
    args.input, args.work = args.input.resolve(), args.work.resolve()
    args.base = [b for b in args.base.split(",") if b]
    args.replace = [b for b in args.replace.split(",") if b]
    tag = args.tag or "+".join(args.candidates)
    common = ["--input", str(args.input), "--folds-dir", str(args.work / "folds")]
    solution("folds", *common)
    if not args.no_train:
        sets = [x for s in args.set for x in ("--set", s)]
        solution("train", *args.candidates, *common, "--output", str(args.work / tag), *sets)
    where = [Path(m).resolve() for m in args.members.split(",") if m] + [args.work / tag]
    r = row(args, tag, args.candidates, where)
    suffix = f"-replacing-{'+'.join(args.replace)}" if args.replace else ""
    (args.work / tag / f"ladder-{args.stack}{suffix}.json").write_text(json.dumps(r, indent=2))
    print_row(r)


if __name__ == "__main__":
    main()
