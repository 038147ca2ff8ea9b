"""SQuAD v2.0 with the original run_squad_v2.py command line (see run_squad.py; `--squad_version` is v2.0)."""
from albert_tf.core import cli

cli.quiet_tensorflow()  # before TensorFlow is imported: a readable console

import functools  # noqa: E402

from absl import flags  # noqa: E402

from albert_tf.scripts import run_squad  # noqa: E402
from albert_tf.squad_eval import V2  # noqa: E402


def entry() -> None:
    """The `albert-run-squad-v2` command (and `python run_squad_v2.py` at the repository root)."""
    run_squad.define_flags(V2)
    flags.mark_flags_as_required(["spm_model_file", "albert_config_file", "output_dir"])
    cli.run_main(functools.partial(run_squad.main, squad_version=V2))


if __name__ == "__main__":
    entry()
