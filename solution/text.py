"""Tweet normalisation shared by every model: emoji to words, hashtags split, mentions and links masked."""
from __future__ import annotations

import re

_URL = re.compile(r"https?://\S+|www\.\S+")
_MENTION = re.compile(r"@\w+")
_HASHTAG = re.compile(r"#(\w+)")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])")
_SPACES = re.compile(r"\s+")


def _hashtag(m: re.Match) -> str:
    # "#SoHappy" -> "# so happy": the words carry the emotion, the '#' marks it was a tag
    words = _CAMEL.sub(" ", m.group(1)).replace("_", " ")
    return f"# {words.lower()}"


def normalize(text: str) -> str:
    import emoji

    text = "" if text is None else str(text)
    text = _URL.sub(" http ", text)
    text = _MENTION.sub(" @user ", text)
    text = _HASHTAG.sub(_hashtag, text)
    # ":face_with_tears_of_joy:" -> " face with tears of joy ": words a tokenizer knows
    text = emoji.demojize(text, delimiters=(" ", " "))
    text = text.replace("_", " ")
    return _SPACES.sub(" ", text).strip()


def prepare(texts, mode: str = "tweet", prompt: str = "") -> list[str]:
    out = [normalize(t) if mode == "tweet" else ("" if t is None else str(t)) for t in texts]
    return [prompt + t for t in out] if prompt else out
