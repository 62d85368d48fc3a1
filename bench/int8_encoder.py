"""Would int8 dynamic quantisation buy an embedding member's encoder pass on a CPU? Speed and drift.

Encodes the first N train tweets (sorted by length, batches of 128, as solution/models/embed.py does) with each
embedding member's frozen encoder in fp32 and again after torch's dynamic int8 quantisation of its Linear layers,
and prints the speed-up and the cosine between the two mean-pooled, normalised embeddings of each tweet (1.0 =
the same member; well below it, a different member that would need its own ladder measurement).

    .venv/bin/python bench/int8_encoder.py --input ../shared/data/semeval2018-ec [--n 1000] [--threads 2] \\
        minilm-emb-lr mpnet-emb-lr
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def encode(tok, model, texts, max_length: int):
    import torch

    out, t0 = [], time.perf_counter()
    with torch.inference_mode():
        for s in range(0, len(texts), 128):
            enc = tok(texts[s:s + 128], truncation=True, max_length=max_length, padding=True, return_tensors="pt")
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            out.append(torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1))
    return torch.cat(out), time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("models", nargs="+")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    import torch
    from transformers import AutoModel, AutoTokenizer

    from solution import config
    from solution.data import load
    from solution.models.weights import resolve
    from solution.text import prepare

    torch.set_num_threads(args.threads)
    raw = load(args.input).train["Tweet"].astype(str).tolist()[:args.n]
    for name in args.models:
        cfg = config.get(name)
        texts = sorted(prepare(raw, cfg.preprocess, cfg.prompt), key=len)
        path = resolve(cfg.backbone, cfg.weights)
        tok, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
        fp32, t_fp32 = encode(tok, model, texts, cfg.max_length)
        q = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        int8, t_int8 = encode(tok, q, texts, cfg.max_length)
        cos = (fp32 * int8).sum(-1)
        print(f"{name}: {len(texts)} tweets, fp32 {t_fp32:.1f} s, int8 {t_int8:.1f} s (x{t_fp32 / t_int8:.2f}); "
              f"cosine int8 vs fp32 mean {cos.mean():.3f}, min {cos.min():.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
