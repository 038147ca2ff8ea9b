"""Fine-tune ALBERT on a GLUE task (or XNLI): train, evaluate every checkpoint, predict, export.

Thin wrapper: the code is `albert_tf/scripts/run_classifier.py`, installed as the `albert-run-classifier` command.
"""
from albert_tf.scripts.run_classifier import entry

if __name__ == "__main__":
    entry()
