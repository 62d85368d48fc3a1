"""The training loop of an HFModel on `accelerate`, in the style of transformers' `*_no_trainer.py` examples."""
from __future__ import annotations

import dataclasses
import math
import os
import re
import sys
import time

import numpy as np
import torch

from solution import log
from solution.blend.metrics import constant_f1, log_loss, macro_f1
from solution.blend.thresholds import tune
from solution.errors import UserError
from solution.log import progress
from solution.models.base import HEAD, FitResult, NonFinite
from solution.models.losses import make_loss

# a run that diverges early ends epoch 1 no better than predicting every label, and never recovers
COLLAPSE_MIN_ROWS = 200  # too few validation rows say nothing
COLLAPSE_MARGIN = 0.02
OOM = tuple(e for e in (getattr(torch, "OutOfMemoryError", None), getattr(torch.cuda, "OutOfMemoryError", None)) if e)


class Collapsed(Exception):
    pass


def is_oom(e: BaseException) -> bool:
    from accelerate.utils.memory import should_reduce_batch_size

    return isinstance(e, OOM) or should_reduce_batch_size(e)


# ---- retries around one fold -------------------------------------------------------------------------------
def fit(m, train_texts, y_train, val_texts, y_val) -> FitResult:
    """Train an HFModel on one fold; restart at half the learning rates on a collapse, half the batch on OOM."""
    retries = collapses = 0
    while True:
        guard = collapses < m.cfg.collapse_retries  # the last attempt's result is kept
        try:
            res = fit_once(m, train_texts, y_train, val_texts, y_val, guard)
            res.extra.update(oom_retries=retries, collapse_retries=collapses, lr=m.cfg.lr, head_lr=m.cfg.head_lr)
            return res
        except Collapsed as c:
            old = m.cfg
            m.cfg = dataclasses.replace(old, lr=old.lr / 2, head_lr=old.head_lr / 2)
            log.warn(f"{m.fold_name}: {c}; restarting the fold with half the learning rates "
                     f"(lr {m.cfg.lr:g}, head_lr {m.cfg.head_lr:g})")
            collapses += 1
        except Exception as e:
            if not is_oom(e):
                raise
            m.cfg = halve_batch(m.cfg, m.fold_name)
            retries += 1
        finally:
            _drop_training_state(m)


def halve_batch(cfg, who: str):
    if cfg.batch_size <= 1:
        raise UserError(f"{who}: out of memory even at micro-batch 1; lower its max_length (--set "
                        f"{cfg.name}.max_length=64) or use a smaller model")
    new = dataclasses.replace(cfg, batch_size=cfg.batch_size // 2, grad_accum=cfg.grad_accum * 2,
                              eval_batch_size=max(1, cfg.eval_batch_size // 2))
    log.warn(f"{who}: out of memory at micro-batch {cfg.batch_size}; restarting the fold with micro-batch "
             f"{new.batch_size} x accumulation {new.grad_accum} (same effective batch)")
    return new


def _drop_training_state(m) -> None:
    """Free what a fold attempt held before the next."""
    acc = getattr(m, "accelerator", None)
    if acc is not None:
        acc.free_memory()
        m.accelerator = None
    if m.model is not None:
        m.model.zero_grad(set_to_none=True)
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ---- one attempt ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Progress:
    history: list = dataclasses.field(default_factory=list)
    best: tuple | None = None  # (tuned val F1, epoch, val probs, state)
    seen: int = 0
    train_time: float = 0.0


def fit_once(m, train_texts, y_train, val_texts, y_val, guard: bool) -> FitResult:
    from accelerate.utils import set_seed

    cfg = m.cfg
    set_seed(cfg.seed)
    if cfg.max_train_samples:
        keep = np.random.default_rng(cfg.seed).permutation(len(train_texts))[: cfg.max_train_samples]
        train_texts, y_train = [train_texts[i] for i in keep], y_train[keep]
    try:
        m._build()
    except Exception as e:
        if is_oom(e):  # the weights themselves do not fit
            raise UserError(f"{m.fold_name}: out of memory loading {cfg.backbone}; use 4-bit weights (--set "
                            f"{cfg.name}.quantize=4bit) or a smaller model") from None
        raise
    acc = m.accelerator = make_accelerator(m)
    tr, va = m.encode(train_texts), m.encode(val_texts)
    m.prefill(tr + va)
    loader = train_loader(m, tr, cfg.seed)
    opt = torch.optim.AdamW(param_groups(m.model, cfg), betas=(0.9, 0.999), eps=1e-8)
    sched = lr_schedule(opt, cfg, len(loader))
    m.model, opt, loader, sched = acc.prepare(m.model, opt, loader, sched)
    loss_fn = make_loss(cfg, y_train, acc.device)
    targets = torch.tensor(y_train, dtype=torch.float32)
    trackers = start_trackers(acc, cfg, m.fold_name)
    if acc.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    run = Progress()
    bar = _bar(m, cfg.epochs * len(loader))
    for epoch in range(cfg.epochs):
        t0 = time.time()
        loss, count = train_epoch(m, acc, loader, opt, sched, loss_fn, targets, epoch, bar)
        t_train = time.time() - t0
        run.train_time += t_train
        run.seen += count
        probs = predict_encoded(m, va, desc="validate")
        entry = epoch_entry(epoch, loss, y_val, probs, time.time() - t0)
        entry["train_time_s"] = t_train
        run.history.append(entry)
        if epoch == 0 and guard:
            check_collapse(entry, y_val)
        log.info(f"{m.fold_name} epoch {epoch + 1}/{cfg.epochs}: loss {entry['train_loss']:.4f}, val macro-F1 "
                 f"{entry['val_macro_f1']:.4f} at 0.5 / {entry['val_macro_f1_tuned']:.4f} tuned")
        if trackers:
            acc.log(entry, step=epoch + 1)
        keep_epoch(m, acc, run, entry, probs)
    bar.close()
    if trackers:
        acc.end_training()
    return finish(m, acc, run)


def make_accelerator(m):
    """A fresh Accelerator: folds may differ in precision, so its shared state is reset."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state()
    GradientState._reset_state()
    return Accelerator(mixed_precision=m.precision, gradient_accumulation_steps=m.cfg.grad_accum,
                       cpu=m.device.type == "cpu", log_with="wandb" if m.cfg.report_to == "wandb" else None)


def train_loader(m, seqs, seed: int):
    from torch.utils.data import DataLoader, RandomSampler
    from transformers import DataCollatorWithPadding

    cfg = m.cfg
    rows = [{"input_ids": s, "idx": i} for i, s in enumerate(seqs)]
    gen = torch.Generator().manual_seed(seed)
    pad = DataCollatorWithPadding(m.tokenizer)
    if cfg.group_by_length:
        batches = LengthGroups([len(s) for s in seqs], cfg.batch_size, gen)
        return DataLoader(rows, batch_sampler=batches, collate_fn=pad)
    return DataLoader(rows, batch_size=cfg.batch_size, sampler=RandomSampler(rows, generator=gen), collate_fn=pad)


class LengthGroups(torch.utils.data.Sampler):
    """Length-grouped batches in shuffled order: the longest first (an OOM shows at once), a short one last
    (for accelerate's sharding)."""

    def __init__(self, lengths: list[int], batch_size: int, generator: torch.Generator):
        self.lengths, self.batch_size, self.generator = lengths, batch_size, generator

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self):
        from transformers.trainer_pt_utils import get_length_grouped_indices

        idx = get_length_grouped_indices(self.lengths, self.batch_size, generator=self.generator)
        batches = [idx[i:i + self.batch_size] for i in range(0, len(idx), self.batch_size)]
        short = [batches.pop()] if len(batches) > 1 and len(batches[-1]) < self.batch_size else []
        order = torch.randperm(len(batches) - 1, generator=self.generator).tolist()
        return iter([batches[0], *(batches[1 + j] for j in order), *short])


def lr_schedule(opt, cfg, batches_per_epoch: int):
    """Linear warm-up then decay, counted before `prepare` so any process count agrees."""
    from transformers import get_linear_schedule_with_warmup

    steps = math.ceil(batches_per_epoch / cfg.grad_accum) * cfg.epochs
    return get_linear_schedule_with_warmup(opt, int(steps * cfg.warmup_ratio), steps)


BLOCK = re.compile(r"\.layers?\.(\d+)\.")


def layer_scale(name: str, n_layers: int, decay: float) -> float:
    """Layer-wise lr decay: one factor per block below the top; the embeddings one below the lowest."""
    hit = BLOCK.search(name)
    if hit:
        return decay ** (n_layers - 1 - int(hit.group(1)))
    return decay ** n_layers if "embeddings" in name else 1.0


def param_groups(model, cfg) -> list[dict]:
    """AdamW groups: the head at head_lr, the rest scaled by layer_decay; no weight decay on biases and norms."""

    n_layers = getattr(getattr(model, "config", None), "num_hidden_layers", 0)
    groups = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            head = bool(HEAD.search(name))
            lr = cfg.head_lr if head else cfg.lr * layer_scale(name, n_layers, cfg.layer_decay)
            decay = cfg.weight_decay if p.ndim >= 2 and "norm" not in name.lower() else 0.0
            groups.setdefault((lr, decay), []).append(p)
    return [{"params": ps, "lr": lr, "weight_decay": d} for (lr, d), ps in groups.items()]


def train_epoch(m, acc, loader, opt, sched, loss_fn, targets, epoch: int, bar) -> tuple[float, int]:
    cfg = m.cfg
    m.model.train()
    total, count = 0.0, 0
    for step, batch in enumerate(loader):
        with acc.accumulate(m.model):
            logits = m.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            loss = loss_fn(logits.float(), targets[batch["idx"].cpu()].to(acc.device))
            value = loss.item()
            if not math.isfinite(value):
                raise NonFinite(f"{m.fold_name}: the loss is {value} at step {step + 1} of epoch {epoch + 1}")
            acc.backward(loss)
            if acc.sync_gradients:
                acc.clip_grad_norm_(m.model.parameters(), cfg.max_grad_norm)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
        n = len(batch["idx"])
        total, count = total + value * n, count + n
        bar.update(1)
        if step % 20 == 0:
            bar.set_postfix(epoch=epoch + 1, loss=f"{total / count:.4f}", refresh=False)
    return total / max(1, count), count


def epoch_entry(epoch: int, loss: float, y_val, probs, seconds: float) -> dict:
    return {"epoch": epoch + 1, "train_loss": loss, "val_macro_f1": macro_f1(y_val, probs, 0.5),
            "val_macro_f1_tuned": macro_f1(y_val, probs, tune(y_val, probs)), "val_log_loss": log_loss(y_val, probs),
            "epoch_time_s": seconds}


def check_collapse(entry: dict, y_val) -> None:
    if len(y_val) < COLLAPSE_MIN_ROWS:
        return
    floor = constant_f1(y_val) + COLLAPSE_MARGIN
    if entry["val_macro_f1_tuned"] <= floor:
        raise Collapsed(f"training collapsed in epoch 1 (val macro-F1 {entry['val_macro_f1_tuned']:.3f}, "
                        f"no better than predicting every label: {floor - COLLAPSE_MARGIN:.3f})")


def keep_epoch(m, acc, run: Progress, entry: dict, probs) -> None:
    cfg = m.cfg
    if cfg.keep == "last" or run.best is None or entry["val_macro_f1_tuned"] > run.best[0]:
        state = None
        if cfg.keep == "best" and entry["epoch"] < cfg.epochs:
            state = {n: p.detach().cpu().clone() for n, p in acc.unwrap_model(m.model).named_parameters()
                     if p.requires_grad}
        run.best = (entry["val_macro_f1_tuned"], entry["epoch"], probs, state)


def finish(m, acc, run: Progress) -> FitResult:
    cfg = m.cfg
    m.model = acc.unwrap_model(m.model)
    _, kept, probs, state = run.best
    if state is not None:
        params = dict(m.model.named_parameters())
        with torch.no_grad():
            for n, v in state.items():
                params[n].copy_(v.to(params[n].device))
    log.info(f"{m.fold_name}: keeping epoch {kept} ({cfg.keep})")
    trainable = sum(p.numel() for p in m.model.parameters() if p.requires_grad)
    extra = {"samples_per_s": run.seen / max(run.train_time, 1e-9), "train_time_s": run.train_time,
             "device": str(acc.device), "autocast": m.precision if m.precision != "no" else "fp32",
             "micro_batch": cfg.batch_size, "grad_accum": cfg.grad_accum, "processes": acc.num_processes,
             "trainable_params": int(trainable), "weights_path": str(m.weights_path)}
    if acc.device.type == "cuda":
        extra["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
        extra["peak_gpu_reserved_mb"] = torch.cuda.max_memory_reserved() / 2**20
    return FitResult(val_probs=probs, history=run.history, kept_epoch=kept, extra=extra)


def start_trackers(acc, cfg, run_name: str) -> bool:
    if cfg.report_to != "wandb":
        return False
    try:
        import wandb  # noqa: F401
    except ImportError:
        raise UserError("--report-to wandb needs the wandb package: pip install wandb") from None
    acc.init_trackers(os.environ.get("WANDB_PROJECT", "emotion-tweets"), config=cfg.to_dict(),
                      init_kwargs={"wandb": {"name": run_name, "reinit": True}})
    return True


def _bar(m, total: int):
    return progress(total=total, desc=m.fold_name, unit="batch")


# ---- inference -------------------------------------------------------------------------------------------------
def predict_encoded(m, seqs, desc: str = "predict") -> np.ndarray:
    """Probabilities in the order of `seqs`, halving the batch on out-of-memory."""
    while True:
        try:
            m.prefill(seqs)
            return _predict_batches(m, seqs, desc)
        except Exception as e:
            if not is_oom(e):
                raise
            if m.cfg.eval_batch_size <= 1:
                raise UserError(f"{m.fold_name}: out of memory predicting even one tweet at a time; lower its "
                                f"max_length (--set {m.cfg.name}.max_length=64) or use a smaller model") from None
            m.cfg = dataclasses.replace(m.cfg, eval_batch_size=m.cfg.eval_batch_size // 2)
            log.warn(f"{m.fold_name}: out of memory while predicting; retrying with batch {m.cfg.eval_batch_size}")
            torch.cuda.empty_cache()


def _predict_batches(m, seqs, desc: str) -> np.ndarray:
    """Longest tweets first: least padding, and memory peaks at once."""
    from torch.utils.data import DataLoader
    from transformers import DataCollatorWithPadding

    acc = getattr(m, "accelerator", None)
    order = np.argsort(-np.array([len(s) for s in seqs]), kind="stable")
    rows = [{"input_ids": seqs[i], "idx": int(i)} for i in order]
    loader = DataLoader(rows, batch_size=m.cfg.eval_batch_size, collate_fn=DataCollatorWithPadding(m.tokenizer))
    if acc is not None:
        loader = acc.prepare_data_loader(loader, device_placement=True)
    device = acc.device if acc is not None else next(m.model.parameters()).device
    out = np.zeros((len(seqs), len(m.labels)), dtype=np.float64)
    m.model.eval()
    with torch.inference_mode(), m.autocast():

        for batch in progress(loader, desc=desc, disable=len(loader) < 4 or not sys.stderr.isatty()):
            logits = m.model(input_ids=batch["input_ids"].to(device),
                             attention_mask=batch["attention_mask"].to(device)).logits
            idx, probs = batch["idx"].to(device), torch.sigmoid(logits.float())
            if acc is not None:
                idx, probs = acc.gather_for_metrics((idx, probs))
            out[idx.cpu().numpy()] = probs.cpu().numpy()
    return out
