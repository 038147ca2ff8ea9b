"""SQuAD v2.0 with the original run_squad_v2.py command line (see run_squad.py; `--squad_version` is v2.0)."""
import functools

from absl import app, flags

import run_squad
from albert_tf.squad_eval import V2

if __name__ == "__main__":
    run_squad.define_flags(V2)
    flags.mark_flags_as_required(["spm_model_file", "albert_config_file", "output_dir"])
    app.run(functools.partial(run_squad.main, squad_version=V2))
