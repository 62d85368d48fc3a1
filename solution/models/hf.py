"""A transformers sequence classifier with a PEFT adapter (LoRA, IA3, QLoRA) or full fine-tuning.

One fold model: built from an HFConfig, trained with a plain PyTorch loop (no Trainer): length-grouped
batches with dynamic padding, bf16/fp16 autocast where the hardware has it, gradient accumulation,
a separate learning rate for the classification head, one validation pass per epoch, and on a CUDA
out-of-memory error a restart of the fold with half the micro-batch and twice the accumulation.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from solution import log
from solution.batching import length_grouped, pad, random_batches, sorted_batches
from solution.config import IA3_TARGETS, LORA_TARGETS, HFConfig
from solution.errors import UserError
from solution.metrics import log_loss, macro_f1
from solution.models import FitResult
from solution.models import weights as weights_mod
from solution.models.losses import make_loss
from solution.models.pooling import apply_pooling
from solution.text import prepare
from solution.thresholds import tune

HEAD = re.compile(r"(^|\.)(classifier|score)(\.|$)")
META = "solution_model.json"
OOM = tuple(e for e in (getattr(torch, "OutOfMemoryError", None), getattr(torch.cuda, "OutOfMemoryError", None)) if e)


def cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def pick_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def amp_dtype(precision: str, device: torch.device):
    """The autocast dtype, or None for fp32. auto: bf16 where supported (this CPU too), else fp16 on CUDA."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_bf16() else None


def set_threads(n: int) -> None:
    if n <= 0:
        try:
            import psutil

            n = psutil.cpu_count(logical=False) or os.cpu_count() or 1
        except ImportError:
            n = os.cpu_count() or 1
    torch.set_num_threads(n)


class HFModel:
    def __init__(self, cfg: HFConfig, labels: list[str]):
        self.cfg, self.labels = cfg, labels
        self.device = pick_device()
        self.dtype = amp_dtype(cfg.precision, self.device)
        self.model = self.tokenizer = None
        self.weights_path = None
        self._guard_collapse = False
        set_threads(cfg.num_threads)

    # ---- building ---------------------------------------------------------------------------------
    def _build(self, saved: Path | None = None) -> None:
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

        cfg = self.cfg
        path = weights_mod.resolve(cfg.backbone, cfg.weights)
        self.weights_path = path
        try:
            tok = AutoTokenizer.from_pretrained(str(saved) if saved else path)
            mconf = AutoConfig.from_pretrained(path)
        except (OSError, ValueError) as e:
            raise UserError(weights_mod.not_found_message(cfg.backbone, e)) from None
        if tok.pad_token is None:  # decoders ship without one
            tok.pad_token = tok.eos_token or tok.unk_token
        tok.padding_side = "right"  # the classifier pools the last non-pad token: keep one side throughout
        mconf.num_labels = len(self.labels)
        mconf.problem_type = "multi_label_classification"
        mconf.id2label = dict(enumerate(self.labels))
        mconf.label2id = {lab: i for i, lab in enumerate(self.labels)}
        mconf.pad_token_id = tok.pad_token_id
        kwargs = {}
        if cfg.quantize == "4bit":
            from transformers import BitsAndBytesConfig

            compute = self.dtype or torch.float32
            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=compute, llm_int8_skip_modules=["score", "classifier"])  # head unquantised
            kwargs["device_map"] = {"": self.device.index or 0} if self.device.type == "cuda" else {"": "cpu"}
            kwargs["dtype"] = compute
        elif self.device.type == "cuda" and self.dtype is not None:
            kwargs["dtype"] = self.dtype  # 16-bit base weights on GPU; trainable ones are upcast below
        if cfg.adapter == "none" and saved is not None:
            path = str(saved)
        try:
            model = AutoModelForSequenceClassification.from_pretrained(path, config=mconf, **kwargs)
        except (OSError, ValueError) as e:
            raise UserError(weights_mod.not_found_message(cfg.backbone, e)) from None
        apply_pooling(model, cfg.pooling)
        if cfg.quantize == "4bit":
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(
                model, use_gradient_checkpointing=cfg.gradient_checkpointing,
                gradient_checkpointing_kwargs={"use_reentrant": False})
            if self.device.type == "cpu":
                _disable_bnb_cpu_repack(model)
        elif cfg.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if cfg.adapter != "none":
            model = self._wrap_peft(model, mconf, saved)
        if "device_map" not in kwargs:
            model = model.to(self.device)
        for p in model.parameters():  # trainable weights in fp32; autocast does the fast math
            if p.requires_grad and p.dtype != torch.float32:
                p.data = p.data.float()
        self.model, self.tokenizer = model, tok

    def _wrap_peft(self, model, mconf, saved: Path | None):
        from peft import IA3Config, LoraConfig, PeftModel, TaskType, get_peft_model

        cfg = self.cfg
        if saved is not None:
            return PeftModel.from_pretrained(model, str(saved), is_trainable=False)
        model_type = mconf.model_type
        n_layers = getattr(mconf, "num_hidden_layers", 0)
        layers = ({"layers_to_transform": list(range(max(0, n_layers - cfg.adapter_layers), n_layers))}
                  if cfg.adapter_layers and n_layers else {})
        if cfg.adapter == "lora":
            targets = cfg.target_modules or LORA_TARGETS.get(model_type)
            if not targets:
                raise UserError(f"{cfg.name}: no default LoRA target modules for architecture {model_type!r}; "
                                f"set them with --set target_modules=a,b")
            pc = LoraConfig(task_type=TaskType.SEQ_CLS, r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                            lora_dropout=cfg.lora_dropout, target_modules=list(targets), **layers)
        else:
            default = IA3_TARGETS.get(model_type, (None, None))
            targets = cfg.target_modules or default[0]
            ff = cfg.ia3_feedforward_modules or default[1]
            if not targets:
                raise UserError(f"{cfg.name}: no default IA3 modules for architecture {model_type!r}; "
                                f"set target_modules and ia3_feedforward_modules")
            pc = IA3Config(task_type=TaskType.SEQ_CLS, target_modules=list(targets), feedforward_modules=list(ff), **layers)
        # SEQ_CLS puts the classifier/score head in modules_to_save: trained and saved with the adapter
        return get_peft_model(model, pc)

    # ---- data -------------------------------------------------------------------------------------
    def _encode(self, texts) -> list[list[int]]:
        texts = prepare(texts, self.cfg.preprocess, self.cfg.prompt)
        enc = self.tokenizer(texts, truncation=True, max_length=self.cfg.max_length, padding=False)
        return [ids if ids else [self.tokenizer.pad_token_id] for ids in enc["input_ids"]]

    def _batch(self, seqs):
        ids, mask = pad(seqs, self.tokenizer.pad_token_id, self.tokenizer.padding_side)
        return torch.from_numpy(ids).to(self.device), torch.from_numpy(mask).to(self.device)

    def _autocast(self):
        if self.dtype is None:
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=self.dtype)

    def _predict_encoded(self, seqs, desc: str = "predict") -> np.ndarray:
        from tqdm.auto import tqdm

        self.model.eval()
        out = np.zeros((len(seqs), len(self.labels)), dtype=np.float64)
        batches = sorted_batches([len(s) for s in seqs], self.cfg.eval_batch_size)
        with torch.inference_mode(), self._autocast():
            for b in tqdm(batches, desc=desc, leave=False, file=sys.stderr, mininterval=2, disable=len(batches) < 4):
                ids, mask = self._batch([seqs[i] for i in b])
                logits = self.model(input_ids=ids, attention_mask=mask).logits
                out[b] = torch.sigmoid(logits.float()).cpu().numpy()
        return out

    # ---- training ---------------------------------------------------------------------------------
    def fit(self, train_texts, y_train, val_texts, y_val, log_dir=None) -> FitResult:
        retries, collapses = 0, 0
        while True:
            # the last allowed attempt runs unguarded: its result is kept whatever it is
            self._guard_collapse = collapses < self.cfg.collapse_retries
            try:
                res = self._fit(train_texts, y_train, val_texts, y_val)
                res.extra.update(oom_retries=retries, collapse_retries=collapses, lr=self.cfg.lr,
                                 head_lr=self.cfg.head_lr)
                return res
            except Collapsed as c:
                cfg = self.cfg
                self.cfg = dataclasses.replace(cfg, lr=cfg.lr / 2, head_lr=cfg.head_lr / 2)
                log.warn(f"{cfg.name}: {c}; restarting the fold with half the learning rates "
                         f"(lr {self.cfg.lr:g}, head_lr {self.cfg.head_lr:g})")
                self.model = None
                collapses += 1
            except OOM:
                cfg = self.cfg
                if cfg.batch_size <= 1:
                    raise UserError(f"{cfg.name}: CUDA out of memory even at micro-batch 1; lower max_length "
                                    f"or use a smaller model") from None
                self.cfg = dataclasses.replace(cfg, batch_size=cfg.batch_size // 2, grad_accum=cfg.grad_accum * 2,
                                               eval_batch_size=max(1, cfg.eval_batch_size // 2))
                log.warn(f"{cfg.name}: CUDA out of memory at micro-batch {cfg.batch_size}; restarting the fold with "
                         f"micro-batch {self.cfg.batch_size} x accumulation {self.cfg.grad_accum} (same effective batch)")
                self.model = None
                torch.cuda.empty_cache()
                retries += 1

    def _param_groups(self):
        cfg = self.cfg
        groups = {(h, d): [] for h in (True, False) for d in (True, False)}
        for name, p in self.model.named_parameters():
            if not p.requires_grad:
                continue
            head = bool(HEAD.search(name))
            decay = p.ndim >= 2 and "norm" not in name.lower()
            groups[(head, decay)].append(p)
        return [{"params": ps, "lr": cfg.head_lr if h else cfg.lr, "weight_decay": cfg.weight_decay if d else 0.0}
                for (h, d), ps in groups.items() if ps]

    def _fit(self, train_texts, y_train, val_texts, y_val) -> FitResult:
        from tqdm.auto import tqdm

        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        self._build()
        if cfg.max_train_samples:
            keep = rng.permutation(len(train_texts))[: cfg.max_train_samples]
            train_texts, y_train = [train_texts[i] for i in keep], y_train[keep]
        tr, va = self._encode(train_texts), self._encode(val_texts)
        lengths = np.array([len(s) for s in tr])
        targets = torch.tensor(y_train, dtype=torch.float32)
        loss_fn = make_loss(cfg, y_train, self.device)
        opt = torch.optim.AdamW(self._param_groups(), betas=(0.9, 0.999), eps=1e-8)
        n_batches = math.ceil(len(tr) / cfg.batch_size)
        steps = math.ceil(n_batches / cfg.grad_accum) * cfg.epochs
        warm = int(steps * cfg.warmup_ratio)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: (s + 1) / max(1, warm) if s < warm else max(0.0, (steps - s) / max(1, steps - warm)))
        scaler = torch.amp.GradScaler("cuda") if (self.device.type == "cuda" and self.dtype == torch.float16) else None
        trainable = [p for g in opt.param_groups for p in g["params"]]
        wandb = _wandb(cfg)
        history, best, seen, train_time = [], None, 0, 0.0
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        for epoch in range(cfg.epochs):
            self.model.train()
            batches = (length_grouped(lengths, cfg.batch_size, rng) if cfg.group_by_length
                       else random_batches(len(tr), cfg.batch_size, rng))
            t0, total, count = time.time(), 0.0, 0
            bar = tqdm(batches, desc=f"{cfg.name} epoch {epoch + 1}/{cfg.epochs}", leave=False, file=sys.stderr,
                       mininterval=2)
            for i, b in enumerate(bar):
                ids, mask = self._batch([tr[j] for j in b])
                with self._autocast():
                    logits = self.model(input_ids=ids, attention_mask=mask).logits
                loss = loss_fn(logits.float(), targets[b].to(self.device))
                (scaler.scale(loss / cfg.grad_accum) if scaler else loss / cfg.grad_accum).backward()
                if (i + 1) % cfg.grad_accum == 0 or i + 1 == len(batches):
                    if scaler:
                        scaler.unscale_(opt)
                    torch.nn.utils.clip_grad_norm_(trainable, cfg.max_grad_norm)
                    if scaler:
                        scaler.step(opt)
                        scaler.update()
                    else:
                        opt.step()
                    sched.step()
                    opt.zero_grad(set_to_none=True)
                total += loss.item() * len(b)
                count += len(b)
                if i % 20 == 0:
                    bar.set_postfix(loss=f"{total / count:.4f}")
            bar.close()
            train_time += time.time() - t0
            seen += count
            probs = self._predict_encoded(va, desc="validate")
            entry = {"epoch": epoch + 1, "train_loss": total / max(1, count),
                     "val_macro_f1": macro_f1(y_val, probs, 0.5),
                     "val_macro_f1_tuned": macro_f1(y_val, probs, tune(y_val, probs)),
                     "val_log_loss": log_loss(y_val, probs), "epoch_time_s": time.time() - t0}
            history.append(entry)
            if epoch == 0 and self._guard_collapse and len(y_val) >= COLLAPSE_MIN_ROWS:
                floor = constant_f1(y_val) + COLLAPSE_MARGIN
                if entry["val_macro_f1_tuned"] <= floor:
                    raise Collapsed(f"training collapsed in epoch 1 (val macro-F1 {entry['val_macro_f1_tuned']:.3f}, "
                                    f"no better than predicting every label: {floor - COLLAPSE_MARGIN:.3f})")
            log.info(f"{cfg.name} epoch {epoch + 1}/{cfg.epochs}: loss {entry['train_loss']:.4f}, val macro-F1 "
                     f"{entry['val_macro_f1']:.4f} at 0.5 / {entry['val_macro_f1_tuned']:.4f} tuned")
            if wandb:
                wandb.log(entry)
            if cfg.keep == "last" or best is None or entry["val_macro_f1_tuned"] > best[0]:
                state = ({n: p.detach().cpu().clone() for n, p in self.model.named_parameters() if p.requires_grad}
                         if cfg.keep == "best" and epoch + 1 < cfg.epochs else None)
                best = (entry["val_macro_f1_tuned"], epoch + 1, probs, state)
        kept = best[1]
        if cfg.keep == "best" and kept != cfg.epochs:
            params = dict(self.model.named_parameters())
            with torch.no_grad():
                for n, v in best[3].items():
                    params[n].copy_(v.to(params[n].device))
        log.info(f"{cfg.name}: keeping epoch {kept} ({cfg.keep})")
        if wandb:
            wandb.finish()
        extra = {"samples_per_s": seen / max(train_time, 1e-9), "train_time_s": train_time,
                 "device": str(self.device), "autocast": str(self.dtype).replace("torch.", "") if self.dtype else "fp32",
                 "micro_batch": cfg.batch_size, "grad_accum": cfg.grad_accum,
                 "trainable_params": int(sum(p.numel() for p in trainable)),
                 "weights_path": str(self.weights_path)}
        if self.device.type == "cuda":
            extra["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
        return FitResult(val_probs=best[2], history=history, kept_epoch=kept, extra=extra)

    def predict(self, texts) -> np.ndarray:
        return self._predict_encoded(self._encode(list(texts)), desc="predict")

    # ---- saving -----------------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        directory = Path(directory)
        tmp = directory.with_name(directory.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        # adapter + head only for PEFT (megabytes); the whole model for full fine-tuning
        self.model.save_pretrained(str(tmp))
        self.tokenizer.save_pretrained(str(tmp))
        (tmp / META).write_text(json.dumps({"backbone": self.cfg.backbone, "adapter": self.cfg.adapter,
                                            "quantize": self.cfg.quantize, "labels": self.labels}, indent=2))
        shutil.rmtree(directory, ignore_errors=True)
        os.replace(tmp, directory)

    @classmethod
    def load(cls, directory: Path, cfg: HFConfig, labels: list[str]) -> "HFModel":
        directory = Path(directory)
        if not (directory / META).exists():
            raise UserError(f"{directory}: no saved model; train it with `python -m solution train {cfg.name}`")
        m = cls(cfg, labels)
        torch.manual_seed(cfg.seed)
        m._build(saved=directory)
        m.model.eval()
        return m


# A run that diverges early (seen with MiniLM + LoRA at lr 1e-3 on one fold in five) ends epoch 1 no better
# than predicting every label for every tweet, and never recovers; it is restarted at half the learning rate.
COLLAPSE_MIN_ROWS = 200  # too few validation rows say nothing
COLLAPSE_MARGIN = 0.02


class Collapsed(Exception):
    pass


def constant_f1(y) -> float:
    """Macro-F1 of predicting every label for every tweet: per label 2r/(1+r), r its positive rate."""
    r = np.asarray(y, dtype=np.float64).mean(0)
    return float((2 * r / (1 + r)).mean())


def _disable_bnb_cpu_repack(model) -> None:
    """bitsandbytes on CPU repacks Linear4bit weights on an eval-mode forward, after which gradients
    silently stop flowing into the LoRA layers; switching the bf16 fast path off keeps training sound."""
    try:
        import bitsandbytes as bnb
    except ImportError:
        return
    for mod in model.modules():
        if isinstance(mod, bnb.nn.Linear4bit):
            mod.support_avx512bf16_for_cpu = False


def _wandb(cfg):
    if cfg.report_to != "wandb":
        return None
    try:
        import wandb
    except ImportError:
        raise UserError("--report-to wandb needs the wandb package: pip install wandb") from None
    wandb.init(project=os.environ.get("WANDB_PROJECT", "emotion-tweets"), name=cfg.name, config=cfg.to_dict(),
               reinit=True)
    return wandb
