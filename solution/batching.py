"""Batches for training and inference: length-grouped, dynamically padded."""
from __future__ import annotations

import numpy as np


def length_grouped(lengths, batch_size: int, rng: np.random.Generator, mega: int = 50) -> list[np.ndarray]:
    """Shuffled batches of similar length (less padding), longest batch first.

    Rows are shuffled, cut into mega-batches of `mega * batch_size`, sorted by length inside each, cut
    into batches, and the batch order shuffled again. The batch holding the longest row goes first so
    an out-of-memory error shows up at the first step, not an hour in.
    """
    lengths = np.asarray(lengths)
    idx = rng.permutation(len(lengths))
    batches = []
    for start in range(0, len(idx), batch_size * mega):
        chunk = idx[start:start + batch_size * mega]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    batches = [batches[i] for i in rng.permutation(len(batches))]
    if batches:
        first = int(np.argmax([lengths[b].max() for b in batches]))
        batches.insert(0, batches.pop(first))
    return batches


def random_batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    idx = rng.permutation(n)
    return [idx[i:i + batch_size] for i in range(0, n, batch_size)]


def sorted_batches(lengths, batch_size: int) -> list[np.ndarray]:
    """Inference: longest first, so padding is minimal and memory peaks at once."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def pad(seqs: list[list[int]], pad_id: int, side: str = "right") -> tuple[np.ndarray, np.ndarray]:
    """(input_ids, attention_mask) padded to the longest sequence of the batch."""
    width = max(len(s) for s in seqs)
    ids = np.full((len(seqs), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(seqs), width), dtype=np.int64)
    for i, s in enumerate(seqs):
        if side == "right":
            ids[i, :len(s)], mask[i, :len(s)] = s, 1
        else:
            ids[i, width - len(s):], mask[i, width - len(s):] = s, 1
    return ids, mask
