"""Fine-tune ALBERT on SQuAD v1.1 or v2.0: train, evaluate every checkpoint, predict, export.

Thin wrapper: the code is `albert_tf/scripts/run_squad.py`, installed as the `albert-run-squad` command.
"""
from albert_tf.scripts.run_squad import entry

if __name__ == "__main__":
    entry()
