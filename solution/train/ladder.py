"""What a CPU time budget buys: the cpu profile as a ladder of rungs, bought by macro-F1 per minute.

Every member at its fewest epochs, then their epochs raised round-robin, then extras while they fit.
"""
from __future__ import annotations

import dataclasses

from solution import config as config_mod
from solution.config import Rung
from solution.train.budget import fmt_minutes

CPU_LADDER = config_mod.CPU_LADDER  # the cpu profile is its members (config.py)

SAFETY = 0.9  # the share of the time left a plan may use: estimates err
SAFETY_CHECKED = 0.95  # where this machine's own work backs the estimate


@dataclasses.dataclass(frozen=True)
class Choice:
    epochs: dict  # model -> epochs (0: as configured)
    configs: list  # the chosen models' configs, the user's settings and the chosen epochs applied
    left_out: list  # {"model", "reason"}
    lines: list  # printed and kept in the report

    @property
    def models(self) -> list:
        return list(self.epochs)


def choose_installing(ladder: list[Rung], cost, seconds: float, n_folds: int, settings=None, install=None,
                      done=None, blend_s=None) -> Choice:
    """choose(), then install the chosen weights; a rung that fails is left out and the rest chosen again."""
    unavailable = {}
    while True:
        choice = choose(ladder, cost, seconds, n_folds, settings, unavailable, done, blend_s)
        failed = next(((m, why) for m in choice.models if install and (why := install(m))), None)
        if failed is None:
            return choice
        unavailable[failed[0]] = failed[1]


def choose(ladder: list[Rung], cost, seconds: float, n_folds: int, settings=None, unavailable=None,
           done=None, blend_s=None) -> Choice:
    """The rungs that fit `seconds` with their reserve; `done` models cost nothing, user-set epochs are kept.

    blend_s(n): the seconds the final blend of n members needs (none by default)."""
    settings, unavailable, done = settings or (lambda name: []), unavailable or {}, done or {}
    blend_s = blend_s or (lambda n: 0.0)
    epochs, spent = {}, 0.0

    def room(more=1):  # for training, once `more` members join the blend
        return max(0.0, seconds - blend_s(len(epochs) + more))

    left_out = [{"model": m, "reason": why} for m, why in unavailable.items()]
    ladder = [r if not _user_epochs(settings(r.model)) else dataclasses.replace(r, min_epochs=0)
              for r in ladder if r.model not in unavailable]
    checked = getattr(cost, "checked", lambda cfg: False)

    def config(name, e):
        return config_mod.get(name, [*settings(name), *([f"epochs={e}"] if e else [])])

    def priced(name, e):  # (estimate, share of the time left)
        if name in done:
            return 0.0, 1.0
        cfg = config(name, e)
        c = cost(cfg)
        return c.seconds * n_folds + c.load_s, reserve(checked(cfg))

    def seconds_of(name, e):
        return priced(name, e)[0]

    def reserved(name, e):
        need, share = priced(name, e)
        return need / share

    def short(name, e):
        need, share = priced(name, e)
        return f"needs {fmt_minutes(need)}, the budget has {fmt_minutes(max(0.0, room() - spent) * share)} left"

    def displaced(r):
        if r.unless in epochs and r.model not in done:
            left_out.append({"model": r.model, "reason": f"{r.unless} is in the plan"})
            return True
        return False

    members = [r for r in ladder if not r.extra]
    for r in (r for r in members if not displaced(r)):  # 1. members at their fewest epochs
        e = done.get(r.model, r.min_epochs or 0)
        need = reserved(r.model, e)
        if r.model in done or spent + need <= room() or not epochs:  # the first member always trains
            epochs[r.model], spent = e, spent + need
        else:
            left_out.append({"model": r.model, "reason": short(r.model, e)})
    spent = _raise_epochs([r for r in members if r.model in epochs and r.min_epochs and r.model not in done],
                          epochs, reserved, spent, room(0))
    for r in (r for r in ladder if r.extra and not displaced(r)):  # 3. extras, once the members have full epochs
        full = all(epochs[m.model] in (0, _default_epochs(m.model)) for m in members
                   if m.model in epochs and m.model not in done)
        e = done.get(r.model, 0)
        need = reserved(r.model, e)
        if r.model in done or (full and spent + need <= room()):
            epochs[r.model], spent = e, spent + need
        else:
            left_out.append({"model": r.model,
                             "reason": "an extra for longer budgets" if not full else short(r.model, e)})
    return _describe(epochs, left_out, seconds, seconds_of, done, config, blend_s(len(epochs)))


def whole(ladder: list[Rung], settings=None, install=None) -> Choice:
    """No time budget: every rung at its configured epochs, unless displaced or not installable."""
    settings = settings or (lambda name: [])
    epochs, left_out = {}, []
    for r in ladder:
        why = f"{r.unless} is in the plan" if r.unless in epochs else (install(r.model) if install else None)
        if why:
            left_out.append({"model": r.model, "reason": why})
        else:
            epochs[r.model] = 0
    head = "no time budget (--time-budget none): every rung of the ladder at its full epochs, whatever it takes"
    configs = [config_mod.get(name, settings(name)) for name in epochs]
    return Choice(epochs, configs, left_out, [head, *_rung_lines(epochs, left_out, lambda name, e: "")])


def reserve(checked: bool) -> float:
    return SAFETY_CHECKED if checked else SAFETY


def _user_epochs(items: list[str]) -> bool:
    return any(o.split("=", 1)[0].strip() == "epochs" for o in items)


def _default_epochs(name: str) -> int:
    return getattr(config_mod.get(name), "epochs", 0)


def _raise_epochs(rungs, epochs: dict, seconds_of, spent: float, budget: float) -> float:
    """2. one more epoch at a time, round-robin, while it fits."""
    grew = True
    while grew:
        grew = False
        for r in rungs:
            e = epochs[r.model]
            if e and e < _default_epochs(r.model):
                extra = seconds_of(r.model, e + 1) - seconds_of(r.model, e)
                if spent + extra <= budget:
                    epochs[r.model], spent, grew = e + 1, spent + extra, True
    return spent


def _describe(epochs: dict, left_out: list, seconds: float, seconds_of, done: dict, config, blend: float) -> Choice:
    spent = sum(seconds_of(name, e) for name, e in epochs.items())
    lines = [f"time budget, {fmt_minutes(seconds)} left: planned {fmt_minutes(spent)} of training "
             f"(+{fmt_minutes(blend)} for the blend of {len(epochs)}; kept in reserve: {round((1 - SAFETY) * 100)}% of "
             f"an estimate, {round((1 - SAFETY_CHECKED) * 100)}% once work timed here backs it)"]
    lines += _rung_lines(epochs, left_out,
                         lambda name, e: "trained" if name in done else fmt_minutes(seconds_of(name, e)))
    return Choice(dict(epochs), [config(name, e) for name, e in epochs.items()], left_out, lines)


def _rung_lines(epochs: dict, left_out: list, cost) -> list[str]:
    lines = []
    for name, e in epochs.items():
        full = _default_epochs(name)
        what = f"{e} of {full} epochs" if e and e != full else (f"{full} epochs" if full else "")
        lines.append(f"  + {name:<20} {cost(name, e):>9}  {what}")
    return lines + [f"  - {d['model']:<20} {'':>9}  {d['reason']}" for d in left_out]
