"""Compare config variants of one model on one fold: the quick loop for choosing levers.

    .venv/bin/python bench/fold_sweep.py --input ../shared/data/semeval2018-ec --model minilm-lora \
        --fold 0 "adapter=none,epochs=3" "adapter=none,epochs=4,loss=bce_pos_weight" ...

Each variant (comma-separated key=value settings) trains the fold through the real `train` command into
its own folder under --work and prints: val macro-F1 at 0.5 and with thresholds tuned on the fold (the
latter is optimistic in absolute terms, fine for ranking variants), log loss, samples/s, fold wall time.
Needs folds for the input (`python -m solution folds --input ... --folds-dir` under --work is made).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True)
    p.add_argument("--model", default="minilm-lora")
    p.add_argument("--fold", type=int, default=0)
    p.add_argument("--work", default="/tmp/fold-sweep")
    p.add_argument("variants", nargs="+")
    args = p.parse_args()
    work = Path(args.work)
    py = [sys.executable, "-m", "solution"]
    common = ["--input", str(Path(args.input).resolve()), "--folds-dir", str(work / "folds")]
    subprocess.run([*py, "folds", *common], cwd=ROOT, check=True, capture_output=True)
    rows = []
    for v in args.variants:
        sets = [s for s in v.split(",") if s.strip()]
        out = work / hashlib.sha1(f"{args.model}:{v}".encode()).hexdigest()[:10]
        cmd = [*py, "train", args.model, "--folds", str(args.fold), *common, "--output", str(out)]
        for s in sets:
            cmd += ["--set", s]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{v}: failed: {proc.stderr.strip().splitlines()[-1]}", flush=True)
            continue
        m = json.loads((out / args.model / f"fold{args.fold}" / "metrics.json").read_text())
        hist = " ".join(f"{h['val_macro_f1_tuned']:.3f}" for h in m.get("history", []))
        row = (f"{v or '(defaults)':<60} F1@0.5 {m['at_0.5']['macro_f1']:.4f}  F1@tuned "
               f"{m['at_tuned_thresholds']['macro_f1']:.4f}  logloss {m['at_0.5']['log_loss']:.4f}  "
               f"{m.get('samples_per_s', float('nan')):.0f} samples/s  {m['wall_time_s']:.0f}s  epochs: {hist}")
        rows.append(row)
        print(row, flush=True)


if __name__ == "__main__":
    main()
