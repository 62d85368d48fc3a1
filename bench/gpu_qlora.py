"""One QLoRA fold of a randomly initialised ~1.1B-parameter decoder on a GPU: peak GPU memory and samples/s.

    python bench/gpu_qlora.py --input ../shared/data/semeval2018-ec [--work /tmp/bench-gpu] [--size 1b|tiny]

Builds a TinyLlama-shaped llama (hidden 2048, 22 layers, intermediate 5632, 32 heads / 4 KV heads: 1.1B
params) with a word-level tokenizer fitted on the tweets, saves it, makes folds and trains fold 0 through
the real `train` command as `qwen1.5-7b-qlora` with `--set weights=<the random model>` (4-bit nf4, double
quantisation, LoRA r=16 on all linear layers, gradient checkpointing, the registry's micro-batch and
accumulation). Prints peak GPU memory and training samples/s from the fold's metrics.json.
`--size tiny` runs the same path on CPU with a 2-layer model, to check the script itself.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = {
    "1b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
               num_key_value_heads=4),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2),
}


def build(directory: Path, texts: list[str], size: str) -> None:
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

    special = {"unk_token": "<unk>", "pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>"}
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(vocab_size=32000, special_tokens=list(special.values())))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, **special)
    conf = AutoConfig.for_model("llama", vocab_size=len(hf_tok), pad_token_id=hf_tok.pad_token_id,
                                bos_token_id=hf_tok.bos_token_id, eos_token_id=hf_tok.eos_token_id,
                                max_position_embeddings=512, tie_word_embeddings=False, **SIZES[size])
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(conf).to(torch.bfloat16)
    n = sum(p.numel() for p in model.parameters())
    print(f"random llama: {n / 1e9:.2f}B parameters -> {directory}", flush=True)
    model.save_pretrained(str(directory))
    hf_tok.save_pretrained(str(directory))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True)
    p.add_argument("--work", default="/tmp/bench-gpu-qlora")
    p.add_argument("--size", choices=sorted(SIZES), default="1b")
    p.add_argument("--epochs", type=int, default=1)
    args = p.parse_args()
    from solution import data as data_mod

    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    d = data_mod.load(args.input)
    build(work / "model", d.train["Tweet"].tolist() + d.test["Tweet"].tolist(), args.size)
    py = [sys.executable, "-m", "solution"]
    common = ["--input", str(Path(args.input).resolve()), "--folds-dir", str(work / "folds"), "--output", str(work / "out")]
    subprocess.run([*py, "folds", *common], cwd=ROOT, check=True)
    cmd = [*py, "train", "qwen1.5-7b-qlora", "--folds", "0", *common, "--set", f"weights={work / 'model'}",
           "--set", f"epochs={args.epochs}"]
    if args.size == "tiny":
        cmd += ["--set", "max_train_samples=64"]
    subprocess.run(cmd, cwd=ROOT, check=True)
    m = json.loads((work / "out" / "qwen1.5-7b-qlora" / "fold0" / "metrics.json").read_text())
    print(f"\nQLoRA fold 0 ({args.size}): {m['samples_per_s']:.1f} samples/s, peak GPU memory "
          f"{m.get('peak_gpu_mb', float('nan')):.0f} MB, peak RSS {m['peak_rss_mb']:.0f} MB, device {m['device']}, "
          f"autocast {m['autocast']}, micro-batch {m['micro_batch']} x {m['grad_accum']}, "
          f"OOM retries {m.get('oom_retries', 0)}, wall {m['wall_time_s']:.0f}s")


if __name__ == "__main__":
    main()
