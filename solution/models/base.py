"""What every model family shares: a fold's fit result, the non-finite error, the classification head's name."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from solution.errors import UserError

HEAD = re.compile(r"(^|\.)(classifier|score)(\.|$)")  # the head's parameters: their own lr, trained in fp32


@dataclass
class FitResult:
    val_probs: np.ndarray  # probabilities of the kept weights on the validation rows
    history: list = field(default_factory=list)  # one dict per epoch
    kept_epoch: int | None = None
    extra: dict = field(default_factory=dict)  # samples/s, peak memory, ...


class NonFinite(UserError):
    """A fold's loss or probabilities are not finite (NaN or infinity)."""
