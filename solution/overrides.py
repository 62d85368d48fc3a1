"""--set KEY=VALUE on a config: each value cast to the type of the setting's default, unknown keys refused."""
from __future__ import annotations

import dataclasses
from dataclasses import fields

from solution.errors import UserError


def _cast(value: str, default, key: str):
    try:
        if isinstance(default, bool):
            v = value.strip().lower()
            if v not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return v in ("true", "1", "yes")
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, tuple):
            return tuple(int(x) for x in value.split(","))
        if isinstance(default, list):
            return [x.strip() for x in value.split(",") if x.strip()]
        return value
    except ValueError:
        raise UserError(f"--set {key}={value}: expected {type(default).__name__}") from None


def apply_overrides(cfg, overrides: list[str] | dict | None):
    """`cfg` with the --set items applied (a dict: already typed values); the new config is checked by get()."""
    if not overrides:
        return cfg
    items = overrides.items() if isinstance(overrides, dict) else [_split(o) for o in overrides]
    names = {f.name for f in fields(cfg)}
    changes = {}
    for key, value in items:
        if key not in names or key in ("kind",):
            raise UserError(f"--set {key}: {cfg.name} has no setting {key!r}; "
                            f"settings: {', '.join(sorted(names - {'kind'}))}")
        default = getattr(cfg, key)
        changes[key] = _cast(value, default, key) if isinstance(value, str) and not isinstance(default, str) else value
    return dataclasses.replace(cfg, **changes)


def _split(item: str) -> tuple[str, str]:
    if "=" not in item:
        raise UserError(f"--set {item!r}: expected key=value")
    k, v = item.split("=", 1)
    return k.strip(), v

