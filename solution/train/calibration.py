"""This machine's speed in the kit's own training step, measured before a run plans (budget.DEVICES only guesses).

A CPU times MiniLM + LoRA steps. On a GPU the first model's backbone shape is built with random weights at two
depths, loaded as training loads it and timed on synthetic ids: the difference between the depths is one block's
cost, the rest a sample's fixed cost.
"""
from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from pathlib import Path

from solution import config
from solution.models.weights import resolve
from solution.train import budget

# the registry's decoder shapes, for planning before any weights are at hand
SHAPES = {
    "google/gemma-1.1-2b-it": dict(model_type="gemma", hidden_size=2048, intermediate_size=16384,
                                   num_attention_heads=8, num_key_value_heads=1, head_dim=256),
    "mistral": dict(model_type="mistral", hidden_size=4096, intermediate_size=14336, num_attention_heads=32,
                    num_key_value_heads=8),
    "qwen2": dict(model_type="qwen2", hidden_size=4096, intermediate_size=11008, num_attention_heads=32,
                  num_key_value_heads=32),
}
FAMILY = {"intfloat/e5-mistral-7b-instruct": "mistral", "NeuralNovel/Gecko-7B-v0.1": "mistral",
          "Qwen/Qwen1.5-7B": "qwen2", "Alibaba-NLP/gte-Qwen1.5-7B-instruct": "qwen2"}
SHAPE_KEYS = ("model_type", "hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads",
              "head_dim", "rms_norm_eps")
VOCAB = 1024  # a classifier has no LM head: the vocabulary costs only a lookup
DEPTHS = (1, 3)


def shape(cfg) -> dict | None:
    """The backbone's architecture: its config.json where the weights resolve, else SHAPES; None if unknown."""
    try:

        conf = json.loads((Path(resolve(cfg.backbone, cfg.weights)) / "config.json").read_text())
        return {k: conf[k] for k in SHAPE_KEYS if k in conf}
    except Exception:  # weights not attached yet: the registry's shapes
        return SHAPES.get(FAMILY.get(cfg.backbone, cfg.backbone))


def calibrate(cfg, labels: list[str], tokens: float, steps: int = 6, warmup: int = 2) -> tuple[float, float]:
    """(fixed seconds a training sample, FLOP/s) of this device in `cfg`'s training step (see the module docstring)."""
    spec = shape(cfg)
    if spec is None:
        raise ValueError(f"no architecture known for {cfg.backbone}")
    per_sample = []
    with tempfile.TemporaryDirectory(prefix="solution-calibrate-") as tmp:
        for depth in DEPTHS:
            path = Path(tmp) / str(depth)
            write_random_checkpoint(spec, depth, path)
            per_sample.append(time_steps(dataclasses.replace(cfg, weights=str(path)), labels, int(tokens), steps,
                                         warmup))
    per_block = max((per_sample[1] - per_sample[0]) / (DEPTHS[1] - DEPTHS[0]), 1e-9)
    fixed = max(per_sample[0] - DEPTHS[0] * per_block, 0.0)
    block_params = budget.backbone_params(cfg) / budget.backbone_depth(cfg)
    return fixed, budget.training_passes(cfg, 1) * block_params * tokens / per_block


def write_random_checkpoint(spec: dict, depth: int, path: Path) -> None:
    """A randomly initialised model of this shape and depth with a word-level tokenizer, saved like a checkpoint."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

    words = {"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3, **{f"w{i}": i for i in range(4, VOCAB)}}
    tok = Tokenizer(models.WordLevel(words, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
                            eos_token="</s>").save_pretrained(str(path))
    spec = dict(spec)
    conf = AutoConfig.for_model(spec.pop("model_type"), vocab_size=VOCAB, num_hidden_layers=depth, pad_token_id=0,
                                bos_token_id=2, eos_token_id=3, tie_word_embeddings=False, **spec)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):  # a 7B-wide block initialises far faster on the GPU
        model = AutoModelForCausalLM.from_config(conf, dtype=torch.float16 if device == "cuda" else torch.float32)
    model.save_pretrained(str(path))
    del model


def time_steps(cfg, labels: list[str], tokens: int, steps: int, warmup: int) -> float:
    """Median seconds a sample of forward + backward passes of `cfg` built as training builds it."""
    import torch

    from solution.models.hf import HFModel, release_cached_base  # lazy: torch

    m = HFModel(cfg, labels)
    m._build()
    m.model.train()  # as training runs it: gradient checkpointing recomputes only in training mode
    try:
        ids = torch.randint(4, VOCAB, (cfg.batch_size, max(tokens, 2)), device=m.device)
        mask = torch.ones_like(ids)
        times = []
        for _ in range(steps + warmup):
            if m.device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            with m.autocast():
                out = m.model(input_ids=ids, attention_mask=mask).logits
            out.float().sum().backward()
            if m.device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        timed = sorted(times[warmup:])
        return timed[len(timed) // 2] / cfg.batch_size
    finally:
        m.model = None
        release_cached_base()


def calibrate_cpu(steps: int = 8, batch: int = 32, tokens: int = 28, warmup: int = 2) -> float:
    """This CPU's effective FLOP/s in budget.CALIBRATION_MODEL's training step: the median of a few timed steps."""
    import torch

    from solution.models.hf import HFModel, release_cached_base  # lazy: torch

    m = HFModel(config.get(budget.CALIBRATION_MODEL), [f"l{i}" for i in range(11)])
    m._build()
    ids = torch.randint(1000, 20000, (batch, tokens))
    mask = torch.ones_like(ids)
    times = []
    for _ in range(steps + warmup):
        t0 = time.perf_counter()
        with m.autocast():
            out = m.model(input_ids=ids, attention_mask=mask).logits
        out.float().sum().backward()
        times.append(time.perf_counter() - t0)
    m.model = None
    release_cached_base()
    timed = sorted(times[warmup:])
    per_sample = timed[len(timed) // 2] / batch
    return 4 * budget.BACKBONE_PARAMS[m.cfg.backbone] * tokens / per_sample

