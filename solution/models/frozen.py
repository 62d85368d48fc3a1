"""Frozen lower blocks (`frozen_layers=K`), run once per tweet: training and prediction start from their cached
output, which neither transformers nor peft caches. A hook on the embeddings serves the cached states.
"""
from __future__ import annotations

import torch
from torch import nn

from solution.errors import UserError
from solution.log import progress

_STATES: dict[tuple, dict[tuple, torch.Tensor]] = {}  # (weights, device, precision, K) -> ids -> states
_SECONDS = [0.0]  # in prefill passes
ATTR = "_solution_frozen"


class Window(nn.ModuleList):
    """All blocks keep their registered names (and weights' keys); iteration yields blocks lo..hi-1."""

    lo: int = 0
    hi: int | None = None

    def __iter__(self):
        return iter(list(self._modules.values())[self.lo:self.hi])


class FrozenBottom:
    def __init__(self, model: nn.Module, k: int, context: tuple):
        base = model.base_model
        blocks = getattr(getattr(base, "encoder", None), "layer", None)
        if not isinstance(blocks, nn.ModuleList) or not hasattr(base, "embeddings"):
            raise UserError(f"frozen_layers needs an encoder whose blocks are encoder.layer (BERT, MPNet, RoBERTa); "
                            f"{type(model).__name__} has none: use frozen_layers=0")
        if not 0 < k < len(blocks):
            raise UserError(f"frozen_layers={k}, but the model has {len(blocks)} blocks: keep at least one to train")
        self.base, self.k = base, k
        self.window = Window(list(blocks))
        self.window.lo = k
        base.encoder.layer = self.window
        self.pad_id = model.config.pad_token_id
        self.states = _STATES.setdefault((*context, k), {})
        self.serving = True
        base.embeddings.register_forward_hook(self._serve, with_kwargs=True)
        for name, p in base.named_parameters():  # MPNet's shared position bias freezes too
            p.requires_grad_(p.requires_grad and self.trains(name))
        setattr(model, ATTR, self)

    def trains(self, name: str) -> bool:
        parts = name.split(".")
        if parts[:2] == ["encoder", "layer"]:
            return int(parts[2]) >= self.k
        return parts[0] == "pooler"

    def key(self, ids) -> tuple:
        ids = list(ids)
        while len(ids) > 1 and ids[-1] == self.pad_id:  # hf.py pads right
            ids.pop()
        return tuple(ids)

    def _serve(self, _module, args, kwargs, output):
        if not self.serving:
            return output
        ids = kwargs.get("input_ids", args[0] if args else None)
        out = output.new_zeros(output.shape)  # pad positions are masked out
        for r, row in enumerate(ids.tolist()):
            state = self.states.get(self.key(row))
            if state is None:
                raise RuntimeError("frozen_layers: a tweet reached the model before its states were prefilled")
            out[r, :len(state)] = state.to(out.device, out.dtype)
        return out

    def prefill(self, seqs, batch_size: int, autocast) -> None:
        """Run the bottom blocks over every sequence not yet cached, sorted so every fold and process reads the
        same floats."""
        todo = sorted({self.key(s) for s in seqs} - self.states.keys(), key=lambda s: (len(s), s))
        if not todo:
            return
        import time

        t0 = time.time()
        bottom = [self.base.embeddings, *list(self.window._modules.values())[:self.k]]
        was = [mod.training for mod in bottom]
        self.serving, self.window.lo, self.window.hi = False, 0, self.k
        try:
            for mod in bottom:
                mod.eval()
            with torch.inference_mode(), autocast():
                for s in progress(range(0, len(todo), batch_size), desc=f"frozen blocks 1-{self.k}"):
                    self._run(todo[s:s + batch_size])
        finally:
            self.serving, self.window.lo, self.window.hi = True, self.k, None
            for mod, w in zip(bottom, was):
                mod.train(w)
            _SECONDS[0] += time.time() - t0

    def _run(self, batch: list[tuple]) -> None:
        width = max(map(len, batch))
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for r, s in enumerate(batch):
            ids[r, :len(s)], mask[r, :len(s)] = torch.tensor(s), 1
        dev = self.base.device
        # MPNet's mean pooling rewrites last_hidden_state; hidden_states[-1] is what the encoder hands on
        states = self.base(input_ids=ids.to(dev), attention_mask=mask.to(dev),
                           output_hidden_states=True).hidden_states[-1]
        for r, s in enumerate(batch):
            self.states[s] = states[r, :len(s)].float().cpu().clone()


def install(model: nn.Module, k: int, context: tuple) -> None:
    """Freeze the embeddings and first k blocks; `context` keys the cache."""
    if k:
        FrozenBottom(model, k, context)


def of(model) -> FrozenBottom | None:
    for mod in (model, getattr(getattr(model, "base_model", None), "model", None)):
        if mod is not None and ATTR in vars(mod):
            return vars(mod)[ATTR]
    return None


def seconds() -> float:
    return _SECONDS[0]


def release() -> None:
    for states in _STATES.values():  # a model still held keeps its dict, emptied
        states.clear()
    _STATES.clear()
