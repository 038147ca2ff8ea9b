"""SQuAD v1.1 / v2.0: data and features (`data`), post-processing (`postprocess`), the official evaluation (`evaluate`), the dev split tool (`split`), the task (`task`) and its exports (`export`).

The main names are imported on first use, so that the TensorFlow-free modules (settings, data readers) load
without TensorFlow.
"""
from albert_tf.lazy_names import attach

attach(globals(), {"SquadRun": "settings", "SquadTask": "task"})
