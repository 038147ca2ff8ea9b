"""RACE multiple choice: data and features (`data`), the task (`task`).

The main names are imported on first use, so that the TensorFlow-free modules (settings, data readers) load
without TensorFlow.
"""
from albert_tf.lazy_names import attach

attach(globals(), {"RaceRun": "settings", "RaceTask": "task"})
