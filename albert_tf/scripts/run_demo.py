"""The main job: pretrain a small ALBERT from raw text on a CPU, nothing to download, no flags needed.

  albert-run-demo                          # bundled public-domain book, ~minutes on 2 CPU cores
  albert-run-demo --corpus='my_texts/*.txt' --num_train_steps=20000 --albert_config_file=cfg.json
  (`python run_demo.py ...` at the repository root is the same program)

Trains a SentencePiece model, writes SOP/n-gram-masked pretraining data, pretrains with LAMB while
evaluating MLM and SOP accuracy on held-out text, and saves TF2 and official-layout checkpoints.
Rerunning with the same flags resumes (and prints the evaluation history); other flags on an existing
--output_dir stop with a message before anything is written (--overwrite_output_dir starts over).
"""
import os
import sys

from albert_tf.core import cli

cli.quiet_tensorflow()
_RUN_AS_PROGRAM = os.path.basename(sys.argv[0]) in ("run_demo.py", "albert-run-demo")
if _RUN_AS_PROGRAM and not any(a.startswith(("--help", "-h", "-?")) for a in sys.argv[1:]):
    # Loading TensorFlow takes a few seconds: say what is happening first.
    print("ALBERT demo: loading TensorFlow, then 4 steps (corpus, SentencePiece, data, pretraining)...",
          flush=True)

from absl import flags, logging  # noqa: E402  (after quiet_tensorflow: TensorFlow loads below)

from albert_tf.core import distribute, flags as runtime_flags  # noqa: E402
from albert_tf.demo import DemoOptions, run_demo  # noqa: E402

runtime_flags.define_flags(DemoOptions)
runtime_flags.define_runtime_flags()
FLAGS = flags.FLAGS


def main(_):
    logging.set_verbosity(logging.INFO)
    distribute.configure_precision(FLAGS.mixed_precision)
    options = runtime_flags.run_config_from_flags(DemoOptions, FLAGS)
    # The runtime flags reach the pretraining run; the demo keeps its own loop and log lengths unless given.
    runtime = runtime_flags.runtime_settings_from_flags(FLAGS, own_defaults=("steps_per_loop", "log_steps"))
    run_demo(options, runtime_flags.strategy_from_flags(FLAGS), runtime)


def entry() -> None:
    """The `albert-run-demo` command (and `python run_demo.py` at the repository root)."""
    cli.run_main(main)


if __name__ == "__main__":
    entry()
