"""Tiny random transformers models built from configs (no download), for tests of solution/models/hf.py.

`build_tiny_model(arch, directory, texts)` writes a 2-layer, 64-wide model of architecture `arch`
(llama, mistral, gemma, qwen2, bert, mpnet) with a tokenizer trained on `texts` into `directory`, as a plain base
model (AutoModelForCausalLM for decoders, AutoModel for the encoders bert and mpnet): loading it with
AutoModelForSequenceClassification.from_pretrained gives a freshly initialised classification head,
as with real hub weights. `tiny_models` is a session-scoped fixture: {arch: folder} for every arch,
built once from the demo set's tweets. Import it (and `tiny_data`) in a test module to use it.
"""
from __future__ import annotations

from pathlib import Path

import pytest

ARCHS = ("llama", "mistral", "gemma", "qwen2", "bert", "mpnet")
ENCODERS = ("bert", "mpnet")
N_TRAIN, N_TEST, N_SPLITS = 40, 10, 2  # the tiny demo set and its folds

# shared by every architecture: small enough that a training step takes milliseconds; 64 wide because
# bitsandbytes quantises in blocks of 64, so 4-bit layers behave (and repack on CPU) as in a real model
SIZE = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            max_position_embeddings=128)


def special_tokens(arch: str) -> dict:
    if arch == "qwen2":  # as Qwen1.5: one token ends text and pads, no bos
        return {"unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "eos_token": "<|endoftext|>"}
    if arch == "bert":
        return {"unk_token": "[UNK]", "pad_token": "[PAD]", "cls_token": "[CLS]", "sep_token": "[SEP]",
                "mask_token": "[MASK]"}
    if arch == "mpnet":  # as all-mpnet-base-v2: <s> text </s>, <pad> is id 1
        return {"bos_token": "<s>", "pad_token": "<pad>", "eos_token": "</s>", "unk_token": "[UNK]",
                "cls_token": "<s>", "sep_token": "</s>", "mask_token": "<mask>"}
    return {"unk_token": "<unk>", "pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>"}


def build_tokenizer(arch: str, texts):
    """A tokenizer trained on `texts`, wrapped as a PreTrainedTokenizerFast: byte-level BPE for qwen2 (transformers
    rebuilds a Qwen2Tokenizer from its vocab and merges), a lower-casing word-level one for the others."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    special = special_tokens(arch)
    order = list(dict.fromkeys([special["pad_token"], special["unk_token"], *special.values()]))
    if arch == "qwen2":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.train_from_iterator(list(texts), trainers.BpeTrainer(
            vocab_size=600, special_tokens=order, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
        return PreTrainedTokenizerFast(tokenizer_object=tok, **special)
    tok = Tokenizer(models.WordLevel(unk_token=special["unk_token"]))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(list(texts), trainers.WordLevelTrainer(special_tokens=order, min_frequency=1))
    if arch in ENCODERS:
        cls, sep = special["cls_token"], special["sep_token"]
        tok.post_processor = processors.TemplateProcessing(
            single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} $B {sep}",
            special_tokens=[(cls, tok.token_to_id(cls)), (sep, tok.token_to_id(sep))])
    else:
        bos = special["bos_token"]
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, tok.token_to_id(bos))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, **special)


def model_config(arch: str, tokenizer):
    from transformers import AutoConfig

    ids = dict(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
    if arch == "bert":
        return AutoConfig.for_model("bert", **SIZE, **ids, type_vocab_size=2)
    if arch == "mpnet":
        return AutoConfig.for_model("mpnet", **SIZE, **ids, bos_token_id=tokenizer.bos_token_id,
                                    eos_token_id=tokenizer.eos_token_id)
    extra = dict(num_key_value_heads=2, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                 tie_word_embeddings=False)
    if arch == "gemma":
        extra["head_dim"] = SIZE["hidden_size"] // SIZE["num_attention_heads"]
    return AutoConfig.for_model(arch, **SIZE, **ids, **extra)


def build_tiny_model(arch: str, directory, texts, seed: int = 0) -> Path:
    """Write a tiny random base model + tokenizer of `arch` into `directory` and return it."""
    import torch
    from transformers import AutoModel, AutoModelForCausalLM

    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; known: {ARCHS}")
    directory = Path(directory)
    tok = build_tokenizer(arch, texts)
    conf = model_config(arch, tok)
    torch.manual_seed(seed)
    model = AutoModel.from_config(conf) if arch in ENCODERS else AutoModelForCausalLM.from_config(conf)
    model.save_pretrained(str(directory))
    tok.save_pretrained(str(directory))
    return directory


def tiny_texts(n_train: int = N_TRAIN, n_test: int = N_TEST, seed: int = 0) -> list[str]:
    """The demo set's tweets, after the kit's tweet preprocessing too, so few words are unknown."""
    from solution.demo import make_demo
    from solution.text import prepare

    train, test, _ = make_demo(n_train=n_train, n_test=n_test, seed=seed)
    raw = train["Tweet"].tolist() + test["Tweet"].tolist()
    return raw + list(prepare(raw, "tweet", ""))


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict:
    """{arch: folder of a tiny random model} for llama, mistral, gemma, qwen2, bert and mpnet (built once)."""
    root = tmp_path_factory.mktemp("tiny-models")
    texts = tiny_texts()
    return {arch: build_tiny_model(arch, root / arch, texts) for arch in ARCHS}


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> tuple[Path, Path]:
    """(input dir, folds dir): a 40-row/10-row demo set and its 2 folds, made with the real commands."""
    from solution.cli import main
    from solution.demo import write_demo

    root = tmp_path_factory.mktemp("tiny-data")
    input_dir = write_demo(root / "input", n_train=N_TRAIN, n_test=N_TEST)
    folds_dir = root / "folds"
    assert main(["folds", "--input", str(input_dir), "--folds-dir", str(folds_dir), "--n-splits", str(N_SPLITS)]) == 0
    return input_dir, folds_dir
