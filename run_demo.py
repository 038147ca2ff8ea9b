"""The main job: pretrain a small ALBERT from raw text on a CPU, nothing to download, no flags needed.

Thin wrapper: the code is `albert_tf/scripts/run_demo.py`, installed as the `albert-run-demo` command.
"""
from albert_tf.scripts.run_demo import entry

if __name__ == "__main__":
    entry()
