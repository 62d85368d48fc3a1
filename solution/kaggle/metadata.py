"""kernel-metadata.json: the ids, slugs and accelerator `kernel` writes, checked before anything is written."""
from __future__ import annotations

import os
import re

from solution.errors import UserError

PLACEHOLDER_OWNER = "your-kaggle-username"


SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")  # owners, kernels, datasets, competitions


MODEL_PART = re.compile(r"^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$")  # model and variation slugs may hold dots: 1.1-2b-it


VERSION = re.compile(r"^[0-9]+$")


HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


# a GPU notebook without a machine shape may get a P100, which the current Kaggle torch cannot run
GPU_SHAPES = {
    "NvidiaTeslaT4": "GPU T4 x2, Kaggle's default GPU (2 x 16 GB, compute capability 7.5)",
    "NvidiaL4": "GPU L4 (only where Kaggle offers it)",
    "NvidiaL4X1": "one GPU L4 (only where Kaggle offers it)",
    "NvidiaTeslaA100": "GPU A100 (only in some competitions)",
    "NvidiaH100": "GPU H100 (only in some competitions)",
    "NvidiaRtxPro6000": "GPU RTX PRO 6000 (only in some competitions)",
}


DEFAULT_ACCELERATOR = "NvidiaTeslaT4"


NOT_FOR_THE_KIT = {"nvidiateslap100": "the P100 is retired on Kaggle, and current Kaggle torch has no kernels for "
                                      "its compute capability 6.0"}


def problems_slug(value, what: str, pattern=SLUG, max_len: int = 50) -> list[str]:
    if not isinstance(value, str) or not pattern.match(value):
        return [f"{what} {value!r}: expected lowercase letters, digits and hyphens"]
    if len(value) > max_len:
        return [f"{what} {value!r}: longer than {max_len} characters"]
    return []


def problems_ref(value, what: str, slashes: int) -> list[str]:
    if not isinstance(value, str) or value.count("/") != slashes:
        shape = {1: "owner/slug", 4: "owner/model/framework/variation/version"}.get(slashes, "slug")
        return [f"{what} {value!r}: expected {shape} ({slashes} slash{'es' if slashes != 1 else ''})"]
    parts = value.split("/")
    if slashes == 4:
        owner, model, framework, variation, version = parts
        out = problems_slug(owner, f"{what} owner") + problems_slug(model, f"{what} model", MODEL_PART)
        out += problems_slug(framework, f"{what} framework")
        out += problems_slug(variation, f"{what} variation", MODEL_PART)
        if not VERSION.match(version):
            out.append(f"{what} {value!r}: version {version!r} must be a number")
        return out
    return [p for i, part in enumerate(parts)
            for p in problems_slug(part, f"{what} {'owner' if i == 0 and slashes else 'slug'} in {value!r}",
                                    max_len=50 if slashes else 100)]


def accelerator(value: str) -> str:
    """The canonical machine_shape for --accelerator, in any case."""
    name = {k.lower(): k for k in GPU_SHAPES}.get(str(value).strip().lower())
    if name:
        return name
    key = str(value).strip().lower()
    why = NOT_FOR_THE_KIT.get(key) or ("a TPU: the kit trains with torch on CUDA or the CPU" if key.startswith("tpu")
                                       else "not one of Kaggle's GPU machine shapes")
    raise UserError(f"--accelerator {value!r}: {why}; choose one of {', '.join(GPU_SHAPES)} "
                    f"(default {DEFAULT_ACCELERATOR}: {GPU_SHAPES[DEFAULT_ACCELERATOR]})")


def problems_shape(shape, enable_gpu) -> list[str]:
    if shape not in GPU_SHAPES:
        return [f"machine_shape {shape!r}: expected one of {', '.join(GPU_SHAPES)}"]
    if enable_gpu is not True:
        return [f"machine_shape {shape!r} is a GPU: it needs enable_gpu true"]
    return []


def validate_metadata(meta: dict) -> dict:
    """Check the fields as `kaggle kernels push` needs them."""
    problems = problems_ref(meta.get("id"), "id", 1)
    title = meta.get("title")
    if not isinstance(title, str) or not 5 <= len(title.strip()) <= 50:
        problems.append(f"title {title!r}: expected 5 to 50 characters")
    code_file = meta.get("code_file")
    if not isinstance(code_file, str) or not code_file.endswith(".ipynb") or "/" in code_file:
        problems.append(f"code_file {code_file!r}: expected a .ipynb file name beside the metadata")
    if meta.get("language") != "python":
        problems.append(f"language {meta.get('language')!r}: expected 'python'")
    if meta.get("kernel_type") != "notebook":
        problems.append(f"kernel_type {meta.get('kernel_type')!r}: expected 'notebook'")
    for key in ("is_private", "enable_gpu", "enable_internet"):
        if not isinstance(meta.get(key), bool):
            problems.append(f"{key} {meta.get(key)!r}: expected a JSON boolean (true/false)")
    if "machine_shape" in meta:
        problems += problems_shape(meta["machine_shape"], meta.get("enable_gpu"))
    if meta.get("enable_internet") is not False:
        problems.append("enable_internet must be false: the notebook runs offline (code competitions require it; "
                        "Kaggle turns internet on when the field is missing)")
    for key, slashes in (("competition_sources", 0), ("dataset_sources", 1), ("kernel_sources", 1),
                         ("model_sources", 4)):
        values = meta.get(key, [])
        if not isinstance(values, list):
            problems.append(f"{key}: expected a list")
            continue
        if len(set(values)) != len(values):
            problems.append(f"{key}: duplicates in {values}")
        for v in values:
            if slashes == 0 and isinstance(v, str) and "/" in v:
                problems.append(f"{key} entry {v!r}: expected a competition slug (0 slashes)")
            elif slashes == 0:
                problems += problems_slug(v, f"{key} entry", max_len=100)
            else:
                problems += problems_ref(v, f"{key} entry", slashes)
    if problems:
        raise UserError("kernel metadata: " + "; ".join(problems))
    return meta


def owner_name() -> str:
    owner = os.environ.get("KAGGLE_USERNAME", "").strip().lower()
    if owner:
        return owner
    print(f"note: KAGGLE_USERNAME is not set, so the kernel and dataset ids use the placeholder owner "
          f"{PLACEHOLDER_OWNER!r}: set KAGGLE_USERNAME and regenerate, or edit the ids in the metadata files "
          f"before pushing")
    return PLACEHOLDER_OWNER


def with_owner(value: str, owner: str, what: str) -> str:
    value = value.strip()
    ref = value if "/" in value else f"{owner}/{value}"
    problems = problems_ref(ref, what, 1)
    if problems:
        raise UserError("; ".join(problems))
    return ref


def slugify(title: str) -> str:
    """Kaggle's slug of a title: lowercase, runs of other characters become one hyphen."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def parse_mapping(items: list[str], flag: str, slashes: int) -> dict[str, str]:
    """HUB_ID=handle items into {hub id: handle}."""
    out = {}
    for item in items:
        hub_id, sep, ref = item.partition("=")
        hub_id, ref = hub_id.strip(), ref.strip()
        if not sep or not hub_id or not ref:
            raise UserError(f"{flag} {item!r}: expected HUB_ID=" +
                            ("owner/model/framework/variation/version" if slashes == 4 else "owner/dataset"))
        if not HUB_ID.match(hub_id):
            raise UserError(f"{flag} {item!r}: {hub_id!r} is not a hub id like google/gemma-1.1-2b-it")
        problems = problems_ref(ref, flag, slashes)
        if problems:
            raise UserError("; ".join(problems))
        out[hub_id] = ref
    return out


def mount_path(ref: str) -> str:
    """Where Kaggle mounts an attached source, relative to /kaggle/input."""
    parts = ref.split("/")
    if len(parts) == 5:  # owner/model/framework/variation/version -> model/framework/variation/version
        return "/".join(parts[1:])
    return parts[-1]  # owner/dataset or owner/kernel -> slug

