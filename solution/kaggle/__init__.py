"""Kaggle: the notebook kit, its wheels, the kaggle CLI and submitting."""
