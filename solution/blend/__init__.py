"""Blending: OOF scores, per-class thresholds, the blend or stacker, the report and the submission."""
