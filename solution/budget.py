"""The time budget: how long each model's fold will take here, and which (model, fold) jobs fit.

Estimates, best source first:
1. measured: the `wall_time_s` of this model's finished folds (this run's, or an earlier run's on the same
   machine: metrics.json records the machine), scaled to the fold's size;
2. the cost model, corrected by what this run has measured: seconds per fold = samples x (a fixed cost per
   sample + FLOPs per sample / this device's effective FLOP/s), plus loading the base once per model and
   worker. FLOPs per sample: 2 N T forward, 2 N T more backward through the frozen weights, 2 N T for weight
   gradients (full fine-tuning only) and 2 N T for the recompute of gradient checkpointing, with N the
   non-embedding parameters and T the tokens of an average tweet (prompt included). The device constants are
   measured where a device was at hand (this CPU; an H100 through bench/gpu_check.py) and estimated from
   spec-sheet ratios elsewhere (T4, P100, A100, L4: see DEVICES); every finished fold corrects them: the ratio
   measured/estimated of the folds done so far scales the later estimates of its kind (fine-tuning, an encoder
   pass, scikit-learn: each is priced apart, so each is wrong in its own way) and backbone, for the rest of the
   run (cost_kind). On a CPU the device's rate is first timed on a few training steps (calibrate_cpu), then
   re-measured on the run's first MiniLM encoder pass where it runs in fp32 (Estimator.probe), a minute of its own work.
The plan simulates the jobs on the workers (one per GPU, or one) in order; a model is planned only if all its
folds end before the deadline, so that it can join the blend; a model that does not fit is skipped (a later
session, resuming, trains it), and a cheaper one after it may still fit.
"""
from __future__ import annotations

import dataclasses
import os
import re
import time
from pathlib import Path

from solution.errors import UserError

# Effective throughput per device class: (seconds of fixed cost per training sample, FLOP/s on the FLOPs
# above). CPU: the 2-core AMD EPYC (avx512_bf16) of bench/RESULTS.md, bf16 autocast: minilm-lora 200 and
# minilm-ft 146 samples/s at ~26 tokens = 220-240 GFLOP/s. H100: bench/gpu_check.py, 7B QLoRA at micro-batch 8:
# ~10 ms fixed per sample, ~86 TFLOP/s per layer. The others are the H100's scaled by their dense fp16/bf16
# tensor throughput (A100 312, L4 121, T4 65, H100 ~990 TFLOPS) with twice the fixed cost: estimates until a
# fold has run there.
DEVICES = {
    "cpu": (0.0005, 230e9),
    "H100": (0.0105, 86e12), "H200": (0.0105, 86e12),
    "A100": (0.015, 27e12), "L4": (0.02, 10.5e12), "T4": (0.02, 5.6e12), "P100": (0.03, 2e12),
    "gpu": (0.02, 5.6e12),  # an unknown GPU: planned like a T4
}
EVAL_FLOP_SHARE = 1 / 3  # an evaluation sample costs the forward pass only, at the same efficiency
CHARS_PER_TOKEN = 3.6  # English tweets with subword tokenizers (MiniLM: 26 tokens for ~95 characters)
# Non-embedding parameters of the registry's backbones (layers x (attention + MLP)); others read config.json.
BACKBONE_PARAMS = {
    "sentence-transformers/all-MiniLM-L6-v2": 10.6e6, "sentence-transformers/all-mpnet-base-v2": 85e6,
    "google/gemma-1.1-2b-it": 1.98e9,
    "intfloat/e5-mistral-7b-instruct": 6.98e9, "NeuralNovel/Gecko-7B-v0.1": 6.98e9,
    "Qwen/Qwen1.5-7B": 6.48e9, "Alibaba-NLP/gte-Qwen1.5-7B-instruct": 6.48e9,
}
# transformer blocks of the registry's backbones (others read config.json): adapter_layers and frozen_layers
# count in blocks
BACKBONE_DEPTH = {"sentence-transformers/all-MiniLM-L6-v2": 6, "sentence-transformers/all-mpnet-base-v2": 12,
                  "google/gemma-1.1-2b-it": 18, "intfloat/e5-mistral-7b-instruct": 32, "NeuralNovel/Gecko-7B-v0.1": 32,
                  "Qwen/Qwen1.5-7B": 32, "Alibaba-NLP/gte-Qwen1.5-7B-instruct": 32}
# frozen_layers members on a CPU run faster than the cost model's FLOPs say, measured per backbone here (their
# training and frozen-block pass; RESULTS.md "mpnet's top blocks", "MiniLM's top blocks"):
# - all-mpnet-base-v2: calibrate_cpu times MiniLM-shaped steps (384 wide), and mpnet's 768-wide matmuls run faster
#   per FLOP: mpnet-top2-ft's folds took 266 s and its frozen pass ~285 s where 80 GFLOP/s priced 427 and 452 (x1.6);
# - all-MiniLM-L6-v2: a step through 3 trained blocks costs less than the 6 passes of 2 N T counted for full
#   fine-tuning (the first trained block needs no input gradient): minilm-top3-ft at 2 epochs took 10.5 minutes
#   where 83 GFLOP/s priced 13.8 (x1.3).
# The embedding members' pass (padded by characters, not tokens) measured at about the calibrated rate in fp32, and
# whole-model training (LoRA, minilm-ft) is priced within ~10%: both keep the calibrated rate. Where the CPU has bf16
# the pass runs in it too (EmbedConfig.precision: 14 s instead of 42 on an avx512_bf16 EPYC, the same OOF F1), faster
# than priced; the probe (Estimator.probes) reads fp32 passes only.
CPU_FROZEN_SPEEDUP = {"sentence-transformers/all-mpnet-base-v2": 1.5, "sentence-transformers/all-MiniLM-L6-v2": 1.3}
# and their frozen blocks' one pass (inference: no autograd, eval-sized batches of token-sorted tweets) runs faster
# again: mpnet's 10 blocks took 222-242 s over eight runs where the training rate priced 303 at 80 GFLOP/s, MiniLM's 3
# blocks 21-23 s where it priced 28 (x1.25-1.3; RESULTS.md "Re-measured on the run's own encoder pass")
CPU_FROZEN_PASS_OVER_STEP = 1.25
LOAD_SECONDS = {  # reading and (for 4-bit) quantising the base once per model and worker
    "sentence-transformers/all-MiniLM-L6-v2": 2, "google/gemma-1.1-2b-it": 60,
}
LOAD_SECONDS_7B = 180
# scikit-learn's seconds per fold (one thread: neither more cores nor bf16 change them, so the torch calibration
# does not scale them), measured on the slower of the project's CPUs (RESULTS.md "The time budget decides": tfidf
# 7-10 s, an embedding LR 3-4 s after the memoised encoding, priced apart in prior(); lexicon-lr 2-3.5 s, and
# tfidf-lex-lr the tfidf's n-grams on top)
SMALL_MODEL_SECONDS = {"tfidf": 10.0, "embed": 5.0, "lexicon": 4.0}
# calibrate_cpu's few steps run faster than a whole fold sustains: with 84 GFLOP/s calibrated on this project's
# slower CPU (2 cores), minilm-lora's folds took 204-220 s where the cost model said 186 (x1.13) and MiniLM's
# encoder pass 70 s where it said 60 (x1.17) (RESULTS.md "The time budget decides"). Planning divides by this.
CALIBRATION_OVER_SUSTAINED = 1.15
# calibrate_cpu times this model's training steps; a run's first encoder pass of its backbone re-measures the rate
CALIBRATION_MODEL = "minilm-lora"
PROBE_MIN_S = 20.0  # a shorter pass (a small data set) says too little to replace the calibration
CHECKED_FOLDS = 3  # this run's finished folds of a kind and backbone after which its estimates count as checked
BLEND_SECONDS = 90  # the final blend with its plots, kept free at the end of the budget


def parse_duration(text: str) -> float:
    """Seconds of '28m', '2h', '1h30m', '90s', '11h30m', or a bare number of minutes."""
    t = str(text).strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", t):
        t += "m"
    m = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?:in)?)?(?:(\d+(?:\.\d+)?)s)?", t)
    if not t or not m or not any(m.groups()):
        raise UserError(f"--time-budget {text!r}: expected a duration such as 28m, 2h, 1h30m or 90s")
    h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    seconds = h * 3600 + mi * 60 + s
    if seconds <= 0:
        raise UserError(f"--time-budget {text!r}: must be more than zero")
    return seconds


def fmt_minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


# ---- the device and the cost model ----------------------------------------------------------------------
def device_class() -> str:
    """'cpu', or the GPU family of GPU 0 (H100, A100, T4, ...; 'gpu' for one not in DEVICES)."""
    from solution import hardware

    if not hardware.cuda_count():
        return "cpu"
    name = _gpu_name()
    return next((k for k in DEVICES if k not in ("cpu", "gpu") and k in name), "gpu")


def _gpu_name() -> str:
    try:
        import torch

        return torch.cuda.get_device_name(0)
    except Exception:  # a GPU the driver cannot name: planned as an unknown GPU
        return "GPU"


def machine_id() -> str:
    """What a measured fold time is valid for: the GPU model, or the CPU model and its thread count."""
    from solution import hardware

    if hardware.cuda_count():  # a fold runs on one GPU, whether the machine has one or several
        return _gpu_name()
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model or 'cpu'} ({hardware.usable_cores()} cores)"


def backbone_params(cfg) -> float:
    if cfg.backbone in BACKBONE_PARAMS:
        return BACKBONE_PARAMS[cfg.backbone]
    try:
        import json

        from solution.models.weights import resolve

        c = json.loads((Path(resolve(cfg.backbone, cfg.weights)) / "config.json").read_text())
        h, i, n = c["hidden_size"], c.get("intermediate_size", 4 * c["hidden_size"]), c["num_hidden_layers"]
        return float(n * (4 * h * h + 3 * h * i))
    except Exception:
        return 7e9  # unknown: plan it like a 7B model


def backbone_depth(cfg) -> int:
    if cfg.backbone in BACKBONE_DEPTH:
        return BACKBONE_DEPTH[cfg.backbone]
    try:
        import json

        from solution.models.weights import resolve

        return int(json.loads((Path(resolve(cfg.backbone, cfg.weights)) / "config.json").read_text())["num_hidden_layers"])
    except Exception:
        return 32  # unknown: a 7B decoder's


@dataclasses.dataclass
class FoldCost:
    seconds: float  # one fold's training + validation + test prediction
    load_s: float  # loading the base, once per model and worker
    source: str

    @property
    def modelled(self) -> bool:
        """From the cost model (corrected as folds finish), not from folds timed on this machine."""
        return self.source.startswith("cost model")

    def scaled(self, k: float) -> "FoldCost":
        if k == 1.0:
            return self
        return FoldCost(self.seconds * k, self.load_s * k, f"cost model x{k:.2f}")


def cost_kind(cfg) -> tuple[str, str]:
    """Which estimates a finished fold corrects: fine-tuning (the calibrated FLOP/s), an encoder pass plus a
    scikit-learn fit, or scikit-learn alone (constants); per backbone, since a CPU's efficiency differs between
    a 22M and a 110M model (MiniLM's encoder pass says little about mpnet's)."""
    kind = {"hf": "fine-tuning", "embed": "encoder pass"}.get(cfg.kind, "scikit-learn")
    return kind, getattr(cfg, "backbone", "")


def prior(cfg, n_train: int, n_val: int, n_test: int, mean_chars: float, device: str,
          cpu_flops: float | None = None, rate: tuple | None = None) -> FoldCost:
    """The cost model's seconds for one fold of `cfg` (see the module docstring); cpu_flops: this CPU's measured
    FLOP/s (calibrate_cpu) instead of the reference machine's; rate: this GPU's measured (fixed s a sample, FLOP/s)
    (solution/gpu_calibration.py) instead of the table's."""
    fixed, flops_per_s = rate or DEVICES.get(device, DEVICES["gpu"])
    if device == "cpu" and cpu_flops:
        flops_per_s = cpu_flops / CALIBRATION_OVER_SUSTAINED
    tokens = tokens_per_tweet(cfg, mean_chars)
    if cfg.kind in SMALL_MODEL_SECONDS:
        # an embedding model's encoder runs once over every tweet (memoised across folds): once per model and
        # worker, like loading a base (all-mpnet-base-v2 on this project's slower CPU: 509 s, this says ~610)
        encode = (n_train + n_val + n_test) * 2 * backbone_params(cfg) * tokens / flops_per_s if cfg.kind == "embed" else 0.0
        sklearn = SMALL_MODEL_SECONDS[cfg.kind] + (SMALL_MODEL_SECONDS["tfidf"] if getattr(cfg, "ngrams", False) else 0)
        return FoldCost(sklearn * n_train / 5470, encode, "cost model")
    n = backbone_params(cfg)
    depth = backbone_depth(cfg) if (cfg.frozen_layers or cfg.adapter_layers) else 1  # read only where it counts
    if device == "cpu" and cfg.frozen_layers:  # measured on top-block training only (mpnet-lora never timed)
        flops_per_s *= CPU_FROZEN_SPEEDUP.get(cfg.backbone, 1.0)
    frozen = min(cfg.frozen_layers, depth - 1)
    top = n * (depth - frozen) / depth  # the blocks a training step runs (frozen ones run once per tweet)
    passes = training_passes(cfg, depth)
    train = cfg.epochs * n_train * (fixed + passes * top * tokens / flops_per_s)
    evaluate = (cfg.epochs * n_val + n_test) * (fixed * EVAL_FLOP_SHARE + 2 * top * tokens / flops_per_s)
    load = LOAD_SECONDS.get(cfg.backbone, LOAD_SECONDS_7B if n > 3e9 else 30)
    load = load if device != "cpu" else min(load, 5)
    pass_rate = flops_per_s * (CPU_FROZEN_PASS_OVER_STEP if device == "cpu" else 1.0)
    once = (n_train + n_val + n_test) * 2 * (n - top) * tokens / pass_rate  # the frozen blocks' one pass
    return FoldCost(train + evaluate, load + once, "cost model")


def training_passes(cfg, depth: int) -> float:
    """A training step's FLOPs per sample in units of 2 N T (see the module docstring)."""
    passes = 4 + (2 if cfg.adapter == "none" else 0) + (2 if cfg.gradient_checkpointing else 0)
    if cfg.adapter_layers:  # backprop stops at the lowest adapter
        passes = 2 + (passes - 2) * min(1.0, cfg.adapter_layers / (depth - min(cfg.frozen_layers, depth - 1)))
    return passes


def tokens_per_tweet(cfg, mean_chars: float) -> float:
    return min(getattr(cfg, "max_length", 512), (mean_chars + len(getattr(cfg, "prompt", ""))) / CHARS_PER_TOKEN + 2)


def measured(mdir: Path, cfg, machine: str, n_train: int) -> FoldCost | None:
    """From metrics.json of this model's finished folds made on this machine with this config."""
    import json

    times, once = [], 0.0
    for p in sorted(Path(mdir).glob("fold*/metrics.json")):
        try:
            m = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if m.get("machine") == machine and m.get("config_fingerprint") == cfg.fingerprint() and m.get("n_train"):
            fold_once = float(m.get("once_s", 0.0))  # the frozen blocks' pass: priced once per process, not per fold
            once = max(once, fold_once)
            times.append((float(m["wall_time_s"]) - fold_once) * n_train / m["n_train"])
    if not times:
        return None
    return FoldCost(sum(times) / len(times), once, f"measured ({len(times)} fold{'s' * (len(times) > 1)} here)")


# ---- the plan ----------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Job:
    model: str
    fold: int


@dataclasses.dataclass
class Plan:
    runs: list  # (job, worker, start s, end s), in start order
    skipped: dict  # model -> reason

    @property
    def models(self) -> list:
        """The planned models in the order they start."""
        return list(dict.fromkeys(job.model for job, *_ in self.runs))


def simulate(jobs_by_model: dict, cost: dict, free_at: list, deadline: float | None, loaded: set) -> Plan:
    """List scheduling in the models' order; a model joins only if all its jobs end by the deadline.

    jobs_by_model: {model: [Job, ...]} in priority order; cost: {model: FoldCost}; free_at: when each worker
    is next free (seconds from now); loaded: (worker, model) pairs whose base is already in memory."""
    free, runs, skipped = list(free_at), [], {}
    worker_model = {w: m for w, m in loaded}
    for model, jobs in jobs_by_model.items():
        trial, trial_free, trial_wm = [], list(free), dict(worker_model)
        for job in jobs:
            w = min(range(len(trial_free)), key=lambda i: trial_free[i])
            load = cost[model].load_s if trial_wm.get(w) != model else 0.0
            start, end = trial_free[w], trial_free[w] + load + cost[model].seconds
            trial.append((job, w, start, end))
            trial_free[w], trial_wm[w] = end, model
        last = max((end for *_, end in trial), default=0.0)
        if deadline is not None and last > deadline:
            skipped[model] = (f"needs {fmt_minutes(last - max(0.0, min(free)))} for {len(jobs)} fold(s), "
                              f"{fmt_minutes(max(0.0, deadline - min(free)))} left")
            continue
        runs += trial
        free, worker_model = trial_free, trial_wm
    return Plan(sorted(runs, key=lambda r: (r[2], r[1])), skipped)


EXACT_MODELS = 10  # up to this many models every subset is tried (2**10 short simulations); more are chosen greedily


def choose(jobs_by_model: dict, cost: dict, value: dict, free_at: list, deadline: float | None, loaded: set) -> Plan:
    """The models to train and their order: of the sets whose every fold ends by the deadline, the one with the most
    expected value (ties: the one that ends first), ordered by value per minute (Smith's rule: value comes as early
    as it can); a model left out is told how long it needs after the chosen ones. value: {model: > 0}."""
    order = sorted(jobs_by_model, key=lambda m: -value[m] / max(model_seconds(m, jobs_by_model, cost), 1e-9))
    jobs = {m: jobs_by_model[m] for m in order}
    if deadline is None or len(order) > EXACT_MODELS:
        return simulate(jobs, cost, free_at, deadline, loaded)
    best, best_key = [], (0.0, 0.0)
    for mask in range(1, 1 << len(order)):
        chosen = [m for i, m in enumerate(order) if mask >> i & 1]
        plan = simulate({m: jobs[m] for m in chosen}, cost, free_at, deadline, loaded)
        if plan.skipped:
            continue
        key = (round(sum(value[m] for m in chosen), 9), -max((end for *_, end in plan.runs), default=0.0))
        if key > best_key:
            best, best_key = chosen, key
    plan = simulate({m: jobs[m] for m in best}, cost, free_at, deadline, loaded)
    for m in order:
        if m not in best:  # why: what it needs after the chosen models
            plan.skipped[m] = simulate({**{b: jobs[b] for b in best}, m: jobs[m]}, cost, free_at, deadline,
                                       loaded).skipped.get(m, "the plan buys more expected macro-F1 without it")
    return plan


def model_seconds(model: str, jobs_by_model: dict, cost: dict) -> float:
    return cost[model].seconds * len(jobs_by_model[model]) + cost[model].load_s


def expected_values(cfgs: dict, output: Path, floor: float) -> dict:
    """{model: expected macro-F1 above `floor` (predicting every label)}: the mean of its folds finished here, else
    its config's expected_f1; a model known by neither counts as the known ones' mean (1 where none is known)."""
    f1 = {n: fold_f1(Path(output) / n, c) or c.expected_f1 for n, c in cfgs.items()}
    known = [v - floor for v in f1.values() if v]
    unknown = sum(known) / len(known) if known else 1.0
    return {n: max(v - floor, 0.01) if v else max(unknown, 0.01) for n, v in f1.items()}


def fold_f1(mdir: Path, cfg) -> float:
    """The mean fold macro-F1 (thresholds tuned on the fold) of this config's folds finished in `mdir`, or 0."""
    import json

    scores = []
    for p in sorted(Path(mdir).glob("fold*/metrics.json")):
        try:
            m = json.loads(p.read_text())
            if m.get("config_fingerprint") == cfg.fingerprint():
                scores.append(float(m["at_tuned_thresholds"]["macro_f1"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    scores = [x for x in scores if 0 <= x <= 1]
    return sum(scores) / len(scores) if scores else 0.0


def format_plan(plan: Plan, cost: dict, todo: dict, done: dict, budget: float | None, n_workers: int,
                device: str) -> str:
    lines = [f"plan on {n_workers} worker(s) ({device}); budget "
             f"{fmt_minutes(budget) if budget is not None else 'none'}:",
             f"  {'model':<24}{'folds to train':<16}{'min/fold':>9}{'+ once':>8}  {'source':<26}{'ends at':>10}  status"]
    ends = {}
    for job, _, _, end in plan.runs:
        ends[job.model] = max(ends.get(job.model, 0.0), end)
    for model in [*plan.models, *(m for m in todo if m not in plan.models)]:  # in the order they will train
        c = cost.get(model)
        folds = ",".join(str(j.fold) for j in todo[model]) or "-"
        if model in plan.skipped:
            status = f"SKIPPED: {plan.skipped[model]}"
        elif not todo[model]:
            status = f"done ({done.get(model, 0)} folds)"
        else:
            status = "planned"
        when = fmt_minutes(ends[model]) if model in ends else "-"
        per, once = (f"{c.seconds / 60:.1f}", f"{c.load_s / 60:.1f}") if c else ("-", "-")  # once: load, encoder pass
        lines.append(f"  {model:<24}{folds:<16}{per:>9}{once:>8}  {(c.source if c else '-'):<26}{when:>10}  {status}")
    return "\n".join(lines)


def calibrate_cpu(steps: int = 8, batch: int = 32, tokens: int = 28, warmup: int = 2) -> float:
    """This CPU's effective FLOP/s in the kit's own training step (all-MiniLM-L6-v2 + LoRA, the precision `auto`
    picks here), the median of a few timed steps on synthetic token ids (single steps vary by +-15% on a small
    CPU; the first ones allocate): 4-10 seconds, before anything is planned."""
    import torch

    from solution import config
    from solution.models.hf import HFModel, release_cached_base

    m = HFModel(config.get(CALIBRATION_MODEL), [f"l{i}" for i in range(11)])
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
    return 4 * BACKBONE_PARAMS[m.cfg.backbone] * tokens / per_sample


class Estimator:
    """Seconds per fold of any config on this machine: measured folds first, else the (calibrated) cost model."""

    def __init__(self, data, n_train: int, device: str, machine: str, output: Path, cpu_flops: float | None = None):
        self.n_train, self.n_val = n_train, len(data.train) - n_train
        self.n_test, self.device, self.machine, self.output = len(data.test), device, machine, Path(output)
        from solution.data import TEXT

        self.chars = float(data.train[TEXT].astype(str).str.len().mean())
        self.cpu_flops = cpu_flops
        self.rate = None  # this GPU's (fixed s a sample, FLOP/s) once calibrated (solution/gpu_calibration.py)
        self.finished = {}  # cost kind -> [(measured s, cost-model s)] of this run's folds
        self.probed = False

    def base(self, cfg) -> FoldCost:
        """Measured folds, else the cost model as it stands before this run's corrections."""
        got = measured(self.output / cfg.name, cfg, self.machine, self.n_train)
        return got or prior(cfg, self.n_train, self.n_val, self.n_test, self.chars, self.device, self.cpu_flops,
                            self.rate)

    def __call__(self, cfg) -> FoldCost:
        return self.corrected(cfg, self.base(cfg))

    def corrected(self, cfg, c: FoldCost) -> FoldCost:
        """A cost-model estimate scaled by the folds of its kind this run has finished; a measured one as it is."""
        return c.scaled(self.factor(cfg)) if c.modelled else c

    def factor(self, cfg) -> float:
        return correction(self.finished.get(self.kind(cfg), []))

    def kind(self, cfg) -> tuple[str, str]:
        """Which corrections apply to `cfg`: on a GPU every fine-tuned model's folds measure one rate of the device
        (so a 2B model's first folds correct the 7B estimates); on a CPU cost_kind's."""
        kind = cost_kind(cfg)
        return (kind[0], "gpu") if self.device != "cpu" and kind[0] == "fine-tuning" else kind

    def checked(self, cfg) -> bool:
        """Whether this machine's own work backs the estimate (ladder.reserve): folds of this config timed by earlier
        runs, CHECKED_FOLDS of this run's of the same kind and backbone, or, for torch's work, the rate re-measured
        on this run's encoder pass (probe)."""
        torch_work = cost_kind(cfg)[0] != "scikit-learn"
        return (not self.base(cfg).modelled or (self.probed and torch_work)
                or len(self.finished.get(self.kind(cfg), [])) >= CHECKED_FOLDS)

    def probes(self, cfg) -> bool:
        """Whether a fold of `cfg` that runs its encoder pass would re-measure this CPU (see probe): only a pass in
        fp32. On an avx512_bf16 EPYC the bf16 pass ran 1.5x faster per FLOP than the calibrated bf16 training steps
        (14 s where 255 GFLOP/s priced 21) while training ran at or below the calibrated rate, so there it would
        plan too much; in fp32 (AVX2) pass and training kept their ratio over nine runs (RESULTS.md)."""
        from solution import config as config_mod
        from solution.hardware import mixed_precision

        return (not self.probed and self.device == "cpu" and bool(self.cpu_flops) and cfg.kind == "embed"
                and cfg.backbone == config_mod.get(CALIBRATION_MODEL).backbone
                and mixed_precision(cfg.precision, "cpu") == "no")

    def probe(self, cfg, once_s: float) -> str | None:
        """Re-measure this CPU on a finished fold's encoder pass of the calibration's backbone (minilm-emb-lr's fold 0:
        a minute of this run's own work over every tweet, where calibrate_cpu times a few seconds of steps): the
        pass's priced seconds over its measured ones scale cpu_flops, once per run, for every later estimate. On
        one idle machine the calibration read 72-98 GFLOP/s over nine runs whose passes took 68-77 s (RESULTS.md,
        "Re-measured on the run's own encoder pass"). Returns the line to print, or None."""
        if not self.probes(cfg) or once_s < PROBE_MIN_S:
            return None
        priced = prior(cfg, self.n_train, self.n_val, self.n_test, self.chars, self.device, self.cpu_flops).load_s
        old, self.cpu_flops, self.probed = self.cpu_flops, self.cpu_flops * priced / once_s, True
        self.finished.pop(self.kind(cfg), None)  # its kind is priced at the measured rate now: not corrected twice
        return (f"{cfg.name}'s encoder pass took {once_s:.0f} s where {old / 1e9:.0f} GFLOP/s priced {priced:.0f}: "
                f"this CPU runs at {self.cpu_flops / 1e9:.0f} GFLOP/s, and the rest of the run is planned with it")

    def record(self, cfg, measured_s: float, modelled_s: float) -> None:
        """A finished fold's wall time against its uncorrected cost-model estimate."""
        self.finished.setdefault(self.kind(cfg), []).append((measured_s, modelled_s))


class Clock:
    """Seconds since the run started (tests replace `now`)."""

    def __init__(self):
        self.t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.t0


def kaggle_session_budget(margin_s: float = 20 * 60, session_s: float = 12 * 3600) -> float | None:
    """On Kaggle: the 12-hour session less what has passed since the notebook's kernel started, less a margin."""
    if not (os.environ.get("KAGGLE_KERNEL_RUN_TYPE") or os.environ.get("KAGGLE_URL_BASE")):
        return None
    try:  # the container's first process started with the session (a kernel restarted later did not)
        import psutil

        started = min(psutil.Process(1).create_time(), psutil.Process(os.getpid()).create_time())
    except Exception:
        started = time.time()
    return max(60.0, session_s - margin_s - (time.time() - started))


def correction(done_pairs: list[tuple[float, float]]) -> float:
    """Measured over estimated seconds, summed over the folds this run has finished (1 before any): scales later
    estimates. Sums, not a median of ratios: an embedding member's first fold (the encoder pass) outweighs its
    four few-second fits."""
    if not done_pairs:
        return 1.0
    return sum(m for m, _ in done_pairs) / max(sum(e for _, e in done_pairs), 1e-9)
