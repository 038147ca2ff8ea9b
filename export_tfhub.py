"""Export an ALBERT checkpoint for TF-Hub (TF2): an encoder SavedModel with an `mlm` sub-object, and a

Thin wrapper: the code is `albert_tf/scripts/export_tfhub.py`, installed as the `albert-export-tfhub` command.
"""
from albert_tf.scripts.export_tfhub import entry

if __name__ == "__main__":
    entry()
