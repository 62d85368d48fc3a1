"""The time budget: how long each model's fold will take here, and which (model, fold) jobs fit.

A fold's estimate is this config's folds timed on this machine, else the cost model: samples x (fixed cost +
FLOPs / FLOP/s), FLOPs in units of 2 N T (N non-embedding parameters, T tokens) for the forward pass, backward
pass, weight gradients and recompute. The device's rate is timed first (calibration.py, Estimator.probe), and each
finished fold corrects later estimates of its kind. A model is planned only if all its folds end by the deadline,
so that it can join the blend; of the models that fit, choose keeps those of most expected macro-F1.
"""
from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path

from solution import config as config_mod
from solution import hardware
from solution.data import TEXT
from solution.errors import UserError
from solution.hardware import mixed_precision
from solution.io import METRICS_JSON, read_checked
from solution.models.weights import resolve

# (fixed seconds per training sample, FLOP/s) per device class; all but cpu and H100 scaled by spec sheet
DEVICES = {
    "cpu": (0.0005, 230e9),
    "H100": (0.0105, 86e12), "H200": (0.0105, 86e12),
    "A100": (0.015, 27e12), "L4": (0.02, 10.5e12), "T4": (0.02, 5.6e12), "P100": (0.03, 2e12),
    "gpu": (0.02, 5.6e12),  # an unknown GPU: planned like a T4
}
EVAL_FLOP_SHARE = 1 / 3  # evaluation runs the forward pass only
CHARS_PER_TOKEN = 3.6  # English tweets with subword tokenizers
# non-embedding parameters of the registry's backbones (others read config.json)
BACKBONE_PARAMS = {
    "sentence-transformers/all-MiniLM-L6-v2": 10.6e6, "sentence-transformers/all-mpnet-base-v2": 85e6,
    "google/gemma-1.1-2b-it": 1.98e9,
    "intfloat/e5-mistral-7b-instruct": 6.98e9, "NeuralNovel/Gecko-7B-v0.1": 6.98e9,
    "Qwen/Qwen1.5-7B": 6.48e9, "Alibaba-NLP/gte-Qwen1.5-7B-instruct": 6.48e9,
}
# transformer blocks (others read config.json), the unit of adapter_layers and frozen_layers
BACKBONE_DEPTH = {"sentence-transformers/all-MiniLM-L6-v2": 6, "sentence-transformers/all-mpnet-base-v2": 12,
                  "google/gemma-1.1-2b-it": 18, "intfloat/e5-mistral-7b-instruct": 32, "NeuralNovel/Gecko-7B-v0.1": 32,
                  "Qwen/Qwen1.5-7B": 32, "Alibaba-NLP/gte-Qwen1.5-7B-instruct": 32}
# top-block training beats the calibrated CPU rate (wider matmuls; no input gradient below)
CPU_FROZEN_SPEEDUP = {"sentence-transformers/all-mpnet-base-v2": 1.5, "sentence-transformers/all-MiniLM-L6-v2": 1.3}
# the frozen blocks' one pass runs faster again (no autograd, sorted batches)
CPU_FROZEN_PASS_OVER_STEP = 1.25
LOAD_SECONDS = {  # reading (and quantising) the base, once per worker
    "sentence-transformers/all-MiniLM-L6-v2": 2, "google/gemma-1.1-2b-it": 60,
}
LOAD_SECONDS_7B = 180
# scikit-learn's seconds per fold: single-threaded, so the torch calibration does not scale them
SMALL_MODEL_SECONDS = {"tfidf": 10.0, "embed": 5.0, "lexicon": 4.0}
# calibrate_cpu's few steps run faster than a whole fold sustains; planning divides by this
CALIBRATION_OVER_SUSTAINED = 1.15
# calibrate_cpu times this model's steps; an encoder pass of its backbone re-measures the rate
CALIBRATION_MODEL = "minilm-lora"
PROBE_MIN_S = 20.0  # a shorter pass says too little
CHECKED_FOLDS = 3  # finished folds of a kind after which its estimates count as checked
BLEND_FIXED_S = 10.0  # the final blend's start-up and plots
BLEND_S_ROW_MEMBER2 = 2.5e-4  # its fits grow with the rows and the square of the members; twice bench/blend_time.py's


def blend_reserve(n_rows: int, n_models: int) -> float:
    """Seconds kept free for the final blend of `n_models` members on `n_rows` train rows."""
    return BLEND_FIXED_S + BLEND_S_ROW_MEMBER2 * n_rows * max(1, n_models) ** 2


def parse_duration(text: str) -> float:
    """Seconds in a duration ('1h30m', '2h'; a bare number: minutes); zero is allowed."""
    t = str(text).strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", t):
        t += "m"
    m = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?:in)?)?(?:(\d+(?:\.\d+)?)s)?", t)
    if not t or not m or not any(m.groups()):
        raise UserError(f"--time-budget {text!r}: expected a duration such as 28m, 2h, 1h30m or 90s")
    h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mi * 60 + s


def fmt_minutes(seconds: float) -> str:
    if seconds < 59.5:  # a tenth of a minute is too coarse for the cheap members
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def fmt_short(seconds: float) -> str:
    """A table cell: 6s, 2.5m, 1.2h."""
    return fmt_minutes(seconds).replace(" min", "m").replace(" ", "")


# ---- the device and the cost model ----------------------------------------------------------------------
def device_class() -> str:
    """'cpu', or GPU 0's family in DEVICES ('gpu' if unknown)."""

    if not hardware.cuda_count():
        return "cpu"
    name = _gpu_name()
    return next((k for k in DEVICES if k not in ("cpu", "gpu") and k in name), "gpu")


def _gpu_name() -> str:
    try:
        import torch

        return torch.cuda.get_device_name(0)
    except Exception:  # unnamed: planned as an unknown GPU
        return "GPU"


def machine_id() -> str:
    """The machine a fold time holds for: GPU model, or CPU model and cores."""

    if hardware.cuda_count():  # a fold runs on one GPU
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

        return int(json.loads((Path(resolve(cfg.backbone, cfg.weights)) / "config.json").read_text())
                   ["num_hidden_layers"])
    except Exception:
        return 32  # unknown: a 7B decoder's


@dataclasses.dataclass
class FoldCost:
    seconds: float  # one fold's training + validation + test prediction
    load_s: float  # loading the base, once per model and worker
    source: str

    @property
    def modelled(self) -> bool:
        """From the cost model, not from folds timed here."""
        return self.source.startswith("cost model")

    def scaled(self, k: float) -> "FoldCost":
        if k == 1.0:
            return self
        return FoldCost(self.seconds * k, self.load_s * k, f"cost model x{k:.2f}")


def cost_kind(cfg) -> tuple[str, str]:
    """The estimates a finished fold corrects: (fine-tuning | encoder pass | scikit-learn, backbone)."""
    kind = {"hf": "fine-tuning", "embed": "encoder pass"}.get(cfg.kind, "scikit-learn")
    return kind, getattr(cfg, "backbone", "")


def prior(cfg, n_train: int, n_val: int, n_test: int, mean_chars: float, device: str,
          cpu_flops: float | None = None, rate: tuple | None = None) -> FoldCost:
    """The cost model's seconds for one fold of `cfg`, at this machine's measured speed where given."""
    fixed, flops_per_s = rate or DEVICES.get(device, DEVICES["gpu"])
    if device == "cpu" and cpu_flops:
        flops_per_s = cpu_flops / CALIBRATION_OVER_SUSTAINED
    tokens = tokens_per_tweet(cfg, mean_chars)
    if cfg.kind in SMALL_MODEL_SECONDS:
        # the encoder's one pass over every tweet, priced once per worker
        encode = ((n_train + n_val + n_test) * 2 * backbone_params(cfg) * tokens / flops_per_s
                  if cfg.kind == "embed" else 0.0)
        sklearn = SMALL_MODEL_SECONDS[cfg.kind] + (SMALL_MODEL_SECONDS["tfidf"] if getattr(cfg, "ngrams", False) else 0)
        return FoldCost(sklearn * n_train / 5470, encode, "cost model")
    n = backbone_params(cfg)
    depth = backbone_depth(cfg) if (cfg.frozen_layers or cfg.adapter_layers) else 1  # read only where it counts
    if device == "cpu" and cfg.frozen_layers:  # the speedup was measured on top-block training only
        flops_per_s *= CPU_FROZEN_SPEEDUP.get(cfg.backbone, 1.0)
    frozen = min(cfg.frozen_layers, depth - 1)
    top = n * (depth - frozen) / depth  # the trained blocks (frozen ones run once per tweet)
    passes = training_passes(cfg, depth)
    train = cfg.epochs * n_train * (fixed + passes * top * tokens / flops_per_s)
    evaluate = (cfg.epochs * n_val + n_test) * (fixed * EVAL_FLOP_SHARE + 2 * top * tokens / flops_per_s)
    load = LOAD_SECONDS.get(cfg.backbone, LOAD_SECONDS_7B if n > 3e9 else 30)
    load = load if device != "cpu" else min(load, 5)
    pass_rate = flops_per_s * (CPU_FROZEN_PASS_OVER_STEP if device == "cpu" else 1.0)
    once = (n_train + n_val + n_test) * 2 * (n - top) * tokens / pass_rate  # the frozen blocks' one pass
    return FoldCost(train + evaluate, load + once, "cost model")


def training_passes(cfg, depth: int) -> float:
    """A training step's FLOPs per sample in units of 2 N T."""
    passes = 4 + (2 if cfg.adapter == "none" else 0) + (2 if cfg.gradient_checkpointing else 0)
    if cfg.adapter_layers:  # backprop stops at the lowest adapter
        passes = 2 + (passes - 2) * min(1.0, cfg.adapter_layers / (depth - min(cfg.frozen_layers, depth - 1)))
    return passes


def tokens_per_tweet(cfg, mean_chars: float) -> float:
    return min(getattr(cfg, "max_length", 512), (mean_chars + len(getattr(cfg, "prompt", ""))) / CHARS_PER_TOKEN + 2)


def fold_metrics(mdir: Path, cfg) -> list[dict]:
    """The metrics.json records of this config's folds in `mdir`; one that is not of its shape is skipped."""
    records = []
    for p in sorted(Path(mdir).glob("fold*/metrics.json")):
        try:
            m = read_checked(p, METRICS_JSON)
        except (UserError, OSError):
            continue
        if m["config_fingerprint"] == cfg.fingerprint():
            records.append(m)
    return records


def measured(mdir: Path, cfg, machine: str, n_train: int) -> FoldCost | None:
    """From metrics.json of this config's finished folds made on this machine."""
    times, once = [], 0.0
    for m in fold_metrics(mdir, cfg):
        if m.get("machine") == machine:
            fold_once = m.get("once_s", 0.0)  # a once-per-process pass, not a per-fold cost
            once = max(once, fold_once)
            times.append(max(m["wall_time_s"] - fold_once, 0.0) * n_train / m["n_train"])
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
    """List scheduling in priority order; a model joins only if all its jobs end by the deadline."""
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


EXACT_MODELS = 10  # up to this many models every subset is tried; more are chosen greedily


def choose(jobs_by_model: dict, cost: dict, value: dict, free_at: list, deadline: float | None, loaded: set) -> Plan:
    """The most valuable model set that ends by the deadline, by value per minute (Smith's rule)."""
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
        if m not in best:  # its reason: what it needs after the chosen models
            plan.skipped[m] = simulate({**{b: jobs[b] for b in best}, m: jobs[m]}, cost, free_at, deadline,
                                       loaded).skipped.get(m, "the plan buys more expected macro-F1 without it")
    return plan


def model_seconds(model: str, jobs_by_model: dict, cost: dict) -> float:
    return cost[model].seconds * len(jobs_by_model[model]) + cost[model].load_s


def expected_values(cfgs: dict, output: Path, floor: float) -> dict:
    """{model: expected macro-F1 above `floor`}: finished folds' mean, else expected_f1, else the known mean."""
    f1 = {n: fold_f1(Path(output) / n, c) or c.expected_f1 for n, c in cfgs.items()}
    known = [v - floor for v in f1.values() if v]
    unknown = sum(known) / len(known) if known else 1.0
    return {n: max(v - floor, 0.01) if v else max(unknown, 0.01) for n, v in f1.items()}


def fold_f1(mdir: Path, cfg) -> float:
    """The mean tuned fold macro-F1 of this config's finished folds in `mdir`, or 0."""
    scores = []
    for m in fold_metrics(mdir, cfg):
        try:
            scores.append(float(m["at_tuned_thresholds"]["macro_f1"]))
        except (KeyError, TypeError, ValueError):
            continue
    scores = [x for x in scores if 0 <= x <= 1]
    return sum(scores) / len(scores) if scores else 0.0


def format_plan(plan: Plan, cost: dict, todo: dict, done: dict, budget: float | None, n_workers: int,
                device: str, blend_s: float = 0.0) -> str:
    held = f" ({fmt_minutes(blend_s)} of it kept for the blend)" if budget is not None and blend_s else ""
    lines = [f"plan on {n_workers} worker(s) ({device}); budget "
             f"{fmt_minutes(budget) if budget is not None else 'none'}{held}:",
             f"  {'model':<24}{'folds to train':<16}{'per fold':>9}{'+ once':>8}  "
             f"{'source':<26}{'ends at':>10}  status"]
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
        per, once = (fmt_short(c.seconds), fmt_short(c.load_s)) if c else ("-", "-")  # once: load + one-off pass
        lines.append(f"  {model:<24}{folds:<16}{per:>9}{once:>8}  {(c.source if c else '-'):<26}{when:>10}  {status}")
    return "\n".join(lines)


class Estimator:
    """Seconds per fold of any config on this machine."""

    def __init__(self, data, n_train: int, device: str, machine: str, output: Path, cpu_flops: float | None = None):
        self.n_train, self.n_val = n_train, len(data.train) - n_train
        self.n_test, self.device, self.machine, self.output = len(data.test), device, machine, Path(output)

        self.chars = float(data.train[TEXT].astype(str).str.len().mean())
        self.cpu_flops = cpu_flops
        self.rate = None  # this GPU's (fixed s a sample, FLOP/s) once calibrated
        self.finished = {}  # cost kind -> [(measured, cost-model seconds)] of this run's folds
        self.probed = False

    def base(self, cfg) -> FoldCost:
        """Measured folds, else the uncorrected cost model."""
        got = measured(self.output / cfg.name, cfg, self.machine, self.n_train)
        return got or prior(cfg, self.n_train, self.n_val, self.n_test, self.chars, self.device, self.cpu_flops,
                            self.rate)

    def __call__(self, cfg) -> FoldCost:
        return self.corrected(cfg, self.base(cfg))

    def corrected(self, cfg, c: FoldCost) -> FoldCost:
        """A cost-model estimate scaled by this run's finished folds of its kind."""
        return c.scaled(self.factor(cfg)) if c.modelled else c

    def factor(self, cfg) -> float:
        return correction(self.finished.get(self.kind(cfg), []))

    def kind(self, cfg) -> tuple[str, str]:
        """The correction group of `cfg`; on a GPU all fine-tuning shares one rate."""
        kind = cost_kind(cfg)
        return (kind[0], "gpu") if self.device != "cpu" and kind[0] == "fine-tuning" else kind

    def checked(self, cfg) -> bool:
        """Whether this machine's own work backs the estimate (ladder.reserve)."""
        torch_work = cost_kind(cfg)[0] != "scikit-learn"
        return (not self.base(cfg).modelled or (self.probed and torch_work)
                or len(self.finished.get(self.kind(cfg), [])) >= CHECKED_FOLDS)

    def probes(self, cfg) -> bool:
        """Whether `cfg`'s encoder pass would re-measure this CPU: fp32 only (a bf16 pass outruns bf16 training)."""

        return (not self.probed and self.device == "cpu" and bool(self.cpu_flops) and cfg.kind == "embed"
                and cfg.backbone == config_mod.get(CALIBRATION_MODEL).backbone
                and mixed_precision(cfg.precision, "cpu") == "no")

    def probe(self, cfg, once_s: float) -> str | None:
        """Once per run, rescale cpu_flops by an encoder pass's priced over measured seconds; the line to print."""
        if not self.probes(cfg) or once_s < PROBE_MIN_S:
            return None
        priced = prior(cfg, self.n_train, self.n_val, self.n_test, self.chars, self.device, self.cpu_flops).load_s
        old, self.cpu_flops, self.probed = self.cpu_flops, self.cpu_flops * priced / once_s, True
        self.finished.pop(self.kind(cfg), None)  # priced at the measured rate now: not corrected twice
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


def correction(done_pairs: list[tuple[float, float]]) -> float:
    """Measured over estimated seconds of this run's folds, summed (1 before any)."""
    if not done_pairs:
        return 1.0
    return sum(m for m, _ in done_pairs) / max(sum(e for _, e in done_pairs), 1e-9)
