"""SQuAD v1.1 with the original run_squad_v1.py command line (see run_squad.py; `--squad_version` is v1.1)."""
from albert_tf.core import cli

cli.quiet_tensorflow()  # before TensorFlow is imported: a readable console

from albert_tf.scripts import run_squad  # noqa: E402
from albert_tf.tasks.squad.evaluate import V1  # noqa: E402


def entry() -> None:
    """The `albert-run-squad-v1` command (and `python run_squad_v1.py` at the repository root)."""
    run_squad.run_version(V1)


if __name__ == "__main__":
    entry()
