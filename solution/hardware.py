"""What this machine can run: visible GPUs, whether torch has kernels for them, each device's mixed precision.

`torch.cuda.is_bf16_supported()` counts slow emulation, so the compute capability decides bf16 or fp16.
"""
from __future__ import annotations

import os
from pathlib import Path

from solution.errors import UserError

BF16_CAPABILITY = (8, 0)  # Ampere: native bf16 tensor cores
KAGGLE_T4_HINT = ("on Kaggle turn on Settings > Accelerator > GPU T4 x2 in the editor, or push with `kaggle kernels "
                  "push -p output/kernel --accelerator NvidiaTeslaT4`")


def cuda_count() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def torch_runs_on(capability: tuple[int, int], arch_list: list[str]) -> bool:
    """sm_XY runs on major X, minor >= Y; PTX (compute_XY) on any capability >= XY."""
    major, minor = capability
    for arch in arch_list:
        kind, _, num = arch.partition("_")
        digits = num.rstrip("abf")  # sm_90a, sm_100f: architecture-specific
        if not digits.isdigit() or len(digits) < 2:
            continue
        a_major, a_minor = int(digits[:-1]), int(digits[-1])
        if kind == "sm" and a_major == major and a_minor <= minor and digits == num:
            return True
        if kind == "compute" and (a_major, a_minor) <= (major, minor):
            return True
    return False


def gpu_problem(index: int, name: str, capability: tuple[int, int], arch_list: list[str],
                torch_version: str) -> str | None:
    if not arch_list or torch_runs_on(capability, arch_list):
        return None
    built = ", ".join(a for a in arch_list if a.startswith("sm_")) or ", ".join(arch_list)
    return (f"GPU {index} is a {name} (compute capability {capability[0]}.{capability[1]}), which torch "
            f"{torch_version} cannot run (it has kernels for {built}): {KAGGLE_T4_HINT}; elsewhere install a "
            f"torch built for this GPU, or hide it with CUDA_VISIBLE_DEVICES= to train on the CPU")


def check_gpus() -> int:
    """Refuse a visible GPU this torch has no kernels for; returns the GPU count."""
    n = cuda_count()
    if not n:
        return 0
    import torch

    arch_list = torch.cuda.get_arch_list()
    for i in range(n):
        problem = gpu_problem(i, torch.cuda.get_device_name(i), torch.cuda.get_device_capability(i), arch_list,
                              torch.__version__)
        if problem:
            raise UserError(problem)
    return n


def world_size() -> int:
    """Processes training one fold together (`accelerate launch`); 1 otherwise."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def is_main_process() -> bool:
    """The process that writes files and talks."""
    return int(os.environ.get("RANK", "0") or 0) == 0


def cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def capability_precision(capability: tuple[int, int]) -> str:
    return "bf16" if tuple(capability) >= BF16_CAPABILITY else "fp16"


def mixed_precision(requested: str, device_type: str, capability: tuple[int, int] | None = None) -> str:
    """The Accelerator's `mixed_precision` for a config's `precision`."""
    if requested == "fp32":
        return "no"
    if requested in ("bf16", "fp16"):
        if requested == "fp16" and device_type == "cpu":
            raise UserError("precision=fp16 needs a CUDA GPU; on a CPU use precision=bf16 or fp32")
        return requested
    if device_type == "cuda":
        return capability_precision(capability or (0, 0))
    return "bf16" if cpu_has_bf16() else "no"


def set_threads(n: int) -> None:
    """n torch threads, or one per physical core for 0: hyper-threads slow matmuls down."""
    import torch

    if n <= 0:
        n = usable_cores()
    torch.set_num_threads(n)


def usable_cores() -> int:
    """Physical cores this process may run on."""
    try:
        import psutil

        physical = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    except ImportError:
        physical = os.cpu_count() or 1
    try:
        allowed = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        allowed = physical
    return max(1, min(physical, allowed))
