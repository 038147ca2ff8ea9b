"""Export a fine-tuned GLUE classifier as SavedModels, without training.

Thin wrapper: the code is `albert_tf/scripts/export_savedmodel.py`, installed as the `albert-export-savedmodel` command.
"""
from albert_tf.scripts.export_savedmodel import entry

if __name__ == "__main__":
    entry()
