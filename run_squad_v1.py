"""SQuAD v1.1 with the original run_squad_v1.py command line (see run_squad.py; `--squad_version` is v1.1).

Thin wrapper: the code is `albert_tf/scripts/run_squad_v1.py`, installed as the `albert-run-squad-v1` command.
"""
from albert_tf.scripts.run_squad_v1 import entry

if __name__ == "__main__":
    entry()
