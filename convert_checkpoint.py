"""Convert ALBERT weights between the formats albert-tf reads and writes.

Thin wrapper: the code is `albert_tf/scripts/convert_checkpoint.py`, installed as the `albert-convert-checkpoint` command.
"""
from albert_tf.scripts.convert_checkpoint import entry

if __name__ == "__main__":
    entry()
