"""Writes the fine-tuning feature files that the task scripts cache and reuse.

Thin wrapper: the code is `albert_tf/scripts/create_finetuning_data.py`, installed as the `albert-create-finetuning-data` command.
"""
from albert_tf.scripts.create_finetuning_data import entry

if __name__ == "__main__":
    entry()
