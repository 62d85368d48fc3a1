"""GPU check: what one fold of the report's models costs on this GPU, measured through the kit's own loop.

    python bench/gpu_check.py [--out results.json] [--max-minutes 7.5]      # on a GPU: under 8 minutes
    python bench/gpu_check.py --size tiny                                   # the same path on a CPU (script check)

For a 7B-shaped model (Mistral-7B: hidden 4096, 32 heads / 8 KV heads, intermediate 14336, vocabulary 32000,
as e5-mistral-7b-instruct and Gecko-7B), a gemma-2b-shaped one (hidden 2048, 8 heads / 1 KV head of 256,
intermediate 16384, vocabulary 256000) and a Qwen1.5-7B-shaped one (hidden 4096, 32 heads / 32 KV heads,
intermediate 11008, vocabulary 151936, as Qwen1.5-7B and gte-Qwen1.5-7B), randomly initialised and saved to
disk like a checkpoint, it trains
`HFModel` (solution/models/hf.py + loop.py, the registry's QLoRA settings: nf4 + double quantisation, LoRA r=16
on every linear layer, gradient checkpointing, micro-batch 8 x 2) on synthetic tweets of 12-56 tokens and
measures, per precision (fp16 with its GradScaler, and bf16):
  - the time to load the base (from_pretrained with 4-bit quantisation + k-bit preparation + adapter),
  - training samples/s (the second epoch, after warm-up), evaluation samples/s,
  - peak reserved GPU memory of the whole run (load included).
The real models have 32 and 18 layers; to stay within minutes it builds each shape at two depths (2 and 6 layers
by default) and extrapolates every figure linearly in the number of layers to the real depth (rows marked
"extrapolated"): per-layer cost = the difference between the two depths. gemma-2b is also run as the registry's
`gemma-2b-lora` trains it (LoRA on a 16-bit base, no quantisation).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHAPES = {
    "mistral-7b": dict(model_type="mistral", layers=32, hidden_size=4096, intermediate_size=14336,
                       num_attention_heads=32, num_key_value_heads=8, vocab_size=32000),
    "gemma-2b": dict(model_type="gemma", layers=18, hidden_size=2048, intermediate_size=16384, num_attention_heads=8,
                     num_key_value_heads=1, head_dim=256, vocab_size=256000),
    # Qwen1.5-7B and gte-Qwen1.5-7B: no grouped KV heads and a 152k vocabulary (k-bit preparation keeps the
    # embedding in fp32: ~2.5 GB that the Mistral shape does not have)
    "qwen1.5-7b": dict(model_type="qwen2", layers=32, hidden_size=4096, intermediate_size=11008,
                       num_attention_heads=32, num_key_value_heads=32, vocab_size=151936),
}
TINY = dict(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2, vocab_size=512)
# (shape, registry entry, mode, overrides): QLoRA for every shape, and gemma as gemma-2b-lora trains it
RUNS = [("mistral-7b", "qwen1.5-7b-qlora", "qlora", []),
        ("gemma-2b", "gemma-2b-lora", "qlora", ["quantize=4bit"]),
        ("gemma-2b", "gemma-2b-lora", "lora-16bit", []),
        ("qwen1.5-7b", "qwen1.5-7b-qlora", "qlora", [])]
LABELS = [f"label{i}" for i in range(11)]


def build_model(directory: Path, shape: str, layers: int, tiny: bool) -> None:
    """A random model of `shape` with `layers` blocks and a word-level tokenizer over its whole vocabulary."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

    spec = {**SHAPES[shape], **(TINY if tiny else {})}
    if tiny and "head_dim" in spec:
        spec["head_dim"] = spec["hidden_size"] // spec["num_attention_heads"]
    kind, vocab = spec.pop("model_type"), spec.pop("vocab_size")
    spec.pop("layers")
    words = {"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3, **{f"w{i}": i for i in range(4, vocab)}}
    tok = Tokenizer(models.WordLevel(words, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 2)])
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
                                     eos_token="</s>")
    conf = AutoConfig.for_model(kind, vocab_size=vocab, num_hidden_layers=layers, pad_token_id=0, bos_token_id=2,
                                eos_token_id=3, max_position_embeddings=512, tie_word_embeddings=False, **spec)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    with torch.device(device):  # initialising on the GPU takes seconds, on a CPU minutes
        model = AutoModelForCausalLM.from_config(conf, dtype=torch.bfloat16)
    model.save_pretrained(str(directory))
    hf_tok.save_pretrained(str(directory))
    del model


def synthetic(n: int, vocab: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    texts = [" ".join(f"w{w}" for w in rng.integers(4, vocab, size=int(rng.integers(12, 57)))) for _ in range(n)]
    y = (rng.random((n, len(LABELS))) < np.linspace(0.05, 0.4, len(LABELS))).astype(np.int8)
    return texts, y


def measure(weights: Path, entry: str, sets: list[str], precision: str, rows: int, vocab: int) -> dict:
    """Load, train 2 epochs, evaluate: the numbers of one (model, precision)."""
    import torch

    from solution import config
    from solution.models.hf import HFModel, release_cached_base

    release_cached_base()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    cfg = config.get(entry, [f"weights={weights}", f"precision={precision}", "epochs=2", *sets])
    texts, y = synthetic(rows, vocab, seed=1)
    m = HFModel(cfg, LABELS)
    t0 = time.time()
    m._build()  # the base, as a fold loads it (the fit below reuses it from the cache)
    load_s = time.time() - t0
    res = m.fit(texts, y, texts[:rows // 2], y[:rows // 2])
    m.predict(texts[:64])  # the first pass at these shapes pays for allocations and kernel choice
    t0 = time.time()
    m.predict(texts)
    eval_s = time.time() - t0
    out = {"load_s": load_s, "train_samples_per_s": rows / res.history[-1]["train_time_s"],
           "eval_samples_per_s": rows / eval_s, "autocast": res.extra["autocast"],
           "micro_batch": res.extra["micro_batch"], "grad_accum": res.extra["grad_accum"],
           "oom_retries": res.extra["oom_retries"], "loss": res.history[-1]["train_loss"]}
    if torch.cuda.is_available():
        out["peak_reserved_gb"] = torch.cuda.max_memory_reserved() / 2**30
    m.model = None
    release_cached_base()
    return out


def extrapolate(a: dict, b: dict, la: int, lb: int, full: int) -> dict:
    """Linear in the layer count: per-sample times, memory and load time each = fixed + per-layer x layers."""
    def lin(x, y):
        return y + (y - x) / (lb - la) * (full - lb)

    out = {"load_s": lin(a["load_s"], b["load_s"]),
           "train_samples_per_s": 1 / lin(1 / a["train_samples_per_s"], 1 / b["train_samples_per_s"]),
           "eval_samples_per_s": 1 / lin(1 / a["eval_samples_per_s"], 1 / b["eval_samples_per_s"])}
    if "peak_reserved_gb" in a:
        out["peak_reserved_gb"] = lin(a["peak_reserved_gb"], b["peak_reserved_gb"])
    return out


def table(results: list[dict], device: str) -> str:
    lines = [f"device: {device}", "",
             "| shape | mode | precision | layers | load s | train samples/s | eval samples/s | peak reserved GB |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        mem = f"{r['peak_reserved_gb']:.1f}" if "peak_reserved_gb" in r else "-"
        lines.append(f"| {r['shape']} | {r['mode']} | {r['precision']} | {r['layers']} | {r['load_s']:.1f} | "
                     f"{r['train_samples_per_s']:.1f} | {r['eval_samples_per_s']:.1f} | {mem} |")
    return "\n".join(lines)


def device_name() -> str:
    import torch

    if not torch.cuda.is_available():
        return "CPU (script check only)"
    cap = torch.cuda.get_device_capability()
    return f"{torch.cuda.get_device_name()} (compute capability {cap[0]}.{cap[1]}), torch {torch.__version__}"


def run_shape(work: Path, run, depths, precisions, args, results, t_start) -> None:
    shape, entry, mode, sets = run
    full = SHAPES[shape]["layers"]
    vocab = TINY["vocab_size"] if args.size == "tiny" else SHAPES[shape]["vocab_size"]
    for prec in precisions:
        measured = {}
        for depth in depths:
            if (time.time() - t_start) / 60 > args.max_minutes:
                print(f"skipped {shape} {mode} {prec} {depth} layers: past --max-minutes {args.max_minutes}",
                      flush=True)
                return
            weights = work / f"{shape}-{depth}"
            if not weights.exists():
                build_model(weights, shape, depth, args.size == "tiny")
            r = measure(weights, entry, [*sets, *args.set], prec, args.rows, vocab)
            r.update(shape=shape, mode=mode, precision=prec, layers=str(depth))
            results.append(r)
            measured[depth] = r
            print(json.dumps(r), flush=True)
        if len(measured) == 2:
            e = extrapolate(measured[depths[0]], measured[depths[1]], depths[0], depths[1], full)
            e.update(shape=shape, mode=mode, precision=prec, layers=f"{full} (extrapolated)")
            results.append(e)


def warm_up(work: Path, size: str) -> None:
    """CUDA context, cuBLAS and bitsandbytes kernels start once, on a tiny model, so no row pays for them."""
    build_model(work / "warm-up", "mistral-7b", 1, tiny=True)
    measure(work / "warm-up", RUNS[0][1], [], "bf16", 32, TINY["vocab_size"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=["real", "tiny"], default="real", help="tiny: small widths, to check on a CPU")
    p.add_argument("--depths", default="2,6", help="the two layer counts measured (default 2,6)")
    p.add_argument("--rows", type=int, default=512, help="synthetic tweets trained per epoch (default 512)")
    p.add_argument("--precisions", default=None, help="default fp16,bf16 on a GPU, bf16,fp32 on a CPU")
    p.add_argument("--runs", default=None, help=f"only these, e.g. mistral-7b:qlora (default: all of "
                   f"{', '.join(f'{r[0]}:{r[2]}' for r in RUNS)})")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config override for every run")
    p.add_argument("--max-minutes", type=float, default=7.0, help="start no measurement after this (default 7)")
    p.add_argument("--work", default=None, help="where the random checkpoints go (default: a temp folder)")
    p.add_argument("--out", default=None, help="also write the results as JSON here")
    args = p.parse_args(argv)
    import torch

    t_start = time.time()
    depths = [int(d) for d in args.depths.split(",")]
    precisions = (args.precisions or ("fp16,bf16" if torch.cuda.is_available() else "bf16,fp32")).split(",")
    work = Path(args.work or tempfile.mkdtemp(prefix="gpu-check-"))
    results = []
    try:
        warm_up(work, args.size)
        wanted = args.runs.split(",") if args.runs else None
        for run in RUNS:
            if wanted and f"{run[0]}:{run[2]}" not in wanted:
                continue
            run_shape(work, run, depths, precisions, args, results, t_start)
    finally:
        text = table(results, device_name())
        print("\n" + text + f"\n\n({time.time() - t_start:.0f} s in all)")
        if args.out:
            Path(args.out).write_text(json.dumps({"device": device_name(), "results": results}, indent=2))
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
