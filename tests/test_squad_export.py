"""SQuAD exports (albert_tf.tasks.squad.export): the raw-output SavedModel and the TFLite file give the Keras
model's outputs, and the raw-text SavedModel gives the answers of the Python path (feature writer +
Keras model + squad_postprocess), all reloaded in a new process."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text as tf_text

from albert_tf import tokenization
from albert_tf.tasks.squad import postprocess as squad_postprocess
from albert_tf.configs import AlbertConfig
from albert_tf.tasks.squad import data as squad
from albert_tf.tasks.squad import export as squad_export
from albert_tf.modeling.models import AlbertQuestionAnswering, AlbertSquadV2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPM_MODEL = os.path.join(ROOT, "tests", "fixtures", "tokenization", "tiny-clean.model")
SEQ, QUERY, STRIDE = 40, 8, 12
SETTINGS = dict(max_seq_length=SEQ, max_query_length=QUERY, doc_stride=STRIDE, n_best_size=5, max_answer_length=6)
V2_THRESHOLD = 0.0
LONG = ("The module defines a class and a function. The class holds the value of the attribute, and the "
        "function returns it when the method is called. Python raises an exception when the attribute is "
        "missing from the namespace; the statement in the loop then handles the error and the object is "
        "created again with other values, as the documentation of the standard library explains.")
# Contexts needing several windows, with accents, ligatures, symbols, odd spacing and digit-comma pieces.
CONTEXTS = [
    LONG,
    "  The Café  Müller opened in 1990,  and   its naïve façade — rebuilt for £250,000 — is still there. "
    "Its ﬁrst owner, José, sold it to Zoë in 2001.",
    "Ångström and Œuvre: the résumé lists 12,500 values, 3 objects and ½ of a class… and more.",
    "Short.",
    "",
]
QUESTIONS = ["What does the class hold?", "Who owned the café?", "What does the résumé list?",
             "Why?", "Anything?"]

LOADER = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # the raw-text SavedModel's ops

    spec = json.load(open(sys.argv[1]))
    out = {}
    for version, entry in spec.items():
        raw = tf.saved_model.load(entry["saved_model"]).signatures["serving_default"]
        inputs = {k: tf.constant(v, tf.int32) for k, v in entry["inputs"].items()}
        out[version] = {"raw": {k: v.numpy().tolist() for k, v in raw(**inputs).items()}}
        text = tf.saved_model.load(entry["text_saved_model"])
        answers = text.signatures["serving_default"](question=tf.constant(entry["questions"]),
                                                     context=tf.constant(entry["contexts"]))
        out[version]["text"] = {
            k: [x.decode("utf-8") for x in v.numpy()] if v.dtype == tf.string else v.numpy().tolist()
            for k, v in answers.items()}
        info = text.signatures["tokenization_info"]()
        out[version]["vocab_file"] = info["vocab_file"].numpy().decode()
        if "tflite" in entry:
            interpreter = tf.lite.Interpreter(model_path=entry["tflite"])
            runner = interpreter.get_signature_runner()
            rows = []
            for i in range(len(entry["inputs"]["input_word_ids"])):
                result = runner(**{k: np.asarray(v[i:i + 1], np.int32) for k, v in entry["inputs"].items()})
                rows.append({k: v[0].tolist() for k, v in result.items()})
            out[version]["tflite"] = rows
    json.dump(out, open(sys.argv[2], "w"))
""")


def _config() -> AlbertConfig:
    # Large initial weights spread the logits, so that no two candidate spans nearly tie.
    return AlbertConfig(vocab_size=1000, embedding_size=16, hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=64,
                        initializer_range=1.0)


def _python_path(model, version: str, tmp_path) -> tuple[dict, dict, dict]:
    """(model inputs of every feature, Keras raw outputs, {qas_id: answer} of squad_postprocess)."""
    examples = [squad.SquadExample(f"q{i}", q, c) for i, (q, c) in enumerate(zip(QUESTIONS, CONTEXTS))]
    tokenizer = tokenization.FullTokenizer(spm_model_file=SPM_MODEL, do_lower_case=True)
    record = str(tmp_path / f"{version}.tf_record")
    summary = squad.write_squad_features(examples, tokenizer, record, SEQ, STRIDE, QUERY, is_training=False,
                                         do_lower_case=True)
    side = squad.load_eval_features(summary.side_info_file)
    batch = next(iter(squad.squad_dataset(record, SEQ, 100, is_training=False)))
    names = squad_export.model_input_names(version)
    inputs = {k: batch[k].numpy() for k in names}
    raw = {k: v.numpy() for k, v in squad_export.raw_outputs(version, model(inputs, training=False)).items()}
    threshold = V2_THRESHOLD if version == "v2.0" else None
    predictions = squad_postprocess.postprocess(
        side, {"unique_ids": batch["unique_ids"].numpy(), **raw}, version, SETTINGS["n_best_size"],
        SETTINGS["max_answer_length"], threshold)
    return inputs, raw, predictions


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Both versions exported, their Python-path results, and what a new process loads from the exports."""
    tmp_path = tmp_path_factory.mktemp("squad_export")
    tf.random.set_seed(3)
    models = {"v1.1": AlbertQuestionAnswering(_config()), "v2.0": AlbertSquadV2(_config(), dropout_rate=0.0)}
    spec, python = {}, {}
    for version, model in models.items():
        inputs, raw, predictions = _python_path(model, version, tmp_path)
        paths = squad_export.export_squad(
            model, str(tmp_path / version), squad_version=version, spm_model_file=SPM_MODEL,
            tflite=version == "v1.1", null_score_diff_threshold=V2_THRESHOLD if version == "v2.0" else None,
            **SETTINGS)
        spec[version] = {**paths, "inputs": {k: v.tolist() for k, v in inputs.items()},
                         "questions": QUESTIONS, "contexts": CONTEXTS}
        python[version] = {"raw": raw, "predictions": predictions, "paths": paths}
    spec_file, out_file = tmp_path / "spec.json", tmp_path / "out.json"
    spec_file.write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    # albert_tf is not imported: the exports stand alone.
    subprocess.run([sys.executable, "-c", LOADER, str(spec_file), str(out_file)], check=True, env=env,
                   cwd=str(tmp_path), timeout=300)
    return python, json.loads(out_file.read_text())


@pytest.mark.parametrize("version", ["v1.1", "v2.0"])
def test_raw_saved_model_matches_keras(exported, version):
    python, loaded = exported
    expected = python[version]["raw"]
    got = loaded[version]["raw"]
    assert sorted(got) == sorted(squad_export.V1_OUTPUTS if version == "v1.1" else squad_export.V2_OUTPUTS)
    for name, value in expected.items():
        if name.endswith("_index"):
            np.testing.assert_array_equal(np.asarray(got[name]), value, err_msg=name)
        else:
            np.testing.assert_allclose(np.asarray(got[name]), value, atol=1e-5, err_msg=name)


def test_tflite_matches_keras(exported):
    python, loaded = exported
    assert os.path.basename(python["v1.1"]["paths"]["tflite"]) == "albert_model.tflite"
    rows = loaded["v1.1"]["tflite"]
    for name in ("start_logits", "end_logits"):
        # TFLite's kernels round differently; these logits reach ~10 (large random weights).
        np.testing.assert_allclose(np.asarray([r[name] for r in rows]), python["v1.1"]["raw"][name], atol=1e-4)


@pytest.mark.parametrize("version", ["v1.1", "v2.0"])
def test_raw_text_answers_match_python_path(exported, version):
    python, loaded = exported
    text = loaded[version]["text"]
    expected = python[version]["predictions"].predictions
    assert text["answer_text"] == [expected[f"q{i}"] for i in range(len(CONTEXTS))]
    for context, answer, start, end in zip(CONTEXTS, text["answer_text"], text["answer_start"], text["answer_end"]):
        if start >= 0:
            assert context[start:end] == answer
        else:
            assert answer == ("empty" if version == "v1.1" else "")
    # The empty context has no window: "empty" (v1.1) / "" (v2.0), as the Python path.
    assert text["answer_start"][-1] == -1
    if version == "v2.0":
        null_odds = python[version]["predictions"].null_odds
        np.testing.assert_allclose(text["null_score"], [null_odds[f"q{i}"] for i in range(len(CONTEXTS))],
                                   atol=1e-5)
        assert text["has_answer"] == [bool(a) for a in text["answer_text"]]
    assert loaded[version]["vocab_file"].endswith("tiny-clean.model")


def test_long_context_uses_several_windows():
    # The test contexts must exercise the window loop: LONG spans several windows.
    pieces = squad_export.ContextPieces(tokenization.InGraphTokenizer(SPM_MODEL, True))(tf.constant([LONG]))
    num_pieces = int(pieces["ids"].row_lengths()[0])
    assert num_pieces > 2 * (SEQ - QUERY - 3)


def test_piece_offsets_equal_the_python_alignment_across_tie_breaks():
    # tiny-clean has "0" and "00" but no "000": the two tensorflow-text tokenizers split these numbers
    # differently (checked first), and the graph's ids and offsets must still be the Python path's.
    text = "It cost 5,000 dollars, then 8,000 more over 2,000 years; 1990, was 100,000."
    tokenizer = tokenization.InGraphTokenizer(SPM_MODEL, True)
    normalized = tokenizer.preprocess(tf.constant([text]))
    fast = tf_text.FastSentencepieceTokenizer(tokenizer.spm_model_proto).tokenize(normalized)
    with_offsets = tf_text.SentencepieceTokenizer(tokenizer.spm_model_proto).tokenize(normalized)
    assert fast.to_list() != with_offsets.to_list()
    pieces = squad_export.ContextPieces(tokenizer)(tf.constant([text]))
    alignment = squad.align_paragraph(tokenization.FullTokenizer(spm_model_file=SPM_MODEL).sp_model, text, True)
    assert pieces["ids"][0].numpy().tolist() == alignment.piece_ids
    assert pieces["first_char"][0].numpy().tolist() == alignment.tok_start_to_orig_index
    assert pieces["last_char"][0].numpy().tolist() == alignment.tok_end_to_orig_index


def test_doc_windows_and_max_context_equal_the_python_spans():
    cases = [(0, 3), (1, 3), (7, 1), (20, 5), (21, 5), (33, 7), (50, 2), (64, 10)]  # (pieces, query length)
    seq_length, stride = 24, 4
    windows = squad_export.doc_windows(tf.constant([c[0] for c in cases], tf.int64),
                                       tf.constant([c[1] for c in cases], tf.int64), seq_length, stride)
    is_max = squad_export.max_context(windows, seq_length).numpy()
    example, start, length = (windows[k].numpy().tolist() for k in ("example", "start", "length"))
    for b, (num_pieces, query) in enumerate(cases):
        spans = squad.doc_spans(num_pieces, seq_length - query - 3, stride)
        rows = [w for w in range(len(example)) if example[w] == b]
        assert [(start[w], length[w]) for w in rows] == list(spans)
        best = squad.max_context_span(spans, num_pieces)
        for k, w in enumerate(rows):
            expected = [False] * seq_length
            for i in range(length[w]):
                expected[query + 2 + i] = best[start[w] + i] == k
            assert is_max[w].tolist() == expected


def test_bad_settings_fail_before_export(tmp_path):
    model = AlbertQuestionAnswering(_config())
    with pytest.raises(ValueError, match="AlbertSquadV2"):
        squad_export.export_squad(model, str(tmp_path), squad_version="v2.0", max_seq_length=SEQ,
                                  max_query_length=QUERY)
    with pytest.raises(ValueError, match="max_query_length"):
        squad_export.export_squad(model, str(tmp_path), squad_version="v1.1", max_seq_length=20, max_query_length=17)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        squad_export.export_squad(model, str(tmp_path), squad_version="v1.1", max_seq_length=128)
    with pytest.raises(FileNotFoundError, match="spm_model_file"):
        squad_export.export_squad(model, str(tmp_path), squad_version="v1.1", max_seq_length=SEQ,
                                  max_query_length=QUERY, spm_model_file=str(tmp_path / "missing.model"))
    with pytest.raises(ValueError, match="tflite"):
        squad_export.export_squad(AlbertSquadV2(_config()), str(tmp_path), squad_version="v2.0",
                                  max_seq_length=SEQ, max_query_length=QUERY, tflite=True)
    assert not os.listdir(tmp_path)
