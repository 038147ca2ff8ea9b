"""SQuAD v1.1 / v2.0 fine-tuning: heads (official names, v2 math against numpy), post-processing against
hand-computed cases, the post-processing command, bad input, and train + evaluate + predict end to end
through the driver and the original `run_squad_v1.py` command line.

Every SQuAD file is generated here: contexts that need several windows, accents, answers at the first and
last character, unanswerable questions (v2.0).
"""
import collections
import json
import math
import os
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf

import albert_tf
from albert_tf import checkpoints
from albert_tf.tasks.squad import evaluate as squad_eval
from albert_tf.tasks.squad import postprocess as post
from albert_tf.configs import AlbertConfig
from albert_tf.checkpoints import source as model_source
from albert_tf.core import driver
from albert_tf.core.context import RunContext
from albert_tf.tasks.squad import data as squad
from albert_tf.modeling.heads import SquadV2Head
from albert_tf.modeling.models import AlbertQuestionAnswering, AlbertSquadV2
from albert_tf.tasks.squad.task import SquadRun, SquadTask
from albert_tf.tokenization import FullTokenizer
from conftest import bound

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPM_MODEL = os.path.join(ROOT, "tests", "fixtures", "tokenization", "tiny-clean.model")
CONFIG = {"vocab_size": 1000, "embedding_size": 8, "hidden_size": 16, "num_hidden_layers": 1,
          "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 64,
          "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
SEQ, STRIDE, QUERY = 32, 8, 8
LONG = " ".join(f"Item {i} is ready." for i in range(14))
ACCENTS = "Zoë met José in Zürich"


def _qa(qid, question, text=None, start=None, impossible=None):
    entry = {"id": qid, "question": question, "answers": [] if text is None else [{"text": text, "answer_start": start}]}
    if impossible is not None:
        entry["is_impossible"] = impossible
    return entry


def squad_file(path, version):
    """A small SQuAD file: a long context (several windows) and an accented one with answers at its first
    and last character; v2.0 adds unanswerable questions."""
    long_qas = [_qa(f"long{i}", f"Which item is {i}?", f"Item {i}", LONG.index(f"Item {i} ")) for i in (0, 6, 13)]
    accent_qas = [_qa("zoe", "Who met José?", "Zoë", 0), _qa("jose", "Whom did Zoë meet?", "José", 8),
                  _qa("where", "Where?", "Zürich", ACCENTS.index("Zürich"))]
    if version == "v2.0":
        long_qas.append(_qa("none1", "Which item is late?", impossible=True))
        accent_qas.append(_qa("none2", "Who left?", impossible=True))
    data = {"version": version, "data": [{"title": "t", "paragraphs": [
        {"context": LONG, "qas": long_qas}, {"context": ACCENTS, "qas": accent_qas}]}]}
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return str(path), data


def tiny_config():
    return AlbertConfig.from_dict(CONFIG)


# ----------------------------------------------------------------------------------------------
# Heads: official names, strict round trip, v2 math
# ----------------------------------------------------------------------------------------------

V2_HEAD_SHAPES = {  # H = 16
    "start_logits/dense/kernel": [16, 1], "start_logits/dense/bias": [1],
    "end_logits/dense_0/kernel": [32, 16], "end_logits/dense_0/bias": [16],
    "end_logits/LayerNorm/beta": [16], "end_logits/LayerNorm/gamma": [16],
    "end_logits/dense_1/kernel": [16, 1], "end_logits/dense_1/bias": [1],
    "answer_class/dense_0/kernel": [32, 16], "answer_class/dense_0/bias": [16],
    "answer_class/dense_1/kernel": [16, 1],
}


@pytest.mark.parametrize("version", ["v1.1", "v2.0"])
def test_heads_official_names_strict_round_trip(tmp_path, version):
    def build():
        if version == "v1.1":
            return AlbertQuestionAnswering(tiny_config())
        return AlbertSquadV2(tiny_config(), start_n_top=2, end_n_top=2)

    model = build()
    expected = V2_HEAD_SHAPES if version == "v2.0" else {"cls/squad/output_weights": [2, 16],
                                                          "cls/squad/output_bias": [2]}
    prefix = checkpoints.save_original_checkpoint(model, str(tmp_path / "model.ckpt"), global_step=7)
    shapes = dict(tf.train.list_variables(prefix))
    heads = {n: s for n, s in shapes.items() if not n.startswith("bert/") and n != "global_step"}
    assert heads == expected
    assert shapes["bert/pooler/dense/kernel"] == [16, 16]  # fine-tuned checkpoints carry the pooler
    other = type(model).from_config(model.get_config())  # serializable with its settings
    if isinstance(other, AlbertSquadV2):
        assert (other.squad.start_n_top, other.squad.end_n_top) == (2, 2)
    checkpoints.load_original_checkpoint(other, prefix)  # strict: raises on any missing or unused variable
    ids = tf.constant([[2, 10, 3, 11, 12, 13, 3, 0]])
    inputs = {"input_word_ids": ids, "input_mask": tf.cast(ids > 0, tf.int32),
              "input_type_ids": tf.constant([[0, 0, 0, 1, 1, 1, 1, 0]]), "p_mask": tf.constant([[0, 1, 1, 0, 0, 0, 1, 1]])}
    for key, value in model(inputs).items():
        if key != "encoder_outputs":
            np.testing.assert_array_equal(value.numpy(), other(inputs)[key].numpy())


def _log_softmax(x):
    shifted = x - x.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _top_k(x, k):
    index = np.argsort(-x, axis=-1, kind="stable")[..., :k]
    return np.take_along_axis(x, index, -1), index


def reference_v2_head(hidden, p_mask, w, k, k2, start_positions=None):
    """The original create_v2_model in numpy (float64), in its [S,B,H] layout."""
    out = hidden.transpose(1, 0, 2)
    p = p_mask.astype(np.float64)
    length = out.shape[0]

    def dense(x, name, bias=True):
        y = x @ w[f"{name}/kernel"]
        return y + w[f"{name}/bias"] if bias else y

    def layer_norm(x):
        mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + 1e-12) * w["end_logits/LayerNorm/gamma"] + w["end_logits/LayerNorm/beta"]

    def end_logits(end_input):
        return dense(layer_norm(np.tanh(dense(end_input, "end_logits/dense_0"))), "end_logits/dense_1")[..., 0]

    start_logits = dense(out, "start_logits/dense")[..., 0].T
    start_masked = start_logits * (1 - p) - 1e30 * p
    start_log_probs = _log_softmax(start_masked)
    result = {}
    if start_positions is not None:
        one_hot = np.eye(length)[start_positions]
        start_features = np.einsum("lbh,bl->bh", out, one_hot)
        logits = end_logits(np.concatenate([out, np.tile(start_features[None], [length, 1, 1])], -1)).T
        result["start_log_probs"] = start_log_probs
        result["end_log_probs"] = _log_softmax(logits * (1 - p) - 1e30 * p)
    else:
        top_lp, top_index = _top_k(start_log_probs, k)
        start_features = np.einsum("lbh,bkl->bkh", out, np.eye(length)[top_index])
        end_input = np.concatenate([np.tile(out[:, :, None], [1, 1, k, 1]),
                                    np.tile(start_features[None], [length, 1, 1, 1])], -1)
        logits = end_logits(end_input).transpose(1, 2, 0)
        end_lp, end_index = _top_k(_log_softmax(logits * (1 - p[:, None]) - 1e30 * p[:, None]), k2)
        result.update(start_top_log_probs=top_lp, start_top_index=top_index,
                      end_top_log_probs=end_lp.reshape(-1, k * k2), end_top_index=end_index.reshape(-1, k * k2))
    start_p = np.exp(_log_softmax(start_masked))
    features = np.concatenate([np.einsum("lbh,bl->bh", out, start_p), out[0]], -1)
    result["cls_logits"] = dense(np.tanh(dense(features, "answer_class/dense_0")), "answer_class/dense_1",
                                 bias=False)[:, 0]
    return result


def test_v2_head_matches_numpy_reference():
    rng = np.random.default_rng(0)
    batch, length, width, k, k2 = 3, 9, 8, 3, 2
    hidden = rng.normal(size=(batch, length, width)).astype(np.float32)
    p_mask = np.ones((batch, length), np.int32)
    p_mask[:, 0] = 0
    p_mask[0, 3:8] = p_mask[1, 2:5] = p_mask[2, 4:9] = 0
    head = SquadV2Head(start_n_top=k, end_n_top=k2, dropout_rate=0.0)
    head(tf.constant(hidden), tf.constant(p_mask))
    weights = {}
    for name, variable in head.tf1_variables().items():
        weights[name] = rng.normal(scale=0.5, size=variable.shape).astype(np.float32)
        variable.assign(weights[name])
    weights = {n: v.astype(np.float64) for n, v in weights.items()}
    starts = np.array([0, 3, 6])
    for training in (False, True):
        got = head(tf.constant(hidden), tf.constant(p_mask), tf.constant(starts) if training else None,
                   training=training)
        want = reference_v2_head(hidden.astype(np.float64), p_mask, weights, k, k2, starts if training else None)
        assert set(got) == set(want)
        for key, value in want.items():
            value_got = got[key].numpy()
            if key.endswith("index"):
                np.testing.assert_array_equal(value_got, value)
            elif key in ("start_log_probs", "end_log_probs"):
                allowed = p_mask == 0
                np.testing.assert_allclose(value_got[allowed], value[allowed], atol=1e-5)
                assert (value_got[~allowed] < -1e29).all()
            else:
                np.testing.assert_allclose(value_got, value, atol=1e-5)


def test_losses_hand_computed():
    task_v1 = SquadTask(SquadRun(output_dir="x", squad_version="v1.1"))
    task_v2 = SquadTask(SquadRun(output_dir="x", squad_version="v2.0"))
    features = {"start_positions": tf.constant([1]), "end_positions": tf.constant([1]),
                "is_impossible": tf.constant([1])}
    # v1: softmax CE of [0, 0] at 1 is ln 2; of [0, ln 3] at 1 is ln(4/3); the loss is their mean.
    outputs = {"start_logits": tf.constant([[0.0, 0.0]]), "end_logits": tf.constant([[0.0, math.log(3.0)]])}
    assert float(task_v1.loss(features, outputs)) == pytest.approx((math.log(2) + math.log(4 / 3)) / 2, abs=1e-6)
    # v2: the log-probs are given; 0.5 (2 + 0.5) + 0.5 sigmoid-CE(label 1, logit 0) = 1.25 + 0.5 ln 2.
    outputs = {"start_log_probs": tf.constant([[-1.0, -2.0]]), "end_log_probs": tf.constant([[-3.0, -0.5]]),
               "cls_logits": tf.constant([0.0])}
    assert float(task_v2.loss(features, outputs)) == pytest.approx(1.25 + 0.5 * math.log(2), abs=1e-6)


# ----------------------------------------------------------------------------------------------
# Post-processing against hand-computed cases
# ----------------------------------------------------------------------------------------------

# Context "aa bb aa dd ee": pieces aa, bb, aa, dd, ee at characters 0-1, 3-4, 6-7, 9-10, 12-13.
CONTEXT = "aa bb aa dd ee"
STARTS, ENDS = [0, 3, 6, 9, 12], [1, 4, 7, 10, 13]


def _info(uid, example, span, start, length, max_context):
    """A feature of sequence [CLS] q [SEP] pieces... [SEP] pad (S=10): the doc starts at position 3."""
    return squad.SquadFeatureInfo(uid, example, span, 3, start, STARTS[start:start + length],
                                  ENDS[start:start + length], {3 + i: max_context[i] for i in range(length)})


def side_info(features, num_examples):
    examples = [squad.SquadExample(f"q{i}", "?", CONTEXT) for i in range(num_examples)]
    return squad.EvalSideInfo(examples, features, {"max_seq_length": 10})


def _v1_row(start, end):
    """Logit rows [10] of zeros with the given {position: value}."""
    s, e = np.zeros(10, np.float32), np.zeros(10, np.float32)
    for pos, value in start.items():
        s[pos] = value
    for pos, value in end.items():
        e[pos] = value
    return s, e


def test_v1_filters_and_empty_fallback():
    side = side_info([_info(1000, 0, 0, 0, 5, [True] * 5)], 2)  # q1 has no feature (a skipped question)
    # Best starts: 1 (question), 9 (padding), 4 (bb); best ends: 2 (question [SEP]), 5 (aa), 3 (aa).
    # Only (4, 5) survives: "bb aa", 5 + 6.
    s, e = _v1_row({1: 10, 9: 8, 4: 5}, {2: 9, 5: 6, 3: 3})
    raw = {"unique_ids": np.array([1000]), "start_logits": s[None], "end_logits": e[None]}
    out = post.postprocess(side, raw, "v1.1", n_best_size=3)
    assert out.predictions == {"q0": "bb aa", "q1": "empty"}
    assert out.nbest["q0"] == [{"text": "bb aa", "probability": 1.0, "start_log_prob": 5.0, "end_log_prob": 6.0}]
    assert out.nbest["q1"] == [{"text": "empty", "probability": 1.0, "start_log_prob": 0.0, "end_log_prob": 0.0}]
    assert out.null_odds is None
    # Two pieces exceed max_answer_length=1: nothing is left.
    assert post.postprocess(side, raw, "v1.1", n_best_size=3, max_answer_length=1).predictions["q0"] == "empty"


def test_v1_max_context_ranking_and_probabilities():
    # Spans: pieces 0-3 and 2-4. Max context (min(left, right) + 0.01 len): pieces 0-2 -> span 0,
    # pieces 3-4 -> span 1.
    side = side_info([_info(1000, 0, 0, 0, 4, [True, True, True, False]),
                      _info(1001, 0, 1, 2, 3, [False, True, True])], 1)
    # Feature 0: start 6 (dd, not max context) dropped; (4,6) "bb aa dd" = 3 + 2, (4,5) "bb aa" = 3 + 1.
    s0, e0 = _v1_row({6: 9, 4: 3}, {6: 2, 5: 1})
    # Feature 1: start 3 (aa, not max context) dropped; (4,4) "dd" = 2.5 + 2, (4,5) "dd ee" = 2.5 + 0.5.
    s1, e1 = _v1_row({3: 7, 4: 2.5}, {4: 2, 5: 0.5})
    raw = {"unique_ids": np.array([1001, 1000]), "start_logits": np.stack([s1, s0]),
           "end_logits": np.stack([e1, e0])}  # any row order
    out = post.postprocess(side, raw, "v1.1", n_best_size=2)
    assert out.predictions == {"q0": "bb aa dd"}
    p = 1 / (1 + math.exp(-0.5))  # softmax of [5, 4.5]
    assert [(x["text"], x["start_log_prob"], x["end_log_prob"]) for x in out.nbest["q0"]] == [
        ("bb aa dd", 3.0, 2.0), ("dd", 2.5, 2.0)]
    assert [x["probability"] for x in out.nbest["q0"]] == pytest.approx([p, 1 - p], abs=1e-12)


def _v2_raw(rows):
    """Raw v2 results from (unique id, starts, start lps, ends, end lps, cls) rows."""
    keys = ("unique_ids", "start_top_index", "start_top_log_probs", "end_top_index", "end_top_log_probs",
            "cls_logits")
    return {k: np.array([r[i] for r in rows], np.float32 if "log_probs" in k or k == "cls_logits" else np.int64)
            for i, k in enumerate(keys)}


def test_v2_dedup_average_null_score_and_threshold(tmp_path):
    side = side_info([_info(1000, 0, 0, 0, 5, [True] * 5),
                      _info(1001, 1, 0, 0, 5, [True] * 5),
                      _info(1002, 2, 0, 0, 3, [True] * 3), _info(1003, 2, 1, 2, 3, [False, True, True])], 4)
    raw = _v2_raw([
        # q0, k=2, k'=2: (5,5) "aa" -0.7, (5,6) "aa dd" -2.0, (3,3) "aa" -1.0 (same text: skipped),
        # (3,4) "aa bb" -0.9.
        (1000, [5, 3], [-0.5, -0.6], [5, 6, 3, 4], [-0.2, -1.5, -0.4, -0.3], 0.25),
        # q1: start 4 twice: (4,4) from (-1,-2) and (-3,-4) averages to (-2,-3); (4,5) "bb aa" (-1,-5);
        # end 9 is padding.
        (1001, [4, 4], [-1.0, -3.0], [4, 5, 4, 9], [-2.0, -5.0, -4.0, -0.5], 0.5),
        # q2: every start is in the question (1), padding (9) or not max context (3 of feature 1).
        (1002, [1, 9], [-0.1, -0.2], [1, 2, 9, 4], [-0.1, -0.1, -0.1, -0.1], 0.75),
        (1003, [3, 1], [-0.1, -0.2], [4, 5, 1, 2], [-0.1, -0.1, -0.1, -0.1], -0.5),
    ])
    out = post.postprocess(side, raw, "v2.0")
    assert out.predictions == {"q0": "aa", "q1": "bb", "q2": "", "q3": ""}
    z = 1 + math.exp(-0.2) + math.exp(-1.3)  # softmax of [-0.7, -0.9, -2.0]
    assert [(x["text"], x["probability"]) for x in out.nbest["q0"]] == [
        ("aa", pytest.approx(1 / z)), ("aa bb", pytest.approx(math.exp(-0.2) / z)),
        ("aa dd", pytest.approx(math.exp(-1.3) / z))]
    assert [(x["text"], x["start_log_prob"], x["end_log_prob"]) for x in out.nbest["q1"]] == [
        ("bb", -2.0, -3.0), ("bb aa", -1.0, -5.0)]
    assert out.nbest["q2"] == [{"text": "", "probability": 1.0, "start_log_prob": -1e6, "end_log_prob": -1e6}]
    # Null score: min over the features of the example; 1e6 for an example without features.
    assert out.null_odds == {"q0": 0.25, "q1": 0.5, "q2": -0.5, "q3": 1000000.0}
    # A threshold answers "" where null score >= threshold.
    assert post.postprocess(side, raw, "v2.0", null_score_diff_threshold=0.5).predictions == {
        "q0": "aa", "q1": "", "q2": "", "q3": ""}
    # Files: json.dumps(indent=4) plus a newline.
    paths = post.write_predictions(out, str(tmp_path))
    assert sorted(paths) == ["nbest_predictions.json", "null_odds.json", "predictions.json"]
    assert open(paths["predictions.json"]).read() == json.dumps(out.predictions, indent=4) + "\n"
    assert json.loads(open(paths["null_odds.json"]).read()) == out.null_odds


def test_v2_threshold_tuning_is_the_original_two_pass_evaluation(tmp_path):
    side = side_info([_info(1000, 0, 0, 0, 5, [True] * 5), _info(1001, 1, 0, 0, 5, [True] * 5)], 2)
    raw = _v2_raw([(1000, [3, 4], [-0.1, -0.2], [3, 4, 4, 5], [-0.1, -0.2, -0.3, -0.4], 0.25),
                   (1001, [4, 3], [-0.1, -0.2], [4, 5, 3, 4], [-0.1, -0.2, -0.3, -0.4], 0.75)])
    dataset = [{"paragraphs": [{"context": CONTEXT, "qas": [
        {"id": "q0", "question": "?", "answers": [{"text": "aa", "answer_start": 0}]},
        {"id": "q1", "question": "?", "answers": [], "is_impossible": True}]}]}]
    # Pass 1 answers q0 "aa" (F1 1) and q1 "bb" (0). find_best_thresh from 0.0: abstaining everywhere
    # scores 1 of 2; answering q0 (null 0.25) gives 2 -> threshold 0.25, best_f1 100; answering q1 too
    # gives 1. Pass 2 answers only where null < 0.25: nowhere, so q0 scores 0 and q1 1 -> F1 50.
    result = post.postprocess_and_write(side, raw, "v2.0", str(tmp_path), dataset, tune_null_threshold=True)
    assert result["best_f1"] == 100.0 and result["best_f1_thresh"] == 0.25
    assert result["null_score_diff_threshold"] == 0.25
    assert (result["f1"], result["exact"], result["HasAns_f1"], result["NoAns_f1"]) == (50.0, 50.0, 0.0, 100.0)
    assert json.loads((tmp_path / "predictions.json").read_text()) == {"q0": "", "q1": ""}
    # Without tuning: the best non-null texts.
    result = post.postprocess_and_write(side, raw, "v2.0", str(tmp_path), dataset)
    assert json.loads((tmp_path / "predictions.json").read_text()) == {"q0": "aa", "q1": "bb"}
    assert result["f1"] == 50.0


def test_raw_results_errors(tmp_path):
    side = side_info([_info(1000, 0, 0, 0, 5, [True] * 5)], 1)
    s, e = _v1_row({}, {})
    v1 = {"unique_ids": np.array([1000]), "start_logits": s[None], "end_logits": e[None]}
    with pytest.raises(post.PostprocessError, match="pass --squad_version=v1.1"):
        post.postprocess(side, v1, "v2.0")
    with pytest.raises(post.PostprocessError, match="unique id 1000 has no result"):
        post.postprocess(side, dict(v1, unique_ids=np.array([7])), "v1.1")
    with pytest.raises(post.PostprocessError, match="max_seq_length=10"):
        post.postprocess(side, dict(v1, start_logits=np.zeros((1, 12)), end_logits=np.zeros((1, 12))), "v1.1")


# ----------------------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------------------

def test_bad_input_messages(tmp_path):
    v2_path, _ = squad_file(tmp_path / "v2.json", "v2.0")
    config = tmp_path / "config.json"
    config.write_text(json.dumps(CONFIG))
    common = dict(output_dir=str(tmp_path / "out"), albert_config_file=str(config), spm_model_file=SPM_MODEL,
                  max_seq_length=SEQ, max_query_length=QUERY)
    with pytest.raises(squad.SquadDataError, match=r"v2\.json.*--squad_version=v2\.0"):
        bound(SquadTask, SquadRun(**common, squad_version="v1.1", do_train=True, train_file=v2_path)).validate()
    with pytest.raises(ValueError, match="--do_train needs --train_file"):
        bound(SquadTask, SquadRun(**common, do_train=True)).num_train_steps()  # the driver asks before validate()
    (tmp_path / "bad.json").write_text("{\"data\": [")
    with pytest.raises(squad.SquadDataError, match=r"bad\.json: not valid JSON"):
        bound(SquadTask, SquadRun(**common, do_predict=True, predict_file=str(tmp_path / "bad.json"))).validate()
    test_file = tmp_path / "test.json"
    test_file.write_text(json.dumps({"data": [{"paragraphs": [{"context": "a b", "qas": [
        {"id": "t", "question": "?", "answers": []}]}]}]}))
    with pytest.raises(ValueError, match="no gold answers"):
        bound(SquadTask, SquadRun(**common, do_eval=True, predict_file=str(test_file))).validate()
    with pytest.raises(ValueError, match="--max_seq_length=70 exceeds max_position_embeddings=64"):
        bound(SquadTask, SquadRun(**{**common, "max_seq_length": 70}, do_predict=True, predict_file=v2_path,
                                  squad_version="v2.0")).validate()
    # A question whose context cannot be aligned is reported with its id and counted.
    tokenizer = FullTokenizer(spm_model_file=SPM_MODEL)
    examples = [squad.SquadExample("ok", "Who?", ACCENTS), squad.SquadExample("bad", "Where?", "a  b")]
    summary = squad.write_squad_features(examples, tokenizer, str(tmp_path / "f.tf_record"), SEQ, STRIDE, QUERY,
                                         False, True)
    assert summary.skipped_qas_ids == ("bad",)
    assert "1 of 2 questions" in summary.skipped_message("dev.json") and "'bad'" in summary.skipped_message("x")
    # Feature files that do not fit the run.
    with pytest.raises(squad.SquadDataError, match=r"f\.tf_record was written with max_seq_length=32.*=24"):
        squad.check_feature_file(str(tmp_path / "f.tf_record"), 24, is_training=False)
    with pytest.raises(squad.SquadDataError, match=r"f\.tf_record holds no training features"):
        squad.check_feature_file(str(tmp_path / "f.tf_record"), SEQ, is_training=True)


# ----------------------------------------------------------------------------------------------
# End to end: train, evaluate, predict (driver), the post-processing command, run_squad_v1.py
# ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One short training run per version with evaluation and prediction: {version: (run, data)}."""
    root = tmp_path_factory.mktemp("squad")
    config = root / "config.json"
    config.write_text(json.dumps(CONFIG))
    out = {}
    for version in ("v1.1", "v2.0"):
        path, data = squad_file(root / f"{version}.json", version)
        predict_path = str(root / f"{version}_dev.json")
        shutil.copy(path, predict_path)
        run = SquadRun(output_dir=str(root / f"out_{version}"), squad_version=version, train_file=path,
                       predict_file=predict_path, albert_config_file=str(config), spm_model_file=SPM_MODEL,
                       max_seq_length=SEQ, doc_stride=STRIDE, max_query_length=QUERY, train_batch_size=2,
                       num_train_epochs=1.0, learning_rate=1e-3, save_checkpoints_steps=100, steps_per_loop=100,
                       predict_batch_size=4, do_train=True, do_eval=True, do_predict=True, start_n_top=3,
                       end_n_top=2)
        parses = collections.Counter()  # every JSON read of the SQuAD package goes through load_json
        with pytest.MonkeyPatch.context() as patch:
            read = squad_eval.load_json
            patch.setattr(squad_eval, "load_json", lambda p, what: parses.update([p]) or read(p, what))
            result = driver.run(SquadTask(run))
        out[version] = (run, data, result, parses)
    return out


@pytest.mark.parametrize("version", ["v1.1", "v2.0"])
def test_each_squad_file_is_parsed_once_per_run(runs, version):
    """Train, evaluate every checkpoint and predict: the train and the predict JSON are each parsed once
    (the schedule, version checks, features, post-processing and scoring share the parse)."""
    run, _, _, parses = runs[version]
    assert parses == {run.train_file: 1, run.predict_file: 1}


@pytest.mark.parametrize("version", ["v1.1", "v2.0"])
def test_train_evaluate_predict(runs, version):
    run, data, result, _ = runs[version]
    out = run.output_dir
    questions = [qa["id"] for article in data["data"] for p in article["paragraphs"] for qa in p["qas"]]
    # Steps count questions, not features: int(6 or 8 questions / 2 * 1.0).
    assert result["eval"][-1]["global_step"] == len(questions) // 2
    side = squad.load_eval_features(squad.eval_features_path(os.path.join(out, "predict.tf_record")))
    assert len(side.features) > len(questions)  # the long context needs several windows
    raw = post.load_raw_results(os.path.join(out, "raw_results.npz"), version)
    assert list(raw["unique_ids"]) == [f.unique_id for f in side.features]  # feature order
    num = len(side.features)
    shapes = ({"start_logits": (num, SEQ), "end_logits": (num, SEQ)} if version == "v1.1" else
              {"start_top_log_probs": (num, 3), "start_top_index": (num, 3), "end_top_log_probs": (num, 6),
               "end_top_index": (num, 6), "cls_logits": (num,)})
    assert {k: v.shape for k, v in raw.items() if k != "unique_ids"} == shapes
    predictions = json.load(open(os.path.join(out, "predictions.json")))
    nbest = json.load(open(os.path.join(out, "nbest_predictions.json")))
    assert list(predictions) == questions and list(nbest) == questions
    for qid, entries in nbest.items():
        assert sum(e["probability"] for e in entries) == pytest.approx(1.0)
        scores = [e["start_log_prob"] + e["end_log_prob"] for e in entries]
        assert scores == sorted(scores, reverse=True)
    # The reported scores are the official ones of the written files.
    if version == "v1.1":
        assert not os.path.exists(os.path.join(out, "null_odds.json"))
        assert result["predict"]["eval"]["f1"] == squad_eval.evaluate_v1(data, predictions)["f1"]
    else:
        null_odds = json.load(open(os.path.join(out, "null_odds.json")))
        assert list(null_odds) == questions
        assert result["predict"]["eval"]["f1"] == squad_eval.evaluate_v2(data, predictions, null_odds)["f1"]
        assert "null_score_diff_threshold" in result["predict"]["eval"]
    text = open(os.path.join(out, "eval_results.txt")).read()
    assert "f1 = " in text and os.path.exists(os.path.join(out, "model.ckpt-best.index"))


def _cli_args(run, version, out):
    return [f"--squad_version={version}", f"--predict_file={run.predict_file}",
            f"--predict_feature_file={os.path.join(run.output_dir, 'predict.tf_record')}",
            f"--raw_results={os.path.join(run.output_dir, 'raw_results.npz')}", f"--output_dir={out}"]


def test_postprocess_command_reproduces_the_run(runs, tmp_path, capsys):
    for version, (run, data, result, _) in runs.items():
        out = tmp_path / version
        args = _cli_args(run, version, out) + (["--tune_null_threshold"] if version == "v2.0" else [])
        assert post.main(args) == 0
        printed = json.loads(capsys.readouterr().out)
        assert printed == result["predict"]["eval"]
        for name in ("predictions.json", "nbest_predictions.json", "null_odds.json"):
            if version == "v2.0" or name != "null_odds.json":
                assert (out / name).read_text() == open(os.path.join(run.output_dir, name)).read()
    # The v1.1 results given as v2.0, and the v2.0 file given as v1.1, fail with one line naming the fix.
    assert post.main(_cli_args(runs["v1.1"][0], "v2.0", tmp_path / "x")) == 2
    assert "pass --squad_version=v1.1" in capsys.readouterr().err
    assert post.main(_cli_args(runs["v2.0"][0], "v1.1", tmp_path / "x")) == 2
    assert "pass --squad_version=v2.0" in capsys.readouterr().err


def test_original_v1_command_line_predicts_alone(runs, tmp_path):
    """run_squad_v1.py with the original flags, predicting only with a fine-tuned run directory (the
    original crashed here), reuses the predict features and reproduces the run's raw results; with
    --export_dir it also writes the exports (the original's TFLite file among them)."""
    run = runs["v1.1"][0]
    out = tmp_path / "predict_only"
    command = [sys.executable, os.path.join(ROOT, "run_squad_v1.py"),
               f"--albert_config_file={run.albert_config_file}", f"--spm_model_file={SPM_MODEL}",
               f"--output_dir={out}", f"--predict_file={run.predict_file}",
               f"--predict_feature_file={os.path.join(run.output_dir, 'predict.tf_record')}",
               f"--predict_feature_left_file={tmp_path / 'left.pkl'}", f"--init_checkpoint={run.output_dir}",
               "--do_predict", "--do_lower_case", f"--max_seq_length={SEQ}", f"--doc_stride={STRIDE}",
               f"--max_query_length={QUERY}", "--predict_batch_size=3", "--n_best_size=20",
               "--max_answer_length=30", "--use_einsum=true", "--use_tpu=false", f"--export_dir={out / 'export'}"]
    env = dict(os.environ, PYTHONPATH=ROOT, CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = post.load_raw_results(str(out / "raw_results.npz"), "v1.1")
    want = post.load_raw_results(os.path.join(run.output_dir, "raw_results.npz"), "v1.1")
    np.testing.assert_array_equal(got["unique_ids"], want["unique_ids"])
    np.testing.assert_allclose(got["start_logits"], want["start_logits"], atol=1e-5)
    assert (out / "predictions.json").read_text() == open(os.path.join(run.output_dir, "predictions.json")).read()
    assert not (out / "predict.tf_record").exists()  # the given feature file was used as it is
    assert (out / "export" / "albert_model.tflite").stat().st_size > 0
    assert len(os.listdir(out / "export" / "saved_model")) == 2  # raw outputs and raw text


def test_v2_export_uses_the_threshold_tuned_with_the_best_checkpoint(tmp_path, monkeypatch):
    """A v2.0 run records the tuned threshold per checkpoint; the export uses the best checkpoint's one
    (so the raw-text model answers as the run's predictions.json), --null_score_diff_threshold wins."""
    from albert_tf.core.best_checkpoint import BEST_CHECKPOINT, BestCheckpointTracker
    from albert_tf.export import deploy
    from albert_tf.tasks.squad import export as squad_export

    out = tmp_path / "run"
    out.mkdir()
    source = albert_tf.save_original_checkpoint(AlbertSquadV2(tiny_config()), str(out / "model.ckpt"), global_step=2)
    tracker = BestCheckpointTracker(str(out), "f1")
    tracker.record(1, {"f1": 40.0, "exact": 30.0, "null_score_diff_threshold": -1.5}, None)
    tracker.record(2, {"f1": 55.0, "exact": 50.0, "null_score_diff_threshold": 2.25}, source)
    tracker.record(3, {"f1": 50.0, "exact": 45.0, "null_score_diff_threshold": 0.75}, None)
    assert os.path.exists(str(out / (BEST_CHECKPOINT + ".index")))
    used = []
    monkeypatch.setattr(squad_export, "export_squad",
                        lambda model, export_dir, **kw: used.append(kw["null_score_diff_threshold"]) or {})
    monkeypatch.setattr(squad_export, "SquadFeatureServing",  # no ONNX / TFLite here
                        lambda *args: types.SimpleNamespace(input_names=[]))
    monkeypatch.setattr(deploy, "export_task", lambda *args: {})

    def export(**overrides):
        run = SquadRun(output_dir=str(out), squad_version=overrides.pop("squad_version", "v2.0"),
                       spm_model_file=SPM_MODEL, **overrides)
        serving = driver.serving_info(str(out), model_source.resolve_tf1(str(out / BEST_CHECKPOINT)))
        SquadTask(run, RunContext(run)).export(None, str(tmp_path / "export"), serving)

    export()
    export(null_score_diff_threshold=-0.5)
    export(squad_version="v1.1")
    assert used == [2.25, -0.5, None]
    os.remove(out / "best_trial.txt")  # no record: the best non-null span, as before
    export()
    assert used[-1] is None
