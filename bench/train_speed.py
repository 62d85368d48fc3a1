"""minilm-lora training speed and memory: the kit's loop against a plain transformers Trainer.

Same model (all-MiniLM-L6-v2 + the same LoRA), same rows, max length and batch size; each side runs in
its own subprocess so peak RSS is its own. Prints samples/s, peak RSS and the ratio.

    .venv/bin/python bench/train_speed.py --input ../shared/data/semeval2018-ec [--rows 2048] [--epochs 1]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def load_rows(input_dir: str, rows: int):
    from solution import data as data_mod

    d = data_mod.load(input_dir)
    return d.train["Tweet"].tolist()[:rows], d.y[:rows], d.labels


def run_kit(args) -> dict:

    from solution import config
    from solution.models.hf import HFModel

    texts, y, labels = load_rows(args.input, args.rows)
    cfg = config.get("minilm-lora", [f"epochs={args.epochs}", f"batch_size={args.batch_size}",
                                     f"max_length={args.max_length}", f"precision={args.precision}"])
    m = HFModel(cfg, labels)
    # validation on 64 rows only: this measures training
    res = m.fit(texts, y, texts[:64], y[:64])
    return {"samples_per_s": res.extra["samples_per_s"], "train_time_s": res.extra["train_time_s"],
            "autocast": res.extra["autocast"]}


def run_trainer(args) -> dict:
    import numpy as np
    from datasets import Dataset
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import (AutoConfig, AutoModelForSequenceClassification, AutoTokenizer,
                              DataCollatorWithPadding, Trainer, TrainingArguments)

    from solution import config
    from solution.models.weights import resolve
    from solution.text import prepare

    texts, y, labels = load_rows(args.input, args.rows)
    cfg = config.get("minilm-lora")
    path = resolve(cfg.backbone)
    tok = AutoTokenizer.from_pretrained(path)
    mc = AutoConfig.from_pretrained(path)
    mc.num_labels, mc.problem_type = len(labels), "multi_label_classification"
    model = AutoModelForSequenceClassification.from_pretrained(path, config=mc)
    model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                                             lora_dropout=cfg.lora_dropout, target_modules=["query", "key", "value", "dense"]))
    enc = tok(prepare(texts, cfg.preprocess), truncation=True, max_length=args.max_length)
    ds = Dataset.from_dict({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                            "labels": y.astype(np.float32).tolist()})
    targs = TrainingArguments(output_dir="/tmp/bench-trainer", per_device_train_batch_size=args.batch_size,
                              num_train_epochs=args.epochs, learning_rate=cfg.lr, report_to="none", save_strategy="no",
                              logging_strategy="no", use_cpu=True, disable_tqdm=True, seed=42)
    trainer = Trainer(model=model, args=targs, train_dataset=ds, data_collator=DataCollatorWithPadding(tok))
    t0 = time.time()
    trainer.train()
    dt = time.time() - t0
    return {"samples_per_s": len(texts) * args.epochs / dt, "train_time_s": dt, "autocast": "fp32 (Trainer default)"}


def child(args) -> None:
    out = run_kit(args) if args.side == "kit" else run_trainer(args)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(out))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True)
    p.add_argument("--rows", type=int, default=2048)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--precision", default="auto")
    p.add_argument("--side", choices=["kit", "trainer"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.side:
        return child(args)
    results = {}
    for side in ("trainer", "kit"):
        cmd = [sys.executable, __file__, "--side", side, *sys.argv[1:]]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode != 0 or not line:
            sys.exit(f"{side} failed:\n{proc.stderr[-3000:]}")
        results[side] = json.loads(line[0][7:])
        r = results[side]
        print(f"{side:>8}: {r['samples_per_s']:.1f} samples/s, peak RSS {r['peak_rss_mb']:.0f} MB, "
              f"{r['train_time_s']:.0f}s ({r['autocast']})", flush=True)
    k, t = results["kit"], results["trainer"]
    print(f"ratio kit/Trainer: {k['samples_per_s'] / t['samples_per_s']:.2f}x samples/s, "
          f"{k['peak_rss_mb'] / t['peak_rss_mb']:.2f}x peak RSS "
          f"({args.rows} rows, batch {args.batch_size}, max_length {args.max_length}, {args.epochs} epoch)")


if __name__ == "__main__":
    main()
