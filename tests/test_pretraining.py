"""run_pretraining end to end (like the original run_pretraining_test), its loss, resume, and the demo."""
import os
import subprocess
import sys

import numpy as np
import pytest

import albert_tf
from albert_tf import checkpoints, metrics
from albert_tf import runs
from albert_tf.tasks.pretraining import task as pretraining
from albert_tf.checkpoints import read_original_checkpoint
from albert_tf.data import records
from conftest import ROOT

SEQ, PRED = 13, 7
# The original run_pretraining_test config.
CONFIG = dict(vocab_size=97, embedding_size=5, hidden_size=14, num_hidden_layers=3, num_hidden_groups=1,
              num_attention_heads=2, intermediate_size=19, inner_group_num=1, hidden_act="gelu",
              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, max_position_embeddings=SEQ,
              type_vocab_size=2, initializer_range=0.02)


def write_random_examples(path, n, seed=0):
    rng = np.random.default_rng(seed)
    with records.RoundRobinWriter([path]) as writer:
        for _ in range(n):
            features = {
                "input_ids": records.int64_feature(rng.integers(5, 97, SEQ)),
                "input_mask": records.int64_feature(np.ones(SEQ, np.int64)),
                "segment_ids": records.int64_feature(np.repeat([0, 1], [6, SEQ - 6])),
                "token_boundary": records.int64_feature(np.ones(SEQ, np.int64)),
                "masked_lm_positions": records.int64_feature(rng.choice(np.arange(1, SEQ), PRED, replace=False)),
                "masked_lm_ids": records.int64_feature(rng.integers(5, 97, PRED)),
                "masked_lm_weights": records.float_feature(np.ones(PRED)),
                "next_sentence_labels": records.int64_feature([rng.integers(0, 2)]),
            }
            writer.write(records.to_example(features).SerializeToString())


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain")
    config_file = str(root / "albert_config.json")
    albert_tf.AlbertConfig.from_dict(CONFIG).to_json_file(config_file)
    data = str(root / "train.tfrecord")
    write_random_examples(data, 64)
    return root, config_file, data


def _run(setup, output_dir, **overrides):
    root, config_file, data = setup
    values = dict(albert_config_file=config_file, input_file=data, output_dir=str(output_dir), do_train=True,
                  do_eval=True, train_batch_size=8, eval_batch_size=4, max_seq_length=SEQ,
                  max_predictions_per_seq=PRED, num_train_steps=2, num_warmup_steps=1, save_checkpoints_steps=1,
                  max_eval_steps=3, steps_per_loop=1, write_summaries=False)
    values.update(overrides)
    return runs.run_pretraining(pretraining.PretrainingRun(**values))


def test_train_and_eval_writes_the_original_outputs(setup, tmp_path):
    out = tmp_path / "out"
    result = _run(setup, out)
    for name in ("model.ckpt-best", "model.ckpt-1", "model.ckpt-2"):
        for suffix in (".index", ".data-00000-of-00001"):
            assert (out / (name + suffix)).exists(), name + suffix
    assert (out / "checkpoint").exists() and (out / "eval_results.txt").exists()
    blocks = metrics.read_eval_results(str(out / "eval_results.txt"))
    assert [set(block) for block in blocks] == [set(pretraining.EVAL_KEYS) | {"best"}] * 2
    assert [r["global_step"] for r in result["eval"]] == [1, 2]
    assert result["train"]["global_step"] == 2
    values = read_original_checkpoint(str(out / "model.ckpt-2"))
    assert values["global_step"] == 2 and "cls/predictions/output_bias" in values
    # The official-layout output loads strictly into a fresh pretrainer, with the saved values.
    model = albert_tf.AlbertPretrainer(albert_tf.AlbertConfig.from_dict(CONFIG))
    albert_tf.load_original_checkpoint(model, str(out / "model.ckpt-2"))
    for name, variable in model.tf1_variables().items():
        np.testing.assert_array_equal(variable.numpy(), values[name])


def test_resume_continues_from_the_last_save(setup, tmp_path):
    out = tmp_path / "resume"
    _run(setup, out, do_eval=False)
    result = _run(setup, out, do_eval=False, num_train_steps=4)
    assert result["train"]["global_step"] == 4
    assert read_original_checkpoint(str(out / "model.ckpt-4"))["global_step"] == 4


def test_eval_only_and_init_from_encoder_only_checkpoint(setup, tmp_path):
    config = albert_tf.AlbertConfig.from_dict(CONFIG)
    encoder = albert_tf.AlbertModel(config)
    prefix = albert_tf.save_original_checkpoint(encoder, str(tmp_path / "enc" / "model.ckpt"), global_step=9)
    result = _run(setup, tmp_path / "eval_only", do_train=False, init_checkpoint=prefix)
    assert result["eval"][0]["global_step"] == 9
    model = albert_tf.AlbertPretrainer(config)
    fresh_bias = model.masked_lm.dense.kernel.numpy()
    report = checkpoints.initialize_from_checkpoint(model, prefix)
    assert sorted(report.loaded) == sorted(encoder.tf1_variables())
    np.testing.assert_array_equal(model.encoder.pooler.kernel.numpy(), encoder.pooler.kernel.numpy())
    np.testing.assert_array_equal(model.masked_lm.dense.kernel.numpy(), fresh_bias)  # heads start fresh
    with pytest.raises(FileNotFoundError, match="Train first"):
        _run(setup, tmp_path / "nothing", do_train=False)


def test_loss_matches_the_original_formula():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 3, 11)).astype(np.float32)
    sop = rng.normal(size=(2, 2)).astype(np.float32)
    ids = rng.integers(0, 11, (2, 3)).astype(np.int32)
    weights = np.array([[1, 1, 0], [1, 0, 0]], np.float32)
    labels = np.array([[1], [0]], np.int32)
    features = dict(masked_lm_ids=ids, masked_lm_weights=weights, next_sentence_labels=labels)
    got = pretraining.pretraining_loss(features, dict(mlm_logits=logits, sop_logits=sop)).numpy()

    def log_softmax(x):
        x = x - x.max(-1, keepdims=True)
        return x - np.log(np.exp(x).sum(-1, keepdims=True))

    per = -np.take_along_axis(log_softmax(logits), ids[..., None], -1)[..., 0]
    mlm = (per * weights).sum() / (weights.sum() + 1e-5)
    sop_loss = -np.take_along_axis(log_softmax(sop), labels, -1).mean()
    np.testing.assert_allclose(got, mlm + sop_loss, rtol=1e-5)


def test_bad_runs_fail_clearly(setup, tmp_path):
    with pytest.raises(ValueError, match="max_position_embeddings"):
        _run(setup, tmp_path / "a", max_seq_length=14)
    with pytest.raises(FileNotFoundError, match="input_file"):
        _run(setup, tmp_path / "b", input_file=str(tmp_path / "missing-*.tfrecord"))
    with pytest.raises(ValueError, match="max_predictions_per_seq"):
        _run(setup, tmp_path / "c", max_predictions_per_seq=5)


def test_command_line(setup, tmp_path):
    _, config_file, data = setup
    out = tmp_path / "cli"
    cmd = [sys.executable, os.path.join(ROOT, "run_pretraining.py"), f"--albert_config_file={config_file}",
           f"--input_file={data}", f"--output_dir={out}", "--do_eval", "--train_batch_size=8",
           "--eval_batch_size=4", f"--max_seq_length={SEQ}", f"--max_predictions_per_seq={PRED}",
           "--num_train_steps=2", "--num_warmup_steps=1", "--save_checkpoints_steps=2", "--max_eval_steps=2",
           "--steps_per_loop=1", "--optimizer=adamw", "--mixed_precision=bfloat16"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "model.ckpt-best.index").exists() and "masked_lm_accuracy" in (out / "eval_results.txt").read_text()
    # Mixed precision keeps float32 variables, so the official-layout checkpoint stays float32.
    values = read_original_checkpoint(str(out / "model.ckpt-2"))
    assert values["bert/embeddings/word_embeddings"].dtype == np.float32
