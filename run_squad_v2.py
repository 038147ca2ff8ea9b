"""SQuAD v2.0 with the original run_squad_v2.py command line (see run_squad.py; `--squad_version` is v2.0).

Thin wrapper: the code is `albert_tf/scripts/run_squad_v2.py`, installed as the `albert-run-squad-v2` command.
"""
from albert_tf.scripts.run_squad_v2 import entry

if __name__ == "__main__":
    entry()
