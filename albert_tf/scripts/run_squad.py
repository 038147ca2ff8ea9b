"""Fine-tune ALBERT on SQuAD v1.1 or v2.0: train, evaluate every checkpoint, predict, export.

Original flags and defaults of the TF1 release's run_squad_v1.py / run_squad_v2.py, plus --squad_version,
--do_eval, --optimizer, --keep_checkpoint_max, --null_score_diff_threshold and the TF2 runtime flags
(--strategy_type, --mixed_precision, --jit_compile, --steps_per_loop, ...). See albert_tf/tasks/squad/
for what is written to --output_dir. The README recipe (SQuAD v1.1):

  python run_squad.py --squad_version=v1.1 --albert_config_file=albert_base/albert_config.json \
      --init_checkpoint=albert_base/model.ckpt-best --spm_model_file=albert_base/30k-clean.model \
      --train_file=train-v1.1.json --predict_file=dev-v1.1.json \
      --train_feature_file=out/train.tf_record --predict_feature_file=out/dev.tf_record \
      --do_lower_case --max_seq_length=384 --doc_stride=128 --max_query_length=64 \
      --do_train --do_eval --do_predict --train_batch_size=48 --predict_batch_size=8 --learning_rate=5e-5 \
      --num_train_epochs=2.0 --warmup_proportion=.1 --save_checkpoints_steps=5000 --n_best_size=20 \
      --max_answer_length=30 --output_dir=out
"""
from albert_tf.core import cli

cli.quiet_tensorflow()  # before TensorFlow is imported: a readable console

import functools  # noqa: E402
from typing import Optional  # noqa: E402

from absl import flags  # noqa: E402

from albert_tf.core import flags as runtime_flags  # noqa: E402
from albert_tf.tasks.squad.settings import VERSIONS, SquadRun  # noqa: E402


def define_flags(squad_version: Optional[str] = None) -> None:
    """Defines every flag of the SQuAD scripts; `squad_version` fixes the version (run_squad_v1/v2.py)."""
    if squad_version is None:
        flags.DEFINE_enum("squad_version", None, list(VERSIONS), "SQuAD version of the data and head.")
    runtime_flags.define_flags(SquadRun)
    runtime_flags.define_runtime_flags()


def main(_, squad_version: Optional[str] = None) -> None:
    """Runs the task; `squad_version` is given by run_squad_v1.py / run_squad_v2.py, which also take
    `--do_train --do_predict` on a dev file as the original did (`SquadRun.eval_with_train_predict`)."""
    from albert_tf.tasks.squad.task import SquadTask  # TensorFlow loads here, after the cheap checks

    FLAGS = flags.FLAGS
    runtime_flags.run_task(SquadTask, SquadRun, FLAGS, eval_batch_size=FLAGS.predict_batch_size,
                           squad_version=squad_version or FLAGS.squad_version,
                           eval_with_train_predict=bool(squad_version))


def run_version(squad_version: str) -> None:
    """The original's run_squad_v1.py / run_squad_v2.py: `--squad_version` fixed, their required flags."""
    define_flags(squad_version)
    flags.mark_flags_as_required(["spm_model_file", "albert_config_file", "output_dir"])
    cli.run_main(functools.partial(main, squad_version=squad_version))


def entry() -> None:
    """The `albert-run-squad` command (and `python run_squad.py` at the repository root)."""
    define_flags()
    flags.mark_flags_as_required(["squad_version", "output_dir"])
    cli.run_main(main)


if __name__ == "__main__":
    entry()
