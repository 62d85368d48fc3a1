"""Multi-label emotion detection in tweets: folds, PEFT fold training, OOF blending, Kaggle submission."""

__version__ = "0.1.0"
