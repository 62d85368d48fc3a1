"""A small synthetic demo set in the competition's format, so `./run.sh` runs end to end without data.

Each tweet mixes phrases (written for this project) of 0-3 emotions; every result on it is marked as a demo.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from solution import config as config_mod
from solution.data import DEFAULT_LABELS
from solution.io import write_csv

PHRASES = {
    "anger": ["this is outrageous", "I am so furious right now", "stop lying to us", "absolutely livid about the delay",
              "who thought this was acceptable", "#angry at the refs again", "I could scream"],
    "anticipation": ["can't wait for tomorrow", "counting down the days", "what will happen next",
                     "tickets booked for the final", "so curious about the new season", "soon, very soon #waiting"],
    "disgust": ["that is revolting", "gross behaviour honestly", "makes me sick to watch", "vile comments everywhere",
                "ugh, nasty", "I can't stomach this #disgusting"],
    "fear": ["I'm terrified of the storm", "this scares me", "nervous about the exam", "so anxious tonight",
             "afraid of what comes next", "#scared to walk home alone"],
    "joy": ["best day ever", "laughing so hard", "feeling great today 😂", "what a happy morning",
            "so much fun with friends", "pure delight #happy"],
    "love": ["love you all ❤️", "my heart belongs to you", "adore my family", "sending hugs and kisses",
             "forever grateful for my sweetheart", "❤️ ❤️"],
    "optimism": ["things will get better", "keep going, you've got this", "tomorrow is a new chance",
                 "stay positive #motivation", "we will win this", "believe in yourself"],
    "pessimism": ["nothing ever works out", "it will only get worse", "why even try", "doomed as usual",
                  "no hope left for this team", "expect the worst #pessimist"],
    "sadness": ["feeling so down", "I miss you so much", "tears all night 😢", "heartbroken again",
                "such a sad news day", "lonely and blue #depressed"],
    "surprise": ["wow, did not see that coming", "omg what a twist", "I'm shocked!", "unbelievable result",
                 "no way, really?!", "#surprise out of nowhere"],
    "trust": ["you can count on me", "I trust my team completely", "reliable as always", "she kept her promise",
              "honest people are rare", "faith in my friends #trust"],
}
NEUTRAL = ["just got home", "watching the match", "@friend see you later", "morning coffee", "new post is up",
           "on the train, again", "lunch time", "reading the news", "it's Monday", "the weather today, huh"]
N_TRAIN = 480
# label frequencies close to the competition's (surprise and trust are rare there too)
RATES = dict(zip(DEFAULT_LABELS, [0.35, 0.15, 0.33, 0.18, 0.35, 0.12, 0.28, 0.12, 0.28, 0.08, 0.08]))


def make_demo(n_train: int = N_TRAIN, n_test: int = 120,
              seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    labels = DEFAULT_LABELS
    n = n_train + n_test
    y = np.zeros((n, len(labels)), dtype=np.int8)
    tweets = []
    for i in range(n):
        active = [j for j, lab in enumerate(labels) if rng.random() < RATES[lab]][:3]
        if i < 2 * len(labels):  # every label present in train, twice at least
            active = sorted({i % len(labels), *active[:1]})
        parts = [str(rng.choice(NEUTRAL))] if rng.random() < 0.6 or not active else []
        for j in active:
            parts.append(str(rng.choice(PHRASES[labels[j]])))
            y[i, j] = 1
        # a little label noise so that scores are not perfect
        if rng.random() < 0.08:
            j = int(rng.integers(len(labels)))
            y[i, j] = 1 - y[i, j]
        rng.shuffle(parts)
        tweets.append(" ".join(parts))
    ids = [f"demo-{i:05d}" for i in range(n)]
    train = pd.DataFrame({"ID": ids[:n_train], "Tweet": tweets[:n_train]})
    for j, lab in enumerate(labels):
        train[lab] = y[:n_train, j]
    test = pd.DataFrame({"ID": ids[n_train:], "Tweet": tweets[n_train:]})
    sample = pd.DataFrame({"ID": ids[n_train:]})
    for lab in labels:
        sample[lab] = 0
    return train, test, sample


def write_demo(directory: str | Path, **kwargs) -> Path:
    directory = Path(directory)
    train, test, sample = make_demo(**kwargs)
    write_csv(train, directory / "train.csv")
    write_csv(test, directory / "test.csv")
    write_csv(sample, directory / "sample_submission.csv")
    return directory


def weak_here(models) -> list[str]:
    """One line for each member that is expected weak on the demo set: it fine-tunes, which 480 tweets and a
    minute do not teach."""
    return [f"{m} fine-tunes a transformer, which {N_TRAIN} generated tweets in a minute barely teach: expect it weak "
            f"on the demo (it is not on the competition's data)" for m in models if config_mod.get(m).kind == "hf"]
