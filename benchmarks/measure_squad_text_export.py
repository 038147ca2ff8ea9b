"""Agreement of the raw-text SQuAD SavedModel with the Python path, question by question.

    python benchmarks/measure_squad_text_export.py --input_file=/work/shared/data/squad/dev-v1.1.json \
        [--spm_model_file=30k-clean.model] [--squad_version=v1.1|v2.0] [--max_seq_length=384] \
        [--doc_stride=128] [--max_query_length=64] [--num_questions=N] [--initializer_range=1.0]

One randomly initialised small model (hidden 32, one layer; seeded) answers every question twice:

- Python: `albert_tf.tasks.squad.data` features (``write_squad_features`` + the side file), the Keras model on
  them, `albert_tf.tasks.squad.postprocess.postprocess` (what ``run_squad.py --do_predict`` does);
- graph: ``export_squad(...)``'s raw-text SavedModel, reloaded, on the raw (question, context) strings.

Both use the same weights, so they pick the same span exactly when the graph builds the same features
and decodes them the same way; a random model spreads its answers over every kind of position, which
exercises the offsets more than a trained one would. ``--initializer_range`` (large by default) spreads
the logits, so that float rounding between the two batchings rarely decides. Without
``--spm_model_file`` a SentencePiece model (--vocab_size pieces) is trained on the file's contexts.

Prints the share of questions with the same answer text, checks that every graph answer is
``context[answer_start:answer_end]``, and lists the questions that differ with the classes of their
contexts (non-ASCII characters, questions the Python features dropped).
"""
from __future__ import annotations

import collections
import os
import sys
import tempfile
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

flags.DEFINE_string("input_file", None, "SQuAD JSON file (e.g. dev-v1.1.json).")
flags.DEFINE_string("spm_model_file", None, "SentencePiece model; trained on the contexts when not given.")
flags.DEFINE_integer("vocab_size", 8000, "Pieces of the model trained when --spm_model_file is not given.")
flags.DEFINE_enum("squad_version", "v1.1", ["v1.1", "v2.0"], "Which head and post-processing to compare.")
flags.DEFINE_integer("max_seq_length", 384, "Sequence length.")
flags.DEFINE_integer("doc_stride", 128, "Doc stride.")
flags.DEFINE_integer("max_query_length", 64, "Question length in pieces.")
flags.DEFINE_integer("n_best_size", 20, "n-best size.")
flags.DEFINE_integer("max_answer_length", 30, "Longest answer in pieces.")
flags.DEFINE_float("null_score_diff_threshold", None, "v2.0: answer only when the null score is below it.")
flags.DEFINE_integer("num_questions", 0, "Only the first N questions (0: all).")
flags.DEFINE_integer("batch_size", 32, "Questions per SavedModel call / features per model batch.")
flags.DEFINE_float("initializer_range", 1.0, "Stddev of the random weights.")
flags.DEFINE_integer("seed", 1, "Random seed of the weights.")
flags.DEFINE_string("work_dir", None, "Where to write the model, features and export (default: a temporary directory).")
FLAGS = flags.FLAGS


def python_answers(model, examples, spm_model_file: str, work_dir: str) -> dict[str, str]:
    """{qas_id: answer} of the Python path (features, Keras model, post-processing)."""
    import numpy as np
    import tensorflow as tf

    from albert_tf import tokenization
    from albert_tf.tasks.squad import postprocess as squad_postprocess
    from albert_tf.tasks.squad import data as squad
    from albert_tf.tasks.squad.export import raw_outputs

    features_file = os.path.join(work_dir, "eval.tf_record")
    tokenizer = tokenization.FullTokenizer(spm_model_file=spm_model_file, do_lower_case=True)
    summary = squad.write_squad_features(examples, tokenizer, features_file, FLAGS.max_seq_length, FLAGS.doc_stride,
                                         FLAGS.max_query_length, is_training=False, do_lower_case=True)
    side = squad.load_eval_features(summary.side_info_file)
    print(f"python features: {summary.num_features} ({summary.num_skipped_examples} questions dropped)")
    dataset = squad.squad_dataset(features_file, FLAGS.max_seq_length, FLAGS.batch_size, is_training=False)
    inputs = ("input_word_ids", "input_mask", "input_type_ids") + (("p_mask",) if FLAGS.squad_version == "v2.0" else ())

    @tf.function
    def predict(batch):
        return raw_outputs(FLAGS.squad_version, model({k: batch[k] for k in inputs}, training=False))

    rows = collections.defaultdict(list)
    for batch in dataset:
        rows["unique_ids"].append(batch["unique_ids"].numpy())
        for name, value in predict(batch).items():
            rows[name].append(value.numpy())
    raw = {name: np.concatenate(parts) for name, parts in rows.items()}
    result = squad_postprocess.postprocess(side, raw, FLAGS.squad_version, FLAGS.n_best_size, FLAGS.max_answer_length,
                                           FLAGS.null_score_diff_threshold)
    return result.predictions, {example.qas_id for example in side.examples} - {
        side.examples[f.example_index].qas_id for f in side.features}


def main(argv: list[str]) -> None:
    del argv
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the raw-text SavedModel's ops)

    from albert_tf import AlbertConfig, tokenization
    from albert_tf.tasks.squad import data as squad
    from albert_tf.demo import train_sentencepiece
    from albert_tf.tasks.squad.export import export_squad
    from albert_tf.modeling import models

    work_dir = FLAGS.work_dir or tempfile.mkdtemp(prefix="measure_squad_export_")
    os.makedirs(work_dir, exist_ok=True)
    examples = squad.read_squad_examples(FLAGS.input_file, is_training=False)
    spm_model = FLAGS.spm_model_file
    if not spm_model:
        contexts = os.path.join(work_dir, "contexts.txt")
        with open(contexts, "w", encoding="utf-8") as f:
            f.writelines(" ".join(text.split()) + "\n" for text in dict.fromkeys(e.paragraph_text for e in examples))
        spm_model = train_sentencepiece(contexts, os.path.join(work_dir, "spm"), FLAGS.vocab_size)
    if FLAGS.num_questions:
        examples = examples[:FLAGS.num_questions]
    config = AlbertConfig(vocab_size=tokenization.FullTokenizer(spm_model_file=spm_model).sp_model.GetPieceSize(),
                          embedding_size=16,
                          hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                          max_position_embeddings=max(512, FLAGS.max_seq_length),
                          initializer_range=FLAGS.initializer_range)
    tf.random.set_seed(FLAGS.seed)
    model = (models.AlbertQuestionAnswering(config) if FLAGS.squad_version == "v1.1"
             else models.AlbertSquadV2(config, dropout_rate=0.0))

    start = time.perf_counter()
    expected, dropped = python_answers(model, examples, spm_model, work_dir)
    python_seconds = time.perf_counter() - start

    start = time.perf_counter()
    paths = export_squad(model, os.path.join(work_dir, "export"), squad_version=FLAGS.squad_version,
                         max_seq_length=FLAGS.max_seq_length, max_query_length=FLAGS.max_query_length,
                         doc_stride=FLAGS.doc_stride, spm_model_file=spm_model, n_best_size=FLAGS.n_best_size,
                         max_answer_length=FLAGS.max_answer_length,
                         null_score_diff_threshold=FLAGS.null_score_diff_threshold)
    export_seconds = time.perf_counter() - start
    serve = tf.saved_model.load(paths["text_saved_model"]).signatures["serving_default"]
    start = time.perf_counter()
    got, offsets_ok = {}, 0
    for i in range(0, len(examples), FLAGS.batch_size):
        batch = examples[i:i + FLAGS.batch_size]
        out = serve(question=tf.constant([e.question_text for e in batch]),
                    context=tf.constant([e.paragraph_text for e in batch]))
        for e, text, begin, end in zip(batch, out["answer_text"].numpy(), out["answer_start"].numpy(),
                                       out["answer_end"].numpy()):
            got[e.qas_id] = text.decode("utf-8")
            offsets_ok += e.paragraph_text[begin:end] == got[e.qas_id] if begin >= 0 else got[e.qas_id] in ("", "empty")
    graph_seconds = time.perf_counter() - start

    if FLAGS.squad_version == "v2.0":
        print(f"questions answered: python {sum(bool(expected[e.qas_id]) for e in examples)}, "
              f"graph {sum(bool(got[e.qas_id]) for e in examples)}")
    differ = [e for e in examples if expected[e.qas_id] != got[e.qas_id]]
    same = len(examples) - len(differ)
    print(f"questions: {len(examples)}; same answer: {same} ({100.0 * same / len(examples):.2f}%); "
          f"graph offsets consistent with its text: {offsets_ok}/{len(examples)}")
    print(f"python path {python_seconds:.0f}s (features + model + post-processing); export {export_seconds:.0f}s; "
          f"SavedModel {graph_seconds:.0f}s ({len(examples) / graph_seconds:.0f} questions/s)")
    classes = collections.Counter()
    for e in differ:
        kind = ("dropped by the Python features" if e.qas_id in dropped else
                "non-ASCII context" if any(ord(c) > 127 for c in e.paragraph_text) else "ASCII context")
        classes[kind] += 1
    print(f"differing questions by class: {dict(classes)}")
    for e in differ[:15]:
        print(f"  {e.qas_id}: python {expected[e.qas_id]!r} graph {got[e.qas_id]!r}")


if __name__ == "__main__":
    flags.mark_flag_as_required("input_file")
    app.run(main)
