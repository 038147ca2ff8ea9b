"""The one driver (albert_tf.core.driver) with a toy task: resume, completion of an interrupted save,
eval-only, best selection across runs, keep_checkpoint_max, predict/export checkpoint choice, and the
strict flag table."""
import dataclasses
import glob
import logging
import os
import subprocess
import sys
from typing import Optional

import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from albert_tf import checkpoints, metrics
from albert_tf.configs import AlbertConfig
from albert_tf.core import driver
from albert_tf.core import flags as runtime_flags
from albert_tf.core.best_checkpoint import read_best_trial
from albert_tf.core.task import EvalSet, RunSettings, Task
from albert_tf.modeling import AlbertClassifier

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SEQ, VOCAB = 8, 40
CONFIG = AlbertConfig(vocab_size=VOCAB, embedding_size=8, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=16, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                      max_position_embeddings=SEQ)


def _examples(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, VOCAB, (n, SEQ)).astype(np.int32)
    return {"input_word_ids": ids, "input_mask": np.ones_like(ids), "input_type_ids": np.zeros_like(ids),
            "label_ids": (ids[:, 0] % 2).astype(np.int32)}


@dataclasses.dataclass(kw_only=True)
class ToyRun(RunSettings):
    train_steps: int = 4
    # Evaluation score reported for each step (None: the real accuracy), to steer best selection.
    scores: Optional[dict] = None
    crash_at: Optional[int] = None  # simulate a kill while evaluating this step
    max_seq_length: int = SEQ  # a compatibility fact of the output directory


class ToyTask(Task):
    """Binary classification of a small fixed set, seeded, so runs are reproducible."""

    name = "toy"
    metric_key = "eval_accuracy"
    compatibility_fields = ("max_seq_length",)

    def num_train_steps(self) -> int:
        return self.settings.train_steps

    def build_model(self, encoder=None):
        tf.keras.utils.set_random_seed(0)
        return AlbertClassifier(CONFIG, 2, dropout_rate=0.0, encoder=encoder)

    def train_dataset(self, input_context):
        # Shuffled (seeded) over several batches: a resumed run matches an uninterrupted one only if it
        # continues the input where the killed run stopped.
        batch = input_context.get_per_replica_batch_size(self.micro_batch_size())
        data = tf.data.Dataset.from_tensor_slices(_examples(4 * batch, 0))
        return data.shuffle(4 * batch, seed=1).batch(batch, drop_remainder=True).repeat()

    def loss(self, features, outputs):
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(features["label_ids"], outputs["logits"]))

    def eval_sets(self):
        return [EvalSet("", tf.data.Dataset.from_tensor_slices(_examples(10, 1)).batch(4))]

    def validation_outputs(self, features, outputs):
        return {"label": features["label_ids"], "logits": outputs["logits"]}

    def reduce_validation(self, collected, step):
        if step == self.settings.crash_at:
            raise RuntimeError("killed")
        out = collected[""]
        accuracy = float((out["logits"].argmax(-1) == out["label"]).mean())
        scores = self.settings.scores
        return {"eval_accuracy": scores[step] if scores else accuracy, "real_accuracy": accuracy}

    def predict(self, model, runner):
        return runner.predict(tf.data.Dataset.from_tensor_slices(_examples(5, 2)).batch(2),
                              lambda f, o: o["logits"])

    def export(self, model, export_dir, checkpoint):
        return {"": export_dir}


def _run(out, **overrides):
    values = dict(output_dir=str(out), do_train=True, do_eval=True, train_batch_size=4, learning_rate=1e-2,
                  save_checkpoints_steps=1, steps_per_loop=1, write_summaries=False)
    values.update(overrides)
    return driver.run(ToyTask(ToyRun(**values)))


def _steps(directory):
    return [step for step, _ in checkpoints.step_checkpoints(str(directory))]


@pytest.mark.parametrize("lose_tf1_file", [False, True])
def test_killed_run_resumes_to_the_same_outputs(tmp_path, lose_tf1_file):
    straight = tmp_path / "straight"
    _run(straight, train_steps=4)
    resumed = tmp_path / "resumed"
    # Killed while evaluating step 3: its training state and model.ckpt-3 exist, its evaluation does not.
    with pytest.raises(RuntimeError, match="killed"):
        _run(resumed, train_steps=4, crash_at=3)
    if lose_tf1_file:  # killed before model.ckpt-3 was written
        for path in tf.io.gfile.glob(str(resumed / "model.ckpt-3.*")):
            os.remove(path)
    result = _run(resumed, train_steps=4)
    assert result["train"]["global_step"] == 4
    assert (resumed / "eval_results.txt").read_text() == (straight / "eval_results.txt").read_text()
    assert (resumed / "best_trial.txt").read_text() == (straight / "best_trial.txt").read_text()
    assert _steps(resumed) == _steps(straight) == [1, 2, 3, 4]
    for name in ("model.ckpt-3", "model.ckpt-4", "model.ckpt-best"):
        a = checkpoints.read_original_checkpoint(str(straight / name))
        b = checkpoints.read_original_checkpoint(str(resumed / name))
        assert sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a), name


def test_best_survives_a_resume_and_eval_only_continues_the_record(tmp_path):
    scores = {1: 0.9, 2: 0.5, 3: 0.7, 4: 0.6}
    _run(tmp_path, train_steps=2, scores=scores)
    best_weights = checkpoints.read_original_checkpoint(str(tmp_path / "model.ckpt-1"))
    _run(tmp_path, train_steps=4, scores=scores)
    assert read_best_trial(str(tmp_path / "best_trial.txt")) == (4, 1, 0.9)
    best = checkpoints.read_original_checkpoint(str(tmp_path / "model.ckpt-best"))
    assert all(np.array_equal(best[k], best_weights[k]) for k in best_weights)
    blocks = metrics.read_eval_results(str(tmp_path / "eval_results.txt"))
    assert [b["global_step"] for b in blocks] == [1, 2, 3, 4] and [b["best"] for b in blocks] == [0.9] * 4
    # --do_eval alone: nothing new to evaluate; the record is unchanged.
    again = _run(tmp_path, do_train=False, train_steps=4, scores=scores)
    assert again["eval"] == [] and len(metrics.read_eval_results(str(tmp_path / "eval_results.txt"))) == 4


def test_eval_only_evaluates_saved_checkpoints_in_order(tmp_path):
    _run(tmp_path, do_eval=False, train_steps=3, keep_checkpoint_max=0)
    assert not (tmp_path / "eval_results.txt").exists()
    result = _run(tmp_path, do_train=False, train_steps=3)
    assert [r["global_step"] for r in result["eval"]] == [1, 2, 3]
    best_step = [1, 2, 3][int(np.argmax([r["eval_accuracy"] for r in result["eval"]]))]
    assert read_best_trial(str(tmp_path / "best_trial.txt"))[1] == best_step


@pytest.mark.parametrize("keep, expected", [(0, [1, 2, 3]), (1, [3])])
def test_keep_checkpoint_max(tmp_path, keep, expected):
    _run(tmp_path, do_eval=False, train_steps=3, keep_checkpoint_max=keep)
    assert _steps(tmp_path) == expected
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("model.ckpt-3")


def test_predict_uses_the_best_checkpoint(tmp_path):
    _run(tmp_path, train_steps=2, scores={1: 0.9, 2: 0.1})
    result = _run(tmp_path, do_train=False, do_eval=False, do_predict=True, export_dir=str(tmp_path / "x"))
    model = ToyTask(ToyRun(output_dir=str(tmp_path))).build_model()
    checkpoints.load_original_checkpoint(model, str(tmp_path / "model.ckpt-1"))
    expected = model(_examples(5, 2), training=False)["logits"].numpy()
    np.testing.assert_allclose(result["predict"], expected, rtol=1e-6, atol=1e-6)
    assert result["export"] == {"": str(tmp_path / "x")}


def test_errors_come_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="Nothing to do"):
        _run(tmp_path / "a", do_train=False, do_eval=False)
    with pytest.raises(FileNotFoundError, match="model.ckpt-9"):
        _run(tmp_path / "b", init_checkpoint=str(tmp_path / "model.ckpt-9"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        _run(tmp_path / "file")
    other = AlbertConfig(**dict(CONFIG.to_dict(), hidden_size=12, num_attention_heads=2))
    prefix = checkpoints.save_original_checkpoint(AlbertClassifier(other, 2), str(tmp_path / "wide" / "model.ckpt"))
    with pytest.raises(ValueError, match=r"shape mismatches.*\[12\]"):
        _run(tmp_path / "c", init_checkpoint=prefix)
    assert not (tmp_path / "c" / "tf2_checkpoints").exists()


def test_incompatible_rerun_stops_before_touching_the_directory(tmp_path):
    _run(tmp_path, train_steps=1, do_eval=False)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(ValueError, match="max_seq_length.*--output_dir.*--overwrite_output_dir"):
        _run(tmp_path, train_steps=2, do_eval=False, max_seq_length=SEQ - 1)
    assert sorted(os.listdir(tmp_path)) == before
    result = _run(tmp_path, train_steps=1, do_eval=False, max_seq_length=SEQ - 1, overwrite_output_dir=True)
    assert result["train"]["global_step"] == 1 and _steps(tmp_path) == [1]


def test_flag_table_is_strict():
    values = flags.FlagValues()
    runtime_flags.define_runtime_flags(values)
    flags.DEFINE_string("output_dir", "out", "", flag_values=values)
    flags.DEFINE_integer("train_steps", 7, "", flag_values=values)
    values(["prog"])
    with pytest.raises(ValueError, match="crash_at.*have no flag"):
        runtime_flags.run_config_from_flags(ToyRun, values)
    with pytest.raises(ValueError, match="no field.*score\\b"):
        runtime_flags.run_config_from_flags(ToyRun, values, unflagged=("score",))
    unflagged = [f.name for f in dataclasses.fields(ToyRun) if f.name not in values and f.name not in ("scores", "crash_at")]
    run = runtime_flags.run_config_from_flags(ToyRun, values, unflagged=unflagged + ["scores", "crash_at"])
    assert run.overwrite_output_dir is False and run.gradient_accumulation_steps == 1
    assert run.train_steps == 7 and run.output_dir == "out" and run.scores is None


@pytest.mark.parametrize("module, cls, originals", [
    ("albert_tf.tasks.glue.settings", "ClassifierRun",
     {"train_batch_size": 32, "learning_rate": 5e-5, "max_seq_length": 512, "train_step": 1000, "do_train": False}),
    ("albert_tf.tasks.pretraining.settings", "PretrainingRun",
     {"train_batch_size": 4096, "learning_rate": 0.00176, "optimizer": "lamb", "num_train_steps": 125000,
      "num_warmup_steps": 3125, "max_seq_length": 512, "max_predictions_per_seq": 20, "do_train": True,
      "save_checkpoints_steps": 5000, "eval_batch_size": 64}),
    ("albert_tf.tasks.race.settings", "RaceRun",
     {"do_train": True, "do_eval": True, "learning_rate": 1e-5, "train_step": 12000, "warmup_step": 1000,
      "max_seq_length": 512, "max_qa_length": 128, "save_checkpoints_steps": 100}),
    ("albert_tf.tasks.squad.settings", "SquadRun",
     {"max_seq_length": 384, "doc_stride": 128, "max_query_length": 64, "num_train_epochs": 3.0,
      "n_best_size": 20, "max_answer_length": 30, "start_n_top": 5, "end_n_top": 5}),
])
def test_flags_are_generated_from_the_settings_with_the_original_defaults(module, cls, originals):
    """Each script's flags come from its settings class: one flag per flagged field, with the field's default
    and help; unflagged fields have none; the original release's defaults (spec, not this code) hold."""
    import importlib

    settings_cls = getattr(importlib.import_module(module), cls)
    values = flags.FlagValues()
    runtime_flags.define_flags(settings_cls, values)
    runtime_flags.define_runtime_flags(values)
    values(["prog"])
    for field in dataclasses.fields(settings_cls):
        kind = field.metadata.get("kind")
        if kind == "flag":
            default = None if field.default is dataclasses.MISSING else field.default
            flag = values[field.name]
            assert flag.help.endswith(field.metadata["help"]), field.name  # enums prefix their choices
            assert flag.default == default or (default != default and flag.default != flag.default), field.name
        elif kind == "unflagged":
            assert field.name not in values, field.name
    for name, value in originals.items():
        assert values[name].value == value, name


def _driver_process(out, **overrides) -> subprocess.Popen:
    """`_run(out, **overrides)` in a new Python process."""
    code = f"import test_driver; test_driver._run({str(out)!r}, **{overrides!r})"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.path.dirname(os.path.abspath(__file__))]),
               TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def test_side_car_evaluator_beside_a_trainer_keeps_the_inline_record(tmp_path):
    inline = tmp_path / "inline"
    _run(inline, train_steps=4, keep_checkpoint_max=0)
    shared = tmp_path / "shared"
    evaluator = _driver_process(shared, do_train=False, continuous_eval=True, eval_timeout=300, train_steps=4)
    trainer = _driver_process(shared, do_eval=False, train_steps=4, keep_checkpoint_max=0)
    logs = [proc.communicate(timeout=600)[0] for proc in (trainer, evaluator)]
    assert [trainer.returncode, evaluator.returncode] == [0, 0], "\n".join(log[-3000:] for log in logs)
    for name in ("eval_results.txt", "best_trial.txt"):
        assert (shared / name).read_text() == (inline / name).read_text(), name
    a = checkpoints.read_original_checkpoint(str(inline / "model.ckpt-best"))
    b = checkpoints.read_original_checkpoint(str(shared / "model.ckpt-best"))
    assert sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)


def test_side_car_evaluator_skips_a_vanished_checkpoint_and_times_out(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="absl")
    _run(tmp_path, do_eval=False, train_steps=3, keep_checkpoint_max=0)
    for path in tf.io.gfile.glob(str(tmp_path / "model.ckpt-2.data-*")):  # pruned while the evaluator lists it
        os.remove(path)
    result = _run(tmp_path, do_train=False, continuous_eval=True, train_steps=3, eval_timeout=60)
    assert [r["global_step"] for r in result["eval"]] == [1, 3]
    assert any("Skipping" in m and "model.ckpt-2" in m for m in caplog.messages)
    assert not glob.glob(str(tmp_path / "model.ckpt-best.*.tmp"))
    # A final step that never comes: it stops after --eval_timeout seconds without a new checkpoint.
    result = _run(tmp_path, do_train=False, continuous_eval=True, train_steps=5, eval_timeout=1)
    assert result["eval"] == [] and any("--eval_timeout" in m for m in caplog.messages)
    with pytest.raises(ValueError, match="--continuous_eval.*without --do_train"):
        _run(tmp_path, continuous_eval=True)
