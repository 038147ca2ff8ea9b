"""SQuAD v1.1 with the original run_squad_v1.py command line (see run_squad.py; `--squad_version` is v1.1)."""
import functools

from absl import app, flags

import run_squad
from albert_tf.squad_eval import V1

if __name__ == "__main__":
    run_squad.define_flags(V1)
    flags.mark_flags_as_required(["spm_model_file", "albert_config_file", "output_dir"])
    app.run(functools.partial(run_squad.main, squad_version=V1))
