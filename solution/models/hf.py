"""A transformers sequence classifier with a PEFT adapter (LoRA, IA3, QLoRA) or full fine-tuning.

An adapter model's frozen base is loaded once per process and reused by every fold (BaseCache).
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch

from solution import hardware, hints, log
from solution.config import IA3_TARGETS, LORA_TARGETS, HFConfig
from solution.errors import UserError
from solution.io import read_json, usual_mode
from solution.models import frozen as frozen_mod
from solution.models import loop
from solution.models import weights as weights_mod
from solution.models.base import HEAD, FitResult, NonFinite
from solution.models.pooling import apply_pooling
from solution.text import prepare

META = "solution_model.json"
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "no": None, "fp32": None}


def pick_device() -> torch.device:
    """The GPU, else the CPU; under `accelerate launch` this process's own device."""
    if hardware.world_size() > 1:
        from accelerate import PartialState

        return PartialState(cpu=not torch.cuda.is_available()).device
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


class HFModel:
    def __init__(self, cfg: HFConfig, labels: list[str]):
        self.cfg, self.labels = cfg, labels
        self.device = pick_device()
        self.set_precision()
        self.model = self.tokenizer = None
        self.frozen = None  # frozen_layers > 0
        self.weights_path = None
        self.fold_name = cfg.name  # for messages
        self.overflow_retry = ""
        hardware.set_threads(cfg.num_threads)

    def set_precision(self) -> None:
        capability = torch.cuda.get_device_capability() if self.device.type == "cuda" else None
        self.precision = hardware.mixed_precision(self.cfg.precision, self.device.type, capability)
        if self.cfg.overflow_safe and self.cfg.quantize == "4bit" and self.precision == "fp16":
            self.precision = "no"  # k-bit preparation already keeps the residual in fp32
        self.dtype = DTYPES[self.precision]  # None: fp32

    def overflow_prone(self) -> bool:
        return self.precision == "fp16" and not self.cfg.overflow_safe

    def make_safe(self, err) -> bool:
        """After a non-finite loss: under fp16, switch once to the overflow-safe form; else raise."""

        if not self.overflow_prone():
            raise NonFinite(f"{err}; {overflow_fix(self)}") from None
        self.cfg = dataclasses.replace(self.cfg, overflow_safe=True)
        self.set_precision()
        self.model, self.overflow_retry = None, f"{err}: retried in the overflow-safe form"
        release_cached_base()
        log.warn(f"{err}: an fp16 overflow, so the fold is trained again with "
                 + ("fp32 matmuls (its 4-bit base keeps the rest in fp32 already)" if self.cfg.quantize == "4bit"
                    else "its embeddings, norms and residual stream in fp32 (matmuls stay fp16)"))
        return True

    # ---- building ---------------------------------------------------------------------------------
    def _build(self, saved: Path | None = None) -> None:
        cfg = self.cfg
        if saved is None and cfg.adapter != "none":
            model, self.tokenizer = BASES.take(self)
            self.model = self._wrap_peft(model, None)
            BASES.wrapped(self.model)
        else:
            model, self.tokenizer = self._load_base(saved)
            self.model = self._wrap_peft(model, saved) if cfg.adapter != "none" else model
        self.frozen = frozen_mod.of(model)
        if not _has_device_map(self.model):
            self.model = self.model.to(self.device)
        for p in self.model.parameters():  # autocast does the fast math
            if p.requires_grad and p.dtype != torch.float32:
                p.data = p.data.float()

    def _load_base(self, saved: Path | None = None):
        """(model with a new classification head, tokenizer)."""
        from transformers import AutoModelForSequenceClassification

        cfg = self.cfg
        path = self.weights_path = weights_mod.resolve(cfg.backbone, cfg.weights)
        tok, mconf = self._tokenizer_and_config(path, saved)
        source = str(saved) if (cfg.adapter == "none" and saved is not None) else path
        try:
            model = AutoModelForSequenceClassification.from_pretrained(source, config=mconf, **self._load_kwargs())
        except (OSError, ValueError) as e:
            raise UserError(weights_mod.not_found_message(cfg.backbone, e)) from None
        apply_pooling(model, cfg.pooling)
        if cfg.overflow_safe and cfg.quantize != "4bit" and self.device.type == "cuda" and self.dtype is not None:
            _matmul_weights_to(model, self.dtype)
        frozen_mod.install(model, cfg.frozen_layers, (source, str(self.device), self.precision))
        if cfg.quantize == "4bit":
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(
                model, use_gradient_checkpointing=cfg.gradient_checkpointing,
                gradient_checkpointing_kwargs={"use_reentrant": False})
            if self.device.type == "cpu":
                _disable_bnb_cpu_repack(model)
        elif cfg.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        return model, tok

    def _tokenizer_and_config(self, path: str, saved: Path | None):
        from transformers import AutoConfig, AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(str(saved) if saved else path)
            mconf = AutoConfig.from_pretrained(path)
        except (OSError, ValueError) as e:
            raise UserError(weights_mod.not_found_message(self.cfg.backbone, e)) from None
        if tok.pad_token is None:  # decoders ship without one
            tok.pad_token = tok.eos_token or tok.unk_token
        tok.padding_side = "right"  # the classifier pools the last non-pad token
        mconf.num_labels = len(self.labels)
        mconf.problem_type = "multi_label_classification"
        mconf.id2label = dict(enumerate(self.labels))
        mconf.label2id = {lab: i for i, lab in enumerate(self.labels)}
        mconf.pad_token_id = tok.pad_token_id
        mconf.use_cache = False  # a classifier never generates
        positions = getattr(mconf, "max_position_embeddings", None)
        if positions and self.cfg.max_length > positions:
            raise UserError(f"{self.cfg.name}: max_length={self.cfg.max_length} is longer than {self.cfg.backbone} "
                            f"reads ({positions} positions); use --set max_length={positions} or less")
        return tok, mconf

    def _load_kwargs(self) -> dict:
        cfg = self.cfg
        if cfg.quantize != "4bit":  # 16-bit frozen weights on a GPU, else fp32
            on_gpu = self.device.type == "cuda" and self.dtype is not None and not cfg.overflow_safe
            return {"dtype": self.dtype if on_gpu else torch.float32}
        from transformers import BitsAndBytesConfig

        compute = DTYPES[cfg.bnb_4bit_compute_dtype] if cfg.bnb_4bit_compute_dtype != "auto" else self.dtype
        compute = compute or torch.float32
        quant = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type=cfg.bnb_4bit_quant_type,
            bnb_4bit_use_double_quant=cfg.bnb_4bit_use_double_quant, bnb_4bit_compute_dtype=compute,
            llm_int8_skip_modules=["score", "classifier"])  # the head trains in fp32
        where = _local_device_index() if self.device.type == "cuda" else "cpu"
        return {"quantization_config": quant, "device_map": {"": where}, "dtype": compute}

    def _wrap_peft(self, model, saved: Path | None):
        from peft import IA3Config, LoraConfig, PeftModel, TaskType, get_peft_model

        cfg = self.cfg
        if saved is not None:
            return PeftModel.from_pretrained(model, str(saved), is_trainable=False)
        mconf = model.config
        n_layers = getattr(mconf, "num_hidden_layers", 0)
        lowest = max(n_layers - cfg.adapter_layers if cfg.adapter_layers else 0, cfg.frozen_layers, 0)
        layers = {"layers_to_transform": list(range(lowest, n_layers))} if lowest and n_layers else {}
        if cfg.adapter == "lora":
            targets = cfg.target_modules or LORA_TARGETS.get(mconf.model_type)
            if not targets:
                raise UserError(f"{cfg.name}: no default LoRA target modules for architecture {mconf.model_type!r}; "
                                f"set them with --set target_modules=a,b")
            pc = LoraConfig(task_type=TaskType.SEQ_CLS, r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                            lora_dropout=cfg.lora_dropout, target_modules=list(targets), **layers)
        else:
            default = IA3_TARGETS.get(mconf.model_type, (None, None))
            targets = cfg.target_modules or default[0]
            ff = cfg.ia3_feedforward_modules or default[1]
            if not targets:
                raise UserError(f"{cfg.name}: no default IA3 modules for architecture {mconf.model_type!r}; "
                                f"set target_modules and ia3_feedforward_modules")
            pc = IA3Config(task_type=TaskType.SEQ_CLS, target_modules=list(targets), feedforward_modules=list(ff),
                           **layers)
        # SEQ_CLS puts the head in modules_to_save: trained and saved with the adapter
        return get_peft_model(model, pc)

    # ---- data -------------------------------------------------------------------------------------
    def encode(self, texts) -> list[list[int]]:
        texts = prepare(texts, self.cfg.preprocess, self.cfg.prompt)
        enc = self.tokenizer(texts, truncation=True, max_length=self.cfg.max_length, padding=False)
        return [ids if ids else [self.tokenizer.pad_token_id] for ids in enc["input_ids"]]

    def prefill(self, seqs) -> None:
        """Cache the frozen blocks' output for these sequences (frozen_layers > 0)."""
        if self.frozen is not None:
            self.frozen.prefill(seqs, self.cfg.eval_batch_size, self.autocast)

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None)

    # ---- the fold model interface -----------------------------------------------------------------
    def fit(self, train_texts, y_train, val_texts, y_val, log_dir=None) -> FitResult:
        return loop.fit(self, train_texts, y_train, val_texts, y_val)

    def predict(self, texts) -> np.ndarray:
        return loop.predict_encoded(self, self.encode(list(texts)))

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        tmp = directory.with_name(directory.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        # a fully fine-tuned model is saved in fp16 to halve the disk
        state = None
        if self.cfg.adapter == "none":
            state = {k: (v.half() if v.is_floating_point() else v) for k, v in self.model.state_dict().items()}
        self.model.save_pretrained(str(tmp), state_dict=state)
        self.tokenizer.save_pretrained(str(tmp))
        (tmp / META).write_text(json.dumps({"backbone": self.cfg.backbone, "adapter": self.cfg.adapter,
                                            "quantize": self.cfg.quantize, "labels": self.labels,
                                            "overflow_safe": self.cfg.overflow_safe}, indent=2))
        usual_mode(tmp)  # safetensors writes 0600
        shutil.rmtree(directory, ignore_errors=True)
        os.replace(tmp, directory)

    @classmethod
    def load(cls, directory: Path, cfg: HFConfig, labels: list[str]) -> "HFModel":
        directory = Path(directory)
        if not (directory / META).exists():
            train = hints.command("train", cfg.name, output=hints.fold_model_output(directory))
            raise UserError(f"{directory}: no saved model; train it with `{train}`")
        meta = read_json(directory / META)
        if isinstance(meta, dict) and meta.get("overflow_safe"):  # predict in the form it trained in
            cfg = dataclasses.replace(cfg, overflow_safe=True)
        m = cls(cfg, labels)
        torch.manual_seed(cfg.seed)
        m._build(saved=directory)
        m.model.eval()
        return m


class BaseCache:
    """One frozen base kept between an adapter model's folds; restoring the head's initial weights and the RNG
    state gives each fold exactly what a fresh load would."""

    def __init__(self):
        self.key = self.entry = None

    def take(self, m: HFModel):
        key = _base_key(m)
        if key != self.key:
            self.release()
            model, tok = m._load_base()
            head = {n: t.detach().clone() for n, t in model.state_dict().items() if HEAD.search(n)}
            self.key, self.entry = key, {"model": model, "tok": tok, "head": head, "rng": _rng_state(),
                                         "path": m.weights_path, "peft": None}
        e = self.entry
        if e["peft"] is not None:
            try:
                e["model"], e["peft"] = e["peft"].unload(), None
            except ValueError:  # peft will not unload IA3 from a 4-bit base
                self.release()
                return self.take(m)
        model = e["model"]
        model.load_state_dict(e["head"], strict=False)
        _set_rng_state(e["rng"])
        m.weights_path = e["path"]
        return model, e["tok"]

    def wrapped(self, peft_model) -> None:
        if self.entry is not None:
            self.entry["peft"] = peft_model

    def release(self) -> None:
        self.key = self.entry = None
        frozen_mod.release()
        _free_memory()


BASES = BaseCache()


def release_cached_base() -> None:
    BASES.release()


def _base_key(m: HFModel) -> tuple:
    c = m.cfg
    return (c.backbone, c.weights, os.environ.get("SOLUTION_WEIGHTS", ""), c.quantize, c.bnb_4bit_quant_type,
            c.bnb_4bit_use_double_quant, c.bnb_4bit_compute_dtype, m.precision, str(m.device), tuple(m.labels),
            c.pooling, c.gradient_checkpointing, c.seed, c.frozen_layers, c.overflow_safe)


def _rng_state():
    return torch.get_rng_state(), (torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None)


def _set_rng_state(state) -> None:
    cpu, cuda = state
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state_all(cuda)


def _free_memory() -> None:
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _matmul_weights_to(model, dtype) -> None:
    """The overflow-safe base: linear layers in 16 bits; embeddings, norms and the residual in fp32."""
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) and not HEAD.search(name):
            mod.to(dtype)


def overflow_fix(m: HFModel) -> str:
    """The cheapest fix for a loss that stays non-finite on this device."""
    name = m.cfg.name
    if m.precision == "fp16":
        return (f"this GPU has no native bf16: train it in fp32 (--set {name}.precision=fp32, several times slower "
                f"here), or on a GPU with bf16 (on Kaggle: --accelerator NvidiaL4)")
    return f"it diverged: lower its learning rate (--set {name}.lr={m.cfg.lr / 10:g})"


def _has_device_map(model) -> bool:
    return bool(getattr(model, "hf_device_map", None)) or bool(getattr(getattr(model, "base_model", None),
                                                                       "hf_device_map", None))


def _local_device_index() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def _disable_bnb_cpu_repack(model) -> None:
    """bitsandbytes' CPU bf16 repacking on an eval forward silently stops LoRA gradients."""
    try:
        import bitsandbytes as bnb
    except ImportError:
        return
    for mod in model.modules():
        if isinstance(mod, bnb.nn.Linear4bit):
            mod.support_avx512bf16_for_cpu = False
