"""SQuAD v1.1 with the original run_squad_v1.py command line (see run_squad.py; `--squad_version` is v1.1)."""
from albert_tf.core import cli

cli.quiet_tensorflow()  # before TensorFlow is imported: a readable console

import functools  # noqa: E402

from absl import flags  # noqa: E402

from albert_tf.scripts import run_squad  # noqa: E402
from albert_tf.squad_eval import V1  # noqa: E402


def entry() -> None:
    """The `albert-run-squad-v1` command (and `python run_squad_v1.py` at the repository root)."""
    run_squad.define_flags(V1)
    flags.mark_flags_as_required(["spm_model_file", "albert_config_file", "output_dir"])
    cli.run_main(functools.partial(run_squad.main, squad_version=V1))


if __name__ == "__main__":
    entry()
