"""Fine-tune ALBERT on RACE: train, evaluate every checkpoint, predict the test set, export.

Thin wrapper: the code is `albert_tf/scripts/run_race.py`, installed as the `albert-run-race` command.
"""
from albert_tf.scripts.run_race import entry

if __name__ == "__main__":
    entry()
