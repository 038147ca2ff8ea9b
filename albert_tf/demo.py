"""The README's main job: pretrain a small ALBERT from raw text, end to end, with nothing downloaded.

Steps (each one is the library code behind the real command-line tools):
  1. split the corpus into train / held-out documents;
  2. train a SentencePiece model with the original README's `spm_train` flags;
  3. `create_pretraining_data` (SOP pairs, n-gram masking) for both parts;
  4. `run_pretraining` (LAMB, MLM + SOP), evaluating the held-out part at every checkpoint;
  5. print how MLM and SOP accuracy evolved and where the checkpoints are (TF2 state and official layout).

The default corpus is a public-domain book bundled with the package; `corpus` / `albert_config_file`
and the step/size arguments scale the same pipeline to real corpora and official configurations.

Rerunning into the same `output_dir` is safe: before anything is written, the settings that shape the
outputs (corpus files and their hashes, vocabulary size, lengths, seed, model config) are compared with
`output_dir/run_settings.json` (`albert_tf.core.run_dir`). The same settings reuse the SentencePiece model
and the data (their fingerprints must match), resume training, and print the whole evaluation history;
other settings stop with a message unless `overwrite_output_dir` is set.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from typing import Any, Iterator, Mapping, Optional

import tensorflow as tf
from absl import logging

from albert_tf import metrics
from albert_tf.core import distribute, driver, run_dir
from albert_tf.core.settings import setting
from albert_tf.configs import AlbertConfig
from albert_tf.data import cache
from albert_tf.tasks.pretraining.data import create_pretraining_data
from albert_tf.tasks.pretraining.settings import PretrainingRun
from albert_tf.tasks.pretraining.task import PretrainingTask

BUNDLED_CORPUS = os.path.join(os.path.dirname(__file__), "resources", "chesterton-thursday.txt")
# The original README's spm_train flags (vocabulary size aside). Symbols are passed as lists: as one
# comma-separated string, sentencepiece parses the list as CSV and the bare `"` swallows the rest.
SPM_FLAGS = dict(pad_id=0, unk_id=1, eos_id=-1, bos_id=-1, control_symbols=["[CLS]", "[SEP]", "[MASK]"],
                 user_defined_symbols=["(", ")", '"', "-", ".", "–", "£", "€"], shuffle_input_sentence=True,
                 character_coverage=0.99995, model_type="unigram")
# Ids 0-12 of a model trained with these flags (original_release.md §2.4).
SPECIAL_PIECES = ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]", "(", ")", '"', "-", ".", "–", "£", "€"]


@dataclasses.dataclass
class DemoOptions:
    """`albert-run-demo`'s settings (its flags are generated from these fields)."""

    output_dir: str = setting("albert_demo_output", "Where everything is written.")
    corpus: Optional[str] = setting(
        None, "Text files (comma-separated globs; blank line between documents). Default: the bundled book.")
    albert_config_file: Optional[str] = setting(None, "Model config (default: a small config for CPUs).")
    vocab_size: int = setting(3000, "SentencePiece vocabulary size.")
    max_seq_length: int = setting(64, "Sequence length.")
    max_predictions_per_seq: int = setting(10, "Masked positions per sequence.")
    dupe_factor: int = setting(4, "Passes over the training text with new masks.")
    heldout_fraction: float = setting(0.1, "Share of documents held out for evaluation.")
    train_batch_size: int = setting(32, "Global batch size.")
    num_train_steps: int = setting(1200, "Training steps.")
    learning_rate: float = setting(0.004, "LAMB learning rate.")
    num_evals: int = setting(4, "Held-out evaluations (one per checkpoint).")
    random_seed: int = setting(12345, "Seed of the data generator.")
    overwrite_output_dir: bool = setting(
        False, "Delete what an earlier demo run with other settings left in --output_dir and start over (without "
        "it such a rerun stops before writing anything).")


def small_config(vocab_size: int, max_seq_length: int) -> AlbertConfig:
    """A small ALBERT (E=64, H=128, 4 shared layers) that trains in minutes on two CPU cores."""
    return AlbertConfig(vocab_size=vocab_size, embedding_size=64, hidden_size=128, num_hidden_layers=4,
                        num_hidden_groups=1, num_attention_heads=4, intermediate_size=512, inner_group_num=1,
                        hidden_act="gelu", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                        max_position_embeddings=max(128, max_seq_length), type_vocab_size=2,
                        initializer_range=0.02)


def split_documents(paths: list[str], train_path: str, heldout_path: str, heldout_fraction: float) -> tuple[int, int]:
    """Writes the last `heldout_fraction` of each file's blank-line-separated documents to `heldout_path`."""
    train_docs, heldout_docs = [], []
    for path in paths:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", errors="replace").replace("\r\n", "\n")
        docs = [d.strip("\n") for d in text.split("\n\n") if d.strip()]
        cut = max(1, int(len(docs) * (1.0 - heldout_fraction)))
        train_docs += docs[:cut]
        heldout_docs += docs[cut:]
    if not heldout_docs:
        raise ValueError("The corpus is too small to hold out any document; add text or lower heldout_fraction.")
    for path, docs in ((train_path, train_docs), (heldout_path, heldout_docs)):
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n\n".join(docs) + "\n")
    return len(train_docs), len(heldout_docs)


def train_sentencepiece(text_file: str, model_prefix: str, vocab_size: int) -> str:
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(input=text_file, model_prefix=model_prefix, vocab_size=vocab_size,
                                   minloglevel=2, **SPM_FLAGS)
    return model_prefix + ".model"


def demo_settings(options: DemoOptions, corpus: list[str], config: AlbertConfig) -> dict[str, Any]:
    """The facts a rerun must share with the run already in `output_dir` (see `run_dir.prepare_output_dir`)."""
    return {"corpus": cache.fingerprint(sources=corpus)["sources"], "vocab_size": options.vocab_size,
            "max_seq_length": options.max_seq_length, "max_predictions_per_seq": options.max_predictions_per_seq,
            "dupe_factor": options.dupe_factor, "heldout_fraction": options.heldout_fraction,
            "random_seed": options.random_seed, "albert_config": config.to_dict()}


def _record_fingerprint(spm_model: str, text_file: str, options: DemoOptions, dupe_factor: int) -> dict[str, Any]:
    return cache.fingerprint(tokenizer_file=spm_model, sources=[text_file], kind="pretraining",
                             max_seq_length=options.max_seq_length, dupe_factor=dupe_factor,
                             max_predictions_per_seq=options.max_predictions_per_seq, random_seed=options.random_seed)


def _data_is_ready(spm_model: str, parts: list[tuple[str, str, int]], options: DemoOptions) -> bool:
    """Whether every (text file, records, dupe factor) part was written from `spm_model` with these options."""
    try:
        return all(cache.check_cache(records, _record_fingerprint(spm_model, text, options, dupe)) == "fresh"
                   for text, records, dupe in parts)
    except (FileNotFoundError, cache.StaleCacheError):
        return False


@contextlib.contextmanager
def _quiet_info() -> Iterator[None]:
    """Hides INFO logging (the data writer's example dumps) inside the block."""
    level = logging.get_verbosity()
    logging.set_verbosity(logging.WARNING)
    try:
        yield
    finally:
        logging.set_verbosity(level)


def _prepare_data(options: DemoOptions, corpus: list[str], spm_model: str,
                  parts: list[tuple[str, str, int]]) -> None:
    """Steps 1-3: splits the corpus, trains the SentencePiece model, writes the pretraining TFRecords."""
    (train_txt, _, _), (heldout_txt, _, _) = parts
    n_train, n_heldout = split_documents(corpus, train_txt, heldout_txt, options.heldout_fraction)
    logging.info("[1/4] Corpus: %d training and %d held-out documents from %s", n_train, n_heldout,
                 ", ".join(corpus))
    train_sentencepiece(train_txt, spm_model[: -len(".model")], options.vocab_size)
    logging.info("[2/4] Trained SentencePiece model %s (%d pieces)", spm_model, options.vocab_size)
    counts = []
    for text, records, dupe_factor in parts:
        def build(text: str = text, records: str = records, dupe_factor: int = dupe_factor) -> Any:
            with _quiet_info():
                return create_pretraining_data(
                    text, records, spm_model_file=spm_model, do_lower_case=True, dupe_factor=dupe_factor,
                    max_seq_length=options.max_seq_length, max_predictions_per_seq=options.max_predictions_per_seq,
                    random_seed=options.random_seed)

        summary = cache.build_with_fingerprint(records, _record_fingerprint(spm_model, text, options, dupe_factor),
                                               build)
        counts.append(summary.num_instances)
    logging.info("[3/4] Wrote %d training instances (%d passes) to %s and %d held-out instances to %s",
                 counts[0], options.dupe_factor, parts[0][1], counts[1], parts[1][1])


def eval_history_table(eval_results_file: str) -> list[str]:
    """The held-out evaluations recorded in `eval_results_file`, one table line per step (last result wins)."""
    if not tf.io.gfile.exists(eval_results_file):
        return ["", "No held-out evaluation recorded yet."]
    by_step = {int(r["global_step"]): r for r in metrics.read_eval_results(eval_results_file) if "global_step" in r}
    lines = ["", "Held-out evaluation during pretraining:",
             f"{'step':>6} {'MLM acc':>8} {'MLM loss':>9} {'SOP acc':>8} {'SOP loss':>9}"]
    for step, r in sorted(by_step.items()):
        lines.append(f"{step:>6} {r['masked_lm_accuracy']:>8.3f} {r['masked_lm_loss']:>9.3f} "
                     f"{r['sentence_order_accuracy']:>8.3f} {r['sentence_order_loss']:>9.3f}")
    return lines


def run_demo(options: DemoOptions, strategy: Optional[tf.distribute.Strategy] = None,
             runtime: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
    """Runs the whole pipeline; returns the pretraining summary and the list of evaluations.

    `runtime`: `RunSettings` runtime fields for the pretraining run (`jit_compile`, `eval_jit_compile`,
    `steps_per_loop`, `gradient_accumulation_steps`, ...; `albert-run-demo` passes what its runtime flags
    set); a field not given keeps the demo's choice (100 steps per loop and log line) or `RunSettings`'.

    Raises:
      run_dir.OutputDirError: `output_dir` is unusable, or holds a demo run with other settings (and
        `overwrite_output_dir` is not set); raised before anything is written.
    """
    start = time.time()
    out = options.output_dir
    corpus = ([p for pattern in options.corpus.split(",") for p in sorted(tf.io.gfile.glob(pattern))]
              if options.corpus else [BUNDLED_CORPUS])
    if not corpus:
        raise FileNotFoundError(f"--corpus {options.corpus!r} matches no file.")
    config = (AlbertConfig.from_json_file(options.albert_config_file) if options.albert_config_file
              else small_config(options.vocab_size, options.max_seq_length))
    resuming = run_dir.prepare_output_dir(out, demo_settings(options, corpus, config),
                                          overwrite=options.overwrite_output_dir)
    data_dir = os.path.join(out, "data")
    os.makedirs(data_dir, exist_ok=True)
    spm_model = os.path.join(out, "spm.model")
    train_records = os.path.join(data_dir, "train.tfrecord")
    heldout_records = os.path.join(data_dir, "heldout.tfrecord")
    parts = [(os.path.join(data_dir, "train.txt"), train_records, options.dupe_factor),
             (os.path.join(data_dir, "heldout.txt"), heldout_records, 1)]
    if resuming and _data_is_ready(spm_model, parts, options):
        logging.info("[1-3/4] Resuming the run in %s: reusing %s and the pretraining data in %s", out, spm_model,
                     data_dir)
    else:
        _prepare_data(options, corpus, spm_model, parts)

    config_file = options.albert_config_file
    if not config_file:
        config_file = os.path.join(out, "albert_config.json")
        config.to_json_file(config_file)
    steps = options.num_train_steps
    run = PretrainingRun(
        albert_config_file=config_file, input_file=train_records, eval_input_file=heldout_records,
        output_dir=os.path.join(out, "model"), do_train=True, do_eval=True,
        train_batch_size=options.train_batch_size, eval_batch_size=options.train_batch_size,
        max_seq_length=options.max_seq_length, max_predictions_per_seq=options.max_predictions_per_seq,
        optimizer="lamb", learning_rate=options.learning_rate, num_train_steps=steps,
        num_warmup_steps=max(1, steps // 10), save_checkpoints_steps=max(1, steps // options.num_evals),
        keep_checkpoint_max=2, max_eval_steps=20,
        **{"steps_per_loop": min(100, steps), "log_steps": min(100, steps), **(runtime or {})})
    logging.info("[4/4] Pretraining %d steps (batch %d, seq %d) into %s", steps, options.train_batch_size,
                 options.max_seq_length, run.output_dir)
    result = driver.run(PretrainingTask(run), strategy or distribute.get_strategy("one_device"))

    lines = eval_history_table(os.path.join(run.output_dir, "eval_results.txt"))
    train = result.get("train") or {}
    if train.get("steps_per_second"):
        lines += ["", f"Training throughput: {train['steps_per_second']:.2f} steps/s, "
                      f"{train['examples_per_second']:.1f} examples/s (batch {options.train_batch_size})."]
    lines += ["", f"Done in {time.time() - start:.0f} s. Outputs in {out}/:",
              "  spm.model                               SentencePiece model",
              f"  {_shown_path(config_file, out):<39} model config",
              f"  model/model.ckpt-{steps}, model.ckpt-best  official TF1 layout (load_original_checkpoint)",
              "  model/tf2_checkpoints/                  TF2 training state (resume)",
              "  model/eval_results.txt, model/summaries/  metrics and TensorBoard logs"]
    print("\n".join(lines))
    return result


def _shown_path(path: str, out: str) -> str:
    """`path` relative to the output directory when it lies inside it (as the summary's other lines are)."""
    relative = os.path.relpath(os.path.abspath(path), os.path.abspath(out))
    return path if relative.startswith(os.pardir) else relative
