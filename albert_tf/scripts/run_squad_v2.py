"""SQuAD v2.0 with the original run_squad_v2.py command line (see run_squad.py; `--squad_version` is v2.0)."""
from albert_tf.core import cli

cli.quiet_tensorflow()  # before TensorFlow is imported: a readable console

from albert_tf.scripts import run_squad  # noqa: E402
from albert_tf.tasks.squad.evaluate import V2  # noqa: E402


def entry() -> None:
    """The `albert-run-squad-v2` command (and `python run_squad_v2.py` at the repository root)."""
    run_squad.run_version(V2)


if __name__ == "__main__":
    entry()
