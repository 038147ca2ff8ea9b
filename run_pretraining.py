"""Pretrain ALBERT (MLM + sentence-order prediction) on TFRecords from create_pretraining_data.py.

Thin wrapper: the code is `albert_tf/scripts/run_pretraining.py`, installed as the `albert-run-pretraining` command.
"""
from albert_tf.scripts.run_pretraining import entry

if __name__ == "__main__":
    entry()
