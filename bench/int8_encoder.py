"""Would int8 dynamic quantisation buy an embedding member's encoder pass on a CPU? Speed and drift.

Encodes the first N train tweets through the member's own EmbedModel.embed (solution/models/embed.py: its
preprocessing, length-sorted batches and mean pooling) with the frozen encoder in fp32 and again after torch's
dynamic int8 quantisation of its Linear layers, and prints the speed-up and the cosine between the two
normalised embeddings of each tweet (1.0 = the same member; well below it, a different member that would need
its own ladder measurement).

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


def timed_embed(m, texts):
    from solution.models import embed

    embed._MEMO.clear()  # the memo would answer the second pass from the first
    t0 = time.perf_counter()
    return m.embed(texts), time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("models", nargs="+")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    import torch

    from solution import config
    from solution.data import load
    from solution.models.embed import EmbedModel

    data = load(args.input)
    texts = data.train["Tweet"].astype(str).tolist()[:args.n]
    for name in args.models:
        m = EmbedModel(config.get(name, [f"num_threads={args.threads}"]), data.labels)
        m._load_encoder()
        fp32, t_fp32 = timed_embed(m, texts)
        tok, model, _ = m._encoder
        m._encoder = (tok, torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8), torch)
        int8, t_int8 = timed_embed(m, texts)
        cos = (fp32 * int8).sum(-1)
        print(f"{name}: {len(texts)} tweets, fp32 {t_fp32:.1f} s, int8 {t_int8:.1f} s (x{t_fp32 / t_int8:.2f}); "
              f"cosine int8 vs fp32 mean {cos.mean():.3f}, min {cos.min():.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
