"""The README's main job: pretrain a small ALBERT from raw text, end to end, with nothing downloaded.

Steps (each one is the library code behind the real command-line tools):
  1. split the corpus into train / held-out documents;
  2. train a SentencePiece model with the original README's `spm_train` flags;
  3. `create_pretraining_data` (SOP pairs, n-gram masking) for both parts;
  4. `run_pretraining` (LAMB, MLM + SOP), evaluating the held-out part at every checkpoint;
  5. print how MLM and SOP accuracy evolved and where the checkpoints are (TF2 state and official layout).

The default corpus is a public-domain book bundled with the package; `corpus` / `albert_config_file`
and the step/size arguments scale the same pipeline to real corpora and official configurations.
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Optional

import tensorflow as tf
from absl import logging

from albert_tf.core import distribute
from albert_tf.configs import AlbertConfig
from albert_tf.data.pretraining import create_pretraining_data
from albert_tf.tasks.pretraining import PretrainingRun, run_pretraining

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
    output_dir: str = "albert_demo_output"
    corpus: Optional[str] = None  # comma-separated globs; default: the bundled book
    albert_config_file: Optional[str] = None  # default: a small config sized for 2 CPU cores
    vocab_size: int = 3000
    max_seq_length: int = 64
    max_predictions_per_seq: int = 10
    dupe_factor: int = 4
    heldout_fraction: float = 0.1
    train_batch_size: int = 32
    num_train_steps: int = 1200
    learning_rate: float = 0.004
    num_evals: int = 4
    random_seed: int = 12345


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


def run_demo(options: DemoOptions, strategy: Optional[tf.distribute.Strategy] = None) -> dict[str, Any]:
    """Runs the whole pipeline; returns the pretraining summary and the list of evaluations."""
    start = time.time()
    out = options.output_dir
    data_dir = os.path.join(out, "data")
    os.makedirs(data_dir, exist_ok=True)
    corpus = ([p for pattern in options.corpus.split(",") for p in sorted(tf.io.gfile.glob(pattern))]
              if options.corpus else [BUNDLED_CORPUS])
    if not corpus:
        raise FileNotFoundError(f"--corpus {options.corpus!r} matches no file.")

    train_txt, heldout_txt = os.path.join(data_dir, "train.txt"), os.path.join(data_dir, "heldout.txt")
    n_train, n_heldout = split_documents(corpus, train_txt, heldout_txt, options.heldout_fraction)
    logging.info("[1/4] Corpus: %d training and %d held-out documents from %s", n_train, n_heldout,
                 ", ".join(corpus))

    spm_model = train_sentencepiece(train_txt, os.path.join(out, "spm"), options.vocab_size)
    logging.info("[2/4] Trained SentencePiece model %s (%d pieces)", spm_model, options.vocab_size)

    common = dict(spm_model_file=spm_model, do_lower_case=True, max_seq_length=options.max_seq_length,
                  max_predictions_per_seq=options.max_predictions_per_seq, random_seed=options.random_seed)
    train_records, heldout_records = os.path.join(data_dir, "train.tfrecord"), os.path.join(data_dir, "heldout.tfrecord")
    create_pretraining_data(train_txt, train_records, dupe_factor=options.dupe_factor, **common)
    create_pretraining_data(heldout_txt, heldout_records, dupe_factor=1, **common)
    logging.info("[3/4] Wrote pretraining TFRecords %s and %s", train_records, heldout_records)

    config_file = options.albert_config_file
    if not config_file:
        config_file = os.path.join(out, "albert_config.json")
        small_config(options.vocab_size, options.max_seq_length).to_json_file(config_file)
    steps = options.num_train_steps
    run = PretrainingRun(
        albert_config_file=config_file, input_file=train_records, eval_input_file=heldout_records,
        output_dir=os.path.join(out, "model"), do_train=True, do_eval=True,
        train_batch_size=options.train_batch_size, eval_batch_size=options.train_batch_size,
        max_seq_length=options.max_seq_length, max_predictions_per_seq=options.max_predictions_per_seq,
        optimizer="lamb", learning_rate=options.learning_rate, num_train_steps=steps,
        num_warmup_steps=max(1, steps // 10), save_checkpoints_steps=max(1, steps // options.num_evals),
        keep_checkpoint_max=2, max_eval_steps=20, steps_per_loop=min(100, steps), log_steps=min(100, steps))
    logging.info("[4/4] Pretraining %d steps (batch %d, seq %d) into %s", steps, options.train_batch_size,
                 options.max_seq_length, run.output_dir)
    result = run_pretraining(run, strategy or distribute.get_strategy("one_device"))

    lines = ["", "Held-out evaluation during pretraining:",
             f"{'step':>6} {'MLM acc':>8} {'MLM loss':>9} {'SOP acc':>8} {'SOP loss':>9}"]
    for r in result["eval"]:
        lines.append(f"{r['global_step']:>6} {r['masked_lm_accuracy']:>8.3f} {r['masked_lm_loss']:>9.3f} "
                     f"{r['sentence_order_accuracy']:>8.3f} {r['sentence_order_loss']:>9.3f}")
    lines += ["", f"Done in {time.time() - start:.0f} s. Outputs in {out}/:",
              "  spm.model                               SentencePiece model",
              f"  {config_file:<39} model config",
              f"  model/model.ckpt-{steps}, model.ckpt-best  official TF1 layout (load_original_checkpoint)",
              "  model/tf2_checkpoints/                  TF2 training state (resume)",
              "  model/eval_results.txt, model/summaries/  metrics and TensorBoard logs"]
    print("\n".join(lines))
    return result
