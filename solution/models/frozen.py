"""Frozen lower blocks, run once per tweet: training and prediction start from their cached output.

With `frozen_layers=K` the embeddings and the first K transformer blocks of an encoder never train, so their
output for a tweet is the same in every epoch and every fold: it is computed once (one inference pass over the
tweets, memoised in-process like the embedding members' vectors) and every training step runs only the blocks
above. `adapter_layers` stops the backward pass at the lowest adapted block; this stops the forward pass there
too, which on a CPU is most of what a top-blocks-only adapter still costs. Written by hand: neither transformers
nor peft caches the output of a frozen prefix of the network.

How: the blocks stay in the model under their own names (saving, loading and peft's layer indices do not
change) in a `Window` that iterates over the top blocks only, and a forward hook on the embeddings replaces
their output with each row's cached states. `prefill` fills the cache through the same model, the window on the
bottom blocks, in eval mode, in one deterministic pass (sorted by length): every fold of a run prefills the
same train tweets, so every fold and every resumed process reads the same floats (a debug cap,
max_train_samples, or a smaller batch after out-of-memory changes the batches and may move the last bits).
"""
from __future__ import annotations

import torch
from torch import nn

from solution.errors import UserError

_STATES: dict[tuple, dict[tuple, torch.Tensor]] = {}  # (weights, device, precision, K) -> token ids -> states
_SECONDS = [0.0]  # spent in prefill passes by this process (train.py records a fold's share as once_s)
ATTR = "_solution_frozen"  # where the transformers model keeps its FrozenBottom


class Window(nn.ModuleList):
    """The encoder's blocks, every one registered under its own index; iteration yields blocks lo..hi-1."""

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
        for name, p in base.named_parameters():  # shared parameters (MPNet's position bias) freeze with the bottom
            p.requires_grad_(p.requires_grad and self.trains(name))
        setattr(model, ATTR, self)

    def trains(self, name: str) -> bool:
        """Whether a parameter of the encoder (its name relative to it) may train: the top blocks' and the pooler's."""
        parts = name.split(".")
        if parts[:2] == ["encoder", "layer"]:
            return int(parts[2]) >= self.k
        return parts[0] == "pooler"

    def key(self, ids) -> tuple:
        ids = list(ids)
        while len(ids) > 1 and ids[-1] == self.pad_id:  # right padding (hf.py pads right throughout)
            ids.pop()
        return tuple(ids)

    def _serve(self, _module, args, kwargs, output):
        if not self.serving:
            return output
        ids = kwargs.get("input_ids", args[0] if args else None)
        out = output.new_zeros(output.shape)  # pad positions: masked out of attention and pooling alike
        for r, row in enumerate(ids.tolist()):
            state = self.states.get(self.key(row))
            if state is None:
                raise RuntimeError("frozen_layers: a tweet reached the model before its states were prefilled")
            out[r, :len(state)] = state.to(out.device, out.dtype)
        return out

    def prefill(self, seqs, batch_size: int, autocast) -> None:
        """Run the bottom blocks once over every sequence not yet cached (token ids, unpadded)."""
        todo = sorted({self.key(s) for s in seqs} - self.states.keys(), key=lambda s: (len(s), s))
        if not todo:
            return
        import time

        from solution.models.hf import progress

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
        # the last hidden state as the encoder hands it on: MPNet's mean pooling rewrites last_hidden_state
        states = self.base(input_ids=ids.to(dev), attention_mask=mask.to(dev), output_hidden_states=True).hidden_states[-1]
        for r, s in enumerate(batch):
            self.states[s] = states[r, :len(s)].float().cpu().clone()


def install(model: nn.Module, k: int, context: tuple) -> None:
    """Freeze the embeddings and the first k blocks of `model` (k=0: nothing); `context` names the weights, device
    and precision that make their output, so that one cache serves every fold of a model and no other model."""
    if k:
        FrozenBottom(model, k, context)


def of(model) -> FrozenBottom | None:
    """The FrozenBottom of a transformers model, or of the one inside a peft model."""
    for mod in (model, getattr(getattr(model, "base_model", None), "model", None)):
        if mod is not None and ATTR in vars(mod):
            return vars(mod)[ATTR]
    return None


def seconds() -> float:
    """Seconds this process has spent running frozen blocks (prefill passes)."""
    return _SECONDS[0]


def release() -> None:
    for states in _STATES.values():  # a model still held elsewhere keeps its dict, emptied
        states.clear()
    _STATES.clear()
