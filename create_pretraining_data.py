"""Writes ALBERT pretraining TFRecords (SOP pairs + n-gram masked LM) from raw text.

Thin wrapper: the code is `albert_tf/scripts/create_pretraining_data.py`, installed as the `albert-create-pretraining-data` command.
"""
from albert_tf.scripts.create_pretraining_data import entry

if __name__ == "__main__":
    entry()
