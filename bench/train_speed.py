"""minilm-lora training speed: the kit's loop against transformers' Trainer, in one run on one machine.

Sides, each in its own subprocess (so peak RSS is its own), on the same rows, model, LoRA, mean pooling,
batch size and max length:
  trainer          Trainer with its defaults (fp32, random batches)
  trainer-fair     Trainer with the kit's precision (bf16 autocast where the CPU has bf16 instructions, else
                   fp32) and length grouping (train_sampling_strategy="group_by_length"): the strongest plain
                   Trainer on this machine, and the headline comparison
  kit              the kit's loop (solution/models/loop.py) as `train minilm-lora` runs it
  kit@REF          the kit's loop as of a git commit (--baseline-ref, e.g. the hand-written loop before the
                   accelerate rewrite), checked out into a temporary folder
Prints samples/s, peak RSS and the ratios, and --repeat runs every side that many times (interleaved).

    .venv/bin/python bench/train_speed.py --input ../shared/data/semeval2018-ec [--rows 2048] [--epochs 1] \
        [--baseline-ref 6f29fb2] [--repeat 2]
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_rows(input_dir: str, rows: int):
    from solution import data as data_mod

    d = data_mod.load(input_dir)
    return d.train["Tweet"].tolist()[:rows], d.y[:rows], d.labels


def kit_config(args):
    from solution import config

    return config.get("minilm-lora", [f"epochs={args.epochs}", f"batch_size={args.batch_size}",
                                      f"max_length={args.max_length}", f"precision={args.precision}"])


def run_kit(args) -> dict:
    from solution.models.hf import HFModel

    texts, y, labels = load_rows(args.input, args.rows)
    m = HFModel(kit_config(args), labels)
    res = m.fit(texts, y, texts[:64], y[:64])  # validation on 64 rows only: this measures training
    return {"samples_per_s": res.extra["samples_per_s"], "train_time_s": res.extra["train_time_s"],
            "how": f"autocast {res.extra['autocast']}"}


def run_trainer(args, fair: bool) -> dict:
    import numpy as np
    import torch
    from datasets import Dataset
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import (
        AutoConfig,
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from solution.models.hf import HFModel
    from solution.models.pooling import apply_pooling
    from solution.models.weights import resolve
    from solution.text import prepare

    texts, y, labels = load_rows(args.input, args.rows)
    cfg = kit_config(args)
    torch.set_num_threads(torch.get_num_threads())
    path = resolve(cfg.backbone)
    tok = AutoTokenizer.from_pretrained(path)
    mc = AutoConfig.from_pretrained(path)
    mc.num_labels, mc.problem_type = len(labels), "multi_label_classification"
    model = AutoModelForSequenceClassification.from_pretrained(path, config=mc, dtype=torch.float32)
    apply_pooling(model, cfg.pooling)  # the same head input as the kit's (mean of the token states)
    model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                                             lora_dropout=cfg.lora_dropout,
                                             target_modules=["query", "key", "value", "dense"]))
    enc = tok(prepare(texts, cfg.preprocess), truncation=True, max_length=args.max_length)
    ds = Dataset.from_dict({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                            "labels": y.astype(np.float32).tolist()})
    # the fair Trainer: the kit's own precision choice (bf16 only where the CPU has bf16 instructions: emulated
    # bf16 is many times slower) and length grouping
    bf16 = fair and HFModel(cfg, labels).precision == "bf16"
    extra = dict(bf16=bf16, train_sampling_strategy="group_by_length") if fair else {}
    targs = TrainingArguments(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=args.batch_size,
                              num_train_epochs=args.epochs, learning_rate=cfg.lr, report_to="none",
                              save_strategy="no", logging_strategy="no", use_cpu=True, disable_tqdm=True, seed=42,
                              **extra)
    trainer = Trainer(model=model, args=targs, train_dataset=ds, data_collator=DataCollatorWithPadding(tok))
    t0 = time.time()
    trainer.train()
    dt = time.time() - t0
    return {"samples_per_s": len(texts) * args.epochs / dt, "train_time_s": dt,
            "how": f"{'bf16' if bf16 else 'fp32'}, group_by_length" if fair else "defaults (fp32, random batches)"}


def child(args) -> None:
    sys.path.insert(0, args.kit_root or str(ROOT))
    if args.side.startswith("kit"):
        out = run_kit(args)
    else:
        out = run_trainer(args, fair=args.side == "trainer-fair")
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(out))


def checkout(ref: str) -> Path:
    """The package as of `ref`, in a temporary folder (git archive: no worktree to clean up)."""
    dest = Path(tempfile.mkdtemp(prefix="kit-baseline-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "solution"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def run_side(side: str, kit_root: Path | None, argv: list[str]) -> dict:
    cmd = [sys.executable, __file__, "--side", side, *argv]
    if kit_root:
        cmd += ["--kit-root", str(kit_root)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not line:
        sys.exit(f"{side} failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[0][7:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True)
    p.add_argument("--rows", type=int, default=2048)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--precision", default="auto")
    p.add_argument("--baseline-ref", default=None, help="also time the kit's loop as of this git commit")
    p.add_argument("--repeat", type=int, default=1, help="run every side this many times, interleaved")
    p.add_argument("--sides", default="trainer,trainer-fair,kit",
                   help="which sides (kit@REF comes with --baseline-ref)")
    p.add_argument("--side", help=argparse.SUPPRESS)
    p.add_argument("--kit-root", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.side:
        return child(args)
    argv = [a for a in sys.argv[1:]]
    sides = {s: (ROOT if s == "kit" else None) for s in args.sides.split(",")}
    if args.baseline_ref:
        sides[f"kit@{args.baseline_ref}"] = checkout(args.baseline_ref)
    results = {s: [] for s in sides}
    for _ in range(args.repeat):
        for side, root in sides.items():
            r = run_side(side if not side.startswith("kit@") else "kit", root, argv)
            results[side].append(r)
            print(f"{side:>16}: {r['samples_per_s']:.1f} samples/s, peak RSS {r['peak_rss_mb']:.0f} MB, "
                  f"{r['train_time_s']:.0f}s ({r['how']})", flush=True)
    speed = {s: statistics.median(r["samples_per_s"] for r in rs) for s, rs in results.items()}
    print(f"\nmedian samples/s over {args.repeat} run(s): " + ", ".join(f"{s} {v:.1f}" for s, v in speed.items()))
    if "trainer-fair" in speed:
        print(f"kit / Trainer with the kit's precision + length grouping (the fair ratio): "
              f"{speed['kit'] / speed['trainer-fair']:.2f}x")
    if "trainer" in speed:
        print(f"kit / Trainer with defaults: {speed['kit'] / speed['trainer']:.2f}x")
    if args.baseline_ref:
        print(f"kit / kit@{args.baseline_ref}: {speed['kit'] / speed[f'kit@{args.baseline_ref}']:.2f}x")
    print(f"({args.rows} rows, batch {args.batch_size}, max_length {args.max_length}, {args.epochs} epoch)")


if __name__ == "__main__":
    main()
