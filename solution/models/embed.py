"""Frozen sentence embeddings + one-vs-rest logistic regression; memoised, so all folds cost one encoder pass."""
from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np

from solution.errors import UserError
from solution.hardware import mixed_precision, set_threads
from solution.io import atomic_path
from solution.log import progress
from solution.models.base import FitResult
from solution.models.linear import fit_per_label, predict_per_label
from solution.models.weights import not_found_message, resolve
from solution.text import prepare

_MEMO: dict[tuple, np.ndarray] = {}
_SECONDS = [0.0]  # in encoder passes


def pooled(states, attention_mask) -> np.ndarray:
    """Each layer's states mean-pooled over non-pad tokens and L2-normalised, layers side by side."""
    import torch

    mask = attention_mask.unsqueeze(-1).float()
    vecs = [torch.nn.functional.normalize((h.float() * mask).sum(1) / mask.sum(1).clamp(min=1), dim=-1)
            for h in states]
    return torch.cat(vecs, dim=-1).numpy().astype(np.float32)


class EmbedModel:
    def __init__(self, cfg, labels):
        self.cfg, self.labels = cfg, labels
        self.classifiers = []
        self._encoder = None
        # by training's rule for this CPU
        self.precision = mixed_precision(cfg.precision, "cpu")

    def _load_encoder(self):
        import torch
        from transformers import AutoModel, AutoTokenizer

        set_threads(self.cfg.num_threads)
        path = resolve(self.cfg.backbone, self.cfg.weights)
        try:
            tok = AutoTokenizer.from_pretrained(path)
            model = AutoModel.from_pretrained(path).eval()
        except (OSError, ValueError) as e:
            raise UserError(not_found_message(self.cfg.backbone, e)) from None
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token or tok.unk_token
        depth = model.config.num_hidden_layers
        if self.cfg.layers > depth:
            raise UserError(f"{self.cfg.name}: layers={self.cfg.layers}, but {self.cfg.backbone} has {depth} layers")
        self._encoder = (tok, model, torch)

    def embed(self, texts) -> np.ndarray:
        texts = prepare(texts, self.cfg.preprocess, self.cfg.prompt)
        key = (self.cfg.backbone, self.cfg.weights, self.cfg.max_length, self.cfg.layers, self.precision)
        todo = sorted({t for t in texts if (key, _h(t)) not in _MEMO})
        if todo:
            if self._encoder is None:
                self._load_encoder()
            tok, model, torch = self._encoder
            import time

            t0 = time.time()
            order = sorted(range(len(todo)), key=lambda i: len(todo[i]))
            bs = self.cfg.eval_batch_size
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16"):
                for s in progress(range(0, len(order), bs), desc=f"{self.cfg.name} embed"):
                    batch = [todo[i] for i in order[s:s + bs]]
                    enc = tok(batch, truncation=True, max_length=self.cfg.max_length, padding=True, return_tensors="pt")
                    vec = pooled(self._states(model, enc), enc["attention_mask"])
                    for t, v in zip(batch, vec):
                        _MEMO[(key, _h(t))] = v
            _SECONDS[0] += time.time() - t0
        return np.stack([_MEMO[(key, _h(t))] for t in texts])

    def _states(self, model, enc) -> tuple:
        """The last `layers` layers' token states; the others are asked for only when read, to save memory."""
        n = self.cfg.layers
        out = model(**enc, output_hidden_states=n > 1)
        return out.hidden_states[-n:] if n > 1 else (out.last_hidden_state,)

    def fit(self, train_texts, y_train, val_texts, y_val, log_dir=None) -> FitResult:
        # one pass: every fold and process sees the same batches, so the same floats
        self.embed(list(train_texts) + list(val_texts))
        self.classifiers = self.fit_classifiers(self.embed(train_texts), y_train)
        return FitResult(val_probs=self.predict(val_texts))

    def fit_classifiers(self, X: np.ndarray, y: np.ndarray) -> list:
        from sklearn.linear_model import LogisticRegression

        cw = None if self.cfg.class_weight == "none" else "balanced"
        return fit_per_label(X, y, lambda: LogisticRegression(
            C=self.cfg.C, class_weight=cw, max_iter=3000, random_state=self.cfg.seed))

    def predict(self, texts) -> np.ndarray:
        return predict_per_label(self.classifiers, self.embed(list(texts)))

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(directory / "model.pkl") as tmp, open(tmp, "wb") as f:
            pickle.dump({"classifiers": self.classifiers}, f)

    @classmethod
    def load(cls, directory: Path, cfg, labels) -> "EmbedModel":
        m = cls(cfg, labels)
        with open(Path(directory) / "model.pkl", "rb") as f:
            m.classifiers = pickle.load(f)["classifiers"]
        return m


def seconds() -> float:
    return _SECONDS[0]


def _h(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()
