"""Pretraining: instance generation (`data`, TensorFlow-free; `beam` on Apache Beam), the MLM + SOP task (`task`).

The main names are imported on first use, so that the TensorFlow-free modules (settings, data readers) load
without TensorFlow.
"""
from albert_tf.lazy_names import attach

attach(globals(), {"PretrainingRun": "settings", "PretrainingTask": "task"})
