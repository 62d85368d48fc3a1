"""Model families: each builds a fold model from its config.

A fold model has `fit(train_texts, y_train, val_texts, y_val, log_dir) -> FitResult`,
`predict(texts) -> probs`, `save(dir)` and a classmethod `load(dir, cfg, labels)` (models/base.py, registry.py).
"""
