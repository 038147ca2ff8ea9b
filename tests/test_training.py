"""Tests of the generic training loop, evaluation/prediction helpers, strategies and runtime flags.

The toy task (an embedding + dense classifier on synthetic ids) lives in ``distributed_child.py``, which
also runs the mirrored (2 logical CPUs) and multi-worker comparisons in fresh processes.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import distributed_child as toy  # noqa: E402
import test_pretraining as pretraining_test  # noqa: E402

import albert_tf  # noqa: E402
from albert_tf import checkpoints, metrics  # noqa: E402
from albert_tf.core import distribute, evaluator, flags as runtime_flags, trainer as training  # noqa: E402
from albert_tf.modeling import fast_path  # noqa: E402

CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "distributed_child.py")
SUBPROCESS_TIMEOUT_S = 240
# The toy model reads only "ids"; tf_keras warns about the other feature keys on every call.
pytestmark = pytest.mark.filterwarnings("ignore:Input dict contained keys")


@pytest.fixture(scope="module")
def strategy() -> tf.distribute.Strategy:
    return distribute.get_strategy("one_device")


@pytest.fixture(scope="module")
def reference(strategy, tmp_path_factory) -> dict:
    """One-device toy run: 6 steps, 3 steps per loop."""
    trainer, summary = toy.train_toy(strategy, str(tmp_path_factory.mktemp("reference")))
    return {"weights": trainer.model.get_weights(), "summary": summary}


def _assert_same_weights(actual: list[np.ndarray], expected: list[np.ndarray], atol: float) -> None:
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, rtol=0, atol=atol)


def _free_ports(count: int) -> list[int]:
    """Distinct free ports, all held until each is known, so two calls cannot return the same port."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


# What a worker logs when another process took its port between `_free_ports` and its server's start.
_PORT_TAKEN = ("Address already in use", "Could not start gRPC server", "Failed to add port")


def start_workers(args: list[str], num_workers: int = 2) -> list[subprocess.Popen]:
    """Starts `distributed_child.py *args` as the workers of one cluster on localhost (see `run_workers`)."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(num_workers)]}
    procs = []
    for index in range(num_workers):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        procs.append(subprocess.Popen([sys.executable, CHILD, *[a.format(index=index) for a in args]], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    return procs


def run_workers(args: list[str], num_workers: int = 2, timeout: float = SUBPROCESS_TIMEOUT_S,
                attempts: int = 3) -> list[tuple[int, str]]:
    """Runs `distributed_child.py *args` as the workers of one multi-worker cluster on localhost (an
    `{index}` in an argument is replaced by the worker's index); returns (exit code, log) per worker.

    The ports are free when chosen but not held: another process (e.g. another pytest-xdist worker) may take
    one before a worker binds it; then the whole cluster is started again on new ports."""
    for _ in range(attempts):
        procs = start_workers(args, num_workers)
        results = []
        try:
            for proc in procs:
                log = proc.communicate(timeout=timeout)[0]
                results.append((proc.returncode, log))
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
        if not any(code != 0 and any(m in log for m in _PORT_TAKEN) for code, log in results):
            return results
    return results


def test_mirrored_two_devices_matches_one_device(tmp_path):
    out = tmp_path / "mirrored.npz"
    proc = subprocess.run(
        [sys.executable, CHILD, "mirrored", str(out), str(tmp_path)],
        capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    r = np.load(out)
    assert int(r["mirrored_replicas"]) == 2
    assert int(r["one_step"]) == int(r["mirrored_step"]) == 6
    np.testing.assert_allclose(r["mirrored_loss"], r["one_loss"], rtol=1e-5)
    for i in range(5):
        np.testing.assert_allclose(r[f"mirrored_w{i}"], r[f"one_w{i}"], rtol=0, atol=1e-5)
        np.testing.assert_allclose(r[f"mirrored_sgd_w{i}"], r[f"one_sgd_w{i}"], rtol=0, atol=1e-5)
    # predict over 9 examples in batches of 4 (final batch: 1 example, so a replica gets none).
    for name in ("one", "mirrored"):
        np.testing.assert_array_equal(r[f"{name}_pred_index"], np.arange(9))
    np.testing.assert_allclose(r["mirrored_pred_logits"], r["one_pred_logits"], rtol=0, atol=1e-5)


def test_multi_worker_mirrored_two_processes(tmp_path, strategy):
    model_dir = tmp_path / "model"
    for code, log in run_workers(["worker", str(tmp_path / "w{index}.npz"), str(model_dir)]):
        assert code == 0, log[-4000:]
    workers = [np.load(tmp_path / f"w{index}.npz") for index in range(2)]
    one_device, _ = toy.train_toy(strategy, str(tmp_path / "one_device"), optimizer_fn=toy.toy_sgd)
    assert [bool(w["chief"]) for w in workers] == [True, False]
    for w in workers:
        assert int(w["replicas"]) == 2 and int(w["step"]) == 6
        # Each worker reads every other example (shard before batch): each global batch is the same set
        # of examples as the one-device run's.
        _assert_same_weights([w[f"w{i}"] for i in range(5)], one_device.model.get_weights(), atol=1e-5)
    _assert_same_weights([workers[1][f"w{i}"] for i in range(5)],
                         [workers[0][f"w{i}"] for i in range(5)], atol=0)
    # The driver's run under the same strategy: trained and evaluated at every save on both workers, TF1
    # checkpoints and the evaluation record from the chief.
    assert [int(w["driver_step"]) for w in workers] == [2, 2] and [int(w["driver_evals"]) for w in workers] == [2, 2]
    driver_dir = str(model_dir) + "_driver"
    assert [step for step, _ in checkpoints.step_checkpoints(driver_dir)] == [1, 2]
    assert [b["global_step"] for b in metrics.read_eval_results(os.path.join(driver_dir, "eval_results.txt"))] == [1, 2]
    # Only the chief wrote into model_dir.
    assert sorted(os.listdir(model_dir)) == ["summaries", "tf2_checkpoints"]
    assert sorted(os.listdir(model_dir / "tf2_checkpoints")) == [
        "checkpoint", "ckpt-3.data-00000-of-00001", "ckpt-3.index",
        "ckpt-6.data-00000-of-00001", "ckpt-6.index",
    ]


class _Interrupted(Exception):
    pass


def _optimizer_state(trainer: training.Trainer) -> list[np.ndarray]:
    return [v.numpy() for v in trainer.optimizer.variables]


def test_resume_after_interruption_continues_from_last_save(strategy, tmp_path):
    # Two distinct global batches, cycled: a restart at an even step (every save) sees the same batches
    # an uninterrupted run sees, because input pipelines restart from the beginning on resume.
    common = dict(
        num_train_steps=6, save_checkpoints_steps=2, keep_checkpoint_max=2, steps_per_loop=4,
        dataset_fn=functools.partial(toy.toy_dataset_fn, num_batches=2),
    )
    init_calls = []
    reference, _ = toy.train_toy(strategy, str(tmp_path / "uninterrupted"),
                                 init_fn=init_calls.append, **common)
    assert init_calls == [reference.model]
    assert sorted(os.listdir(tmp_path / "uninterrupted" / "tf2_checkpoints")) == [
        "checkpoint", "ckpt-4.data-00000-of-00001", "ckpt-4.index",
        "ckpt-6.data-00000-of-00001", "ckpt-6.index",
    ]

    saved = {}

    def crash_after_second_save(step: int, path: str) -> None:
        if step == 4:
            saved.update(path=path, optimizer=_optimizer_state(trainer),
                         weights=trainer.model.get_weights())
            raise _Interrupted

    model_dir = str(tmp_path / "interrupted")
    trainer = training.Trainer(
        strategy=strategy, model_fn=toy.toy_model, optimizer_fn=lambda: toy.toy_optimizer(6),
        loss_fn=toy.toy_loss, global_batch_size=toy.GLOBAL_BATCH, model_dir=model_dir,
        on_checkpoint=crash_after_second_save, **common,
    )
    with pytest.raises(_Interrupted):
        trainer.train()
    assert saved["path"] == os.path.join(model_dir, "tf2_checkpoints", "ckpt-4")
    saved_lr = training.current_learning_rate(trainer.optimizer)

    init_calls.clear()
    resumed = training.Trainer(
        strategy=strategy, model_fn=toy.toy_model, optimizer_fn=lambda: toy.toy_optimizer(6),
        loss_fn=toy.toy_loss, global_batch_size=toy.GLOBAL_BATCH, model_dir=model_dir,
        init_fn=init_calls.append, **common,
    )
    # Restoring gives back the step, the optimizer moments and the lr of the last save.
    assert resumed.restore_or_initialize() == saved["path"]
    assert resumed.global_step == 4 and init_calls == []
    _assert_same_weights(_optimizer_state(resumed), saved["optimizer"], atol=0)
    _assert_same_weights(resumed.model.get_weights(), saved["weights"], atol=0)
    assert training.current_learning_rate(resumed.optimizer) == saved_lr
    summary = resumed.train()
    assert summary["global_step"] == 6 and init_calls == []
    _assert_same_weights(resumed.model.get_weights(), reference.model.get_weights(), atol=1e-6)


def test_steps_per_loop_does_not_change_the_result(strategy, tmp_path, reference):
    for steps_per_loop in (1, 4):  # 6 steps: 6 loops of 1; or 4 + 2
        trainer, summary = toy.train_toy(strategy, str(tmp_path / str(steps_per_loop)),
                                         steps_per_loop=steps_per_loop)
        assert summary["global_step"] == 6
        _assert_same_weights(trainer.model.get_weights(), reference["weights"], atol=1e-6)


def test_jit_compile_matches_eager_step(strategy, tmp_path, reference):
    trainer, summary = toy.train_toy(strategy, str(tmp_path), jit_compile=True)
    assert summary["global_step"] == 6
    _assert_same_weights(trainer.model.get_weights(), reference["weights"], atol=1e-5)


def test_training_changes_weights_and_reports_summary(reference):
    initial = toy.toy_model().get_weights()
    assert max(np.abs(a - b).max() for a, b in zip(reference["weights"], initial)) > 1e-3
    summary = reference["summary"]
    assert summary["global_step"] == 6
    assert np.isfinite(summary["loss"]) and 0.0 <= summary["metrics"]["acc"] <= 1.0
    assert summary["steps_per_second"] > 0
    assert summary["examples_per_second"] == pytest.approx(
        summary["steps_per_second"] * toy.GLOBAL_BATCH)
    # The schedule decays linearly to 0 at step 6; the last update (step index 5) used 0.05 * 1/6.
    assert summary["learning_rate"] == pytest.approx(0.05 / 6, rel=1e-5)


def test_summaries_and_progress_log(strategy, tmp_path, caplog):
    # On the absl logger itself: parsing absl flags in-process (other tests do) sets it to WARNING.
    caplog.set_level(logging.INFO, logger="absl")
    caplog.set_level(logging.INFO)
    toy.train_toy(strategy, str(tmp_path), num_train_steps=4, steps_per_loop=4, log_steps=2)
    lines = [m for m in caplog.messages if m.startswith("step ")]
    assert len(lines) == 2
    pattern = (r"step 4/4 \(100\.0%\) loss=\d+\.\d{4} acc=\d\.\d{4} lr=\S+ \d+\.\d\d steps/s "
               r"\d+\.\d ex/s ETA 0s")
    assert re.fullmatch(pattern, lines[1]), lines[1]
    assert lines[0].startswith("step 2/4 (50.0%) ")

    summary_dir = tmp_path / "summaries" / "train"
    steps_by_tag: dict[str, list[int]] = {}
    for event_file in os.listdir(summary_dir):
        for event in tf.compat.v1.train.summary_iterator(str(summary_dir / event_file)):
            for value in event.summary.value:
                steps_by_tag.setdefault(value.tag, []).append(event.step)
    assert steps_by_tag == {tag: [2, 4] for tag in (
        "loss", "acc", "learning_rate", "steps_per_second", "examples_per_second")}


def test_mixed_float16_trains_without_nan(strategy, tmp_path):
    assert distribute.configure_precision("float16") == "mixed_float16"
    try:
        trainer, summary = toy.train_toy(strategy, str(tmp_path), num_train_steps=3)
    finally:
        distribute.configure_precision(None)
    assert isinstance(trainer.optimizer, keras.mixed_precision.LossScaleOptimizer)
    assert trainer.model.dtype_policy.compute_dtype == "float16"
    assert summary["global_step"] == 3 and np.isfinite(summary["loss"])
    weights = trainer.model.get_weights()
    assert all(w.dtype == np.float32 and np.isfinite(w).all() for w in weights)
    assert max(np.abs(a - b).max() for a, b in zip(weights, toy.toy_model().get_weights())) > 0


def test_predict_covers_the_final_partial_batch(strategy):
    model = toy.toy_model()
    data = toy.toy_examples(10)
    expected_logits = model({"ids": data["ids"]})["logits"].numpy()
    runner = evaluator.Evaluator(strategy, model)
    out = runner.predict(toy.eval_dataset(10, 4), lambda f, o: (f["index"], o["logits"]))
    np.testing.assert_array_equal(out[0], np.arange(10))
    np.testing.assert_allclose(out[1], expected_logits, rtol=1e-6, atol=1e-6)
    plain = runner.predict(toy.eval_dataset(10, 4), num_steps=2)
    assert plain["logits"].shape == (8, toy.CLASSES)


def test_evaluator_compiles_once_and_global_step(strategy, tmp_path):
    model = toy.toy_model()
    runner = evaluator.Evaluator(strategy, model)
    first = runner.predict(toy.eval_dataset(10, 4), toy.toy_accuracy)
    model.set_weights([w + 0.5 for w in model.get_weights()])  # like loading another checkpoint
    second = runner.predict(toy.eval_dataset(10, 4), toy.toy_accuracy)
    assert len(runner._steps) == 1 and first.shape == second.shape == (10,)
    step_fn = next(iter(runner._steps.values()))
    assert len(step_fn._list_all_concrete_functions()) == 1  # one trace for both calls

    tf1_prefix = str(tmp_path / "tf1" / "model.ckpt-best")
    with tf.Graph().as_default():
        step = tf.compat.v1.Variable(7, name="global_step", dtype=tf.int64)
        with tf.compat.v1.Session() as session:
            session.run(step.initializer)
            tf.compat.v1.train.Saver([step]).save(session, tf1_prefix)
    assert evaluator.checkpoint_global_step(tf1_prefix) == 7
    unnamed = tf.train.Checkpoint(v=tf.Variable(1.0)).write(str(tmp_path / "other" / "weights-12"))
    assert evaluator.checkpoint_global_step(unnamed) == 12


def test_exhausted_dataset_and_bad_arguments_give_clear_errors(strategy, tmp_path):
    finite = lambda ctx: toy.toy_dataset_fn(ctx).take(2)  # noqa: E731
    with pytest.raises(ValueError, match="ran out.*repeat"):
        toy.train_toy(strategy, str(tmp_path / "finite"), dataset_fn=finite, num_train_steps=5)
    with pytest.raises(ValueError, match="global batch size"):
        toy.train_toy(strategy, str(tmp_path), global_batch_size=0)
    with pytest.raises(ValueError, match="steps_per_loop must be"):
        toy.train_toy(strategy, str(tmp_path), steps_per_loop=0)
    with pytest.raises(ValueError, match="save_checkpoints_steps must be"):
        toy.train_toy(strategy, str(tmp_path), save_checkpoints_steps=0)


def test_get_strategy_and_precision_errors():
    with pytest.raises(ValueError, match="one_device, mirrored, multi_worker_mirrored, tpu"):
        distribute.get_strategy("parameter_server")
    with pytest.raises(ValueError, match="nccl, hierarchical_copy"):
        distribute.get_strategy("mirrored", all_reduce_alg="bogus")
    with pytest.raises(ValueError, match="--num_gpus=4"):
        distribute.get_strategy("mirrored", num_gpus=4)
    one = distribute.get_strategy("one_device")
    assert one.extended.worker_devices == ("/job:localhost/replica:0/task:0/device:CPU:0",)
    assert distribute.is_chief(one) and not distribute.is_multi_worker(one)
    with pytest.raises(ValueError, match="--mixed_precision='fp8'.*bfloat16"):
        distribute.configure_precision("fp8")
    try:
        assert distribute.configure_precision("bfloat16") == "mixed_bfloat16"
        assert keras.mixed_precision.global_policy().compute_dtype == "bfloat16"
    finally:
        assert distribute.configure_precision("none") == "float32"
    # TensorFlow is initialised with one CPU device by now: splitting must fail loudly.
    with pytest.raises(RuntimeError, match="already initialised"):
        distribute.split_cpu_devices(2)
    distribute.split_cpu_devices(1)  # Already the case: accepted.


def _parsed_flags(*argv: str) -> flags.FlagValues:
    values = flags.FlagValues()
    runtime_flags.define_runtime_flags(values)
    runtime_flags.define_runtime_flags(values)  # Defining twice is harmless.
    values(["prog", *argv])
    return values


def test_runtime_flags(monkeypatch):
    # This machine's CPU kind is set here, so the expected defaults are literals: an AVX2 CPU without AVX-512
    # trains without XLA and evaluates / predicts with it (albert_tf.modeling.fast_path).
    monkeypatch.setattr(fast_path, "this_cpu_flags", lambda: frozenset({"avx2", "fma"}))
    defaults = _parsed_flags()
    assert defaults.strategy_type == "one_device" and not defaults.use_tpu
    assert defaults.num_tpu_cores == 8 and defaults.iterations_per_loop == 1000
    assert runtime_flags.runtime_settings_from_flags(defaults) == {
        "steps_per_loop": 1000, "log_steps": None, "jit_compile": False, "eval_jit_compile": True,
        "write_summaries": True, "gradient_accumulation_steps": 1, "recompute_grad": False,
        "overwrite_output_dir": False}
    monkeypatch.setattr(fast_path, "this_cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    assert runtime_flags.runtime_settings_from_flags(defaults)["eval_jit_compile"] is False
    assert isinstance(runtime_flags.strategy_from_flags(defaults), tf.distribute.OneDeviceStrategy)

    custom = runtime_flags.runtime_settings_from_flags(
        _parsed_flags("--steps_per_loop=7", "--log_steps=3", "--jit_compile", "--notensorboard"))
    assert {k: custom[k] for k in ("steps_per_loop", "log_steps", "jit_compile", "eval_jit_compile",
                                   "write_summaries")} == {
        "steps_per_loop": 7, "log_steps": 3, "jit_compile": True, "eval_jit_compile": True, "write_summaries": False}
    monkeypatch.setattr(fast_path, "this_cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert runtime_flags.runtime_settings_from_flags(_parsed_flags("--nojit_compile"))["eval_jit_compile"] is False
    with pytest.raises(ValueError, match="--steps_per_loop"):
        runtime_flags.runtime_settings_from_flags(_parsed_flags("--steps_per_loop=0"))

    # A program that builds its own run settings (the demo) gets every runtime field the flags set,
    # and keeps its own choice of the `own_defaults` fields unless their flag was given.
    own_defaults = ("steps_per_loop", "log_steps")
    given = runtime_flags.runtime_settings_from_flags(
        _parsed_flags("--jit_compile", "--gradient_accumulation_steps=2", "--recompute_grad", "--log_steps=5",
                      "--notensorboard"), own_defaults=own_defaults)
    assert given == {"log_steps": 5, "jit_compile": True, "eval_jit_compile": True, "write_summaries": False,
                     "gradient_accumulation_steps": 2, "recompute_grad": True, "overwrite_output_dir": False}
    assert runtime_flags.runtime_settings_from_flags(
        _parsed_flags("--iterations_per_loop=9"), own_defaults=own_defaults)["steps_per_loop"] == 9
    with pytest.raises(ValueError, match="--use_tpu conflicts with --strategy_type=mirrored"):
        runtime_flags.strategy_from_flags(_parsed_flags("--use_tpu", "--strategy_type=mirrored"))
    with pytest.raises(flags.IllegalFlagValueError):
        _parsed_flags("--mixed_precision=fp8")

    own = flags.FlagValues()
    flags.DEFINE_bool("use_tpu", True, "a script's own definition", flag_values=own)
    runtime_flags.define_runtime_flags(own)
    own(["prog"])
    assert own.use_tpu is True and own.tpu_name is None


# Files each ALBERT task writes when evaluating and predicting (compared byte for byte across strategies).
TASK_OUTPUTS = {
    "glue": ["test_results.tsv", "submit_results.tsv"],
    "squad": ["predictions.json", "nbest_predictions.json", "null_odds.json", "raw_results.npz"],
    "race": ["predict_results.txt", "race_predictions.jsonl"],
}
RECORDS = ["eval_results.txt", "best_trial.txt", "model.ckpt-best.index", "model.ckpt-best.data-00000-of-00001"]


def _write_task_data(data) -> None:
    import test_run_classifier
    import test_run_race
    import test_squad_task

    test_run_classifier.write_glue(str(data / "glue"))
    test_squad_task.squad_file(data / "squad.json", "v2.0")
    test_run_race.write_race(str(data / "race"))
    # A wide initialisation spreads the tiny model's logits far beyond rounding (the default 0.02 left RACE's
    # four logits within 1e-5 of each other, so a last-bit difference of a smaller batch flipped argmaxes,
    # accuracies, the best checkpoint and hence the predictions): every strategy must then agree exactly.
    (data / "albert_config.json").write_text(json.dumps(dict(test_squad_task.CONFIG, initializer_range=0.2)))


def test_albert_tasks_evaluate_and_predict_alike_under_every_strategy(tmp_path):
    """GLUE, SQuAD and RACE: evaluating and predicting the same checkpoints on one device, mirrored over 2
    logical CPUs and with 2 multi-worker processes gives the same records and prediction files, with eval
    and predict sets whose sizes are not multiples of the global batch (the last batch is padded)."""
    from albert_tf.core import driver

    data = tmp_path / "data"
    _write_task_data(data)
    trained = tmp_path / "trained"
    # Checkpoints 1 and 2 of each task, plus the cached eval/predict features (so no run rebuilds them).
    for task in toy.albert_tasks(str(data), str(trained), do_train=True, do_eval=False, do_predict=True).values():
        driver.run(task)
    squad_features = len(np.load(trained / "squad" / "raw_results.npz")["unique_ids"])
    # (examples, global batch): glue dev and test, squad features, race dev and test.
    for size, batch in ((6, 4), (5, 4), (squad_features, 6), (10, 4), (8, 6)):
        assert size % batch, (size, batch)
    roots = {name: tmp_path / name for name in ("one_device", "mirrored", "multi_worker_mirrored")}
    for root in roots.values():
        shutil.copytree(trained, root)
        for name, outputs in TASK_OUTPUTS.items():
            for output in outputs:
                os.remove(root / name / output)
            assert not (root / name / "eval_results.txt").exists()

    def child(strategy_type: str, out: str) -> list[str]:
        return ["tasks", out, strategy_type, str(data), str(roots[strategy_type])]

    toy._tasks("one_device", str(data), str(roots["one_device"]), str(tmp_path / "one_device.json"))
    proc = subprocess.run([sys.executable, CHILD, *child("mirrored", str(tmp_path / "mirrored.json"))],
                          capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr[-4000:]
    for code, log in run_workers(child("multi_worker_mirrored", str(tmp_path / "worker{index}.json"))):
        assert code == 0, log[-4000:]
    results = {name: json.load(open(tmp_path / f"{name}.json"))
               for name in ("one_device", "mirrored", "worker0", "worker1")}
    assert [results[n]["replicas"] for n in results] == [1, 2, 2, 2]
    assert [results[n]["chief"] for n in results] == [True, True, True, False]
    # Worker 0 (the chief) wrote the files; every worker computed the same metrics.
    for task, outputs in TASK_OUTPUTS.items():
        expected = results["one_device"][task]
        assert [r["global_step"] for r in expected] == [1, 2]
        for name in ("mirrored", "worker0", "worker1"):
            actual = results[name][task]
            assert [sorted(r) for r in actual] == [sorted(r) for r in expected], (name, task)
            for a, e in zip(actual, expected):
                for key, value in e.items():
                    assert a[key] == pytest.approx(value, rel=0, abs=1e-6), (name, task, key)
        for name in ("mirrored", "multi_worker_mirrored"):
            for output in RECORDS + outputs:
                _assert_same_output(roots[name] / task / output, roots["one_device"] / task / output)
            # Each run wrote its own eval/predict features: the same bytes (serialization order is fixed).
            written = sorted(p.name for p in (roots[name] / task).glob("*.tf_record"))
            assert written and written == sorted(p.name for p in (roots["one_device"] / task).glob("*.tf_record"))
            for feature_file in written:
                assert (roots[name] / task / feature_file).read_bytes() == (
                    roots["one_device"] / task / feature_file).read_bytes(), (name, task, feature_file)
    # Export under multi-worker (the chief alone wrote it): its SavedModel serves test_results.tsv's numbers.
    glue = roots["multi_worker_mirrored"] / "glue"
    exports = sorted(p.name for p in (roots["multi_worker_mirrored"] / "glue_export").iterdir())
    assert len(exports) == 2 and exports[1] == exports[0] + "_text", exports
    serve = tf.saved_model.load(str(roots["multi_worker_mirrored"] / "glue_export" / exports[0])).signatures[
        "serving_default"]
    records = [r.numpy() for r in tf.data.TFRecordDataset(str(glue / "rte_predict.tf_record"))]
    served = serve(serialized_example=tf.constant(records))["probabilities"].numpy()
    expected = np.loadtxt(glue / "test_results.tsv", delimiter="\t", ndmin=2)
    np.testing.assert_allclose(served[:len(expected)], expected, rtol=0, atol=1e-6)


_DECIMAL = re.compile(rb"-?\d+\.\d+(?:[eE][-+]?\d+)?")


def _assert_same_output(actual, expected) -> None:
    """The same file up to the last digits of its decimals (within 1e-6): the replicas run smaller batches
    than one device does, and a matrix product's rounding can depend on the batch size. Checkpoint files
    must be byte-identical (copies of the same checkpoint)."""
    if actual.suffix == ".npz":
        a, e = np.load(actual), np.load(expected)
        assert sorted(a) == sorted(e)
        for key in e:
            np.testing.assert_allclose(a[key], e[key], rtol=0, atol=1e-6, err_msg=f"{actual}: {key}")
        return
    a, e = actual.read_bytes(), expected.read_bytes()
    if ".ckpt" in actual.name:
        assert a == e, actual
        return
    assert _DECIMAL.sub(b"#", a) == _DECIMAL.sub(b"#", e), actual
    np.testing.assert_allclose([float(x) for x in _DECIMAL.findall(a)], [float(x) for x in _DECIMAL.findall(e)],
                               rtol=0, atol=1e-6, err_msg=str(actual))


def _same_checkpoint(a: str, b: str) -> bool:
    x, y = checkpoints.read_original_checkpoint(a), checkpoints.read_original_checkpoint(b)
    return sorted(x) == sorted(y) and all(np.array_equal(x[k], y[k]) for k in x)


@pytest.mark.parametrize("strategy_type", ["mirrored", "multi_worker_mirrored"])
def test_distributed_kill_and_resume_continues_the_input(tmp_path, strategy_type):
    """Killed while evaluating step 3 (mid-epoch of a seeded shuffle) and rerun: the resumed run skips the
    batches the first one consumed, so it ends with the checkpoints of an uninterrupted run. Under mirrored
    the same for pretraining, whose training input interleaves several files (in a fixed order: its stream
    is seeded), killed at step 2 of 4."""
    data = tmp_path / "pretraining_data"
    data.mkdir()
    albert_tf.AlbertConfig.from_dict(pretraining_test.CONFIG).to_json_file(str(data / "albert_config.json"))
    for i in range(4):
        pretraining_test.write_random_examples(str(data / f"train-{i}.tfrecord"), 8, seed=i)
    args = ["resume", str(tmp_path / "out{index}.json"), strategy_type, str(tmp_path)]
    if strategy_type == "mirrored":
        proc = subprocess.run([sys.executable, CHILD, *[a.format(index=0) for a in args]], capture_output=True,
                              text=True, timeout=SUBPROCESS_TIMEOUT_S)
        assert proc.returncode == 0, proc.stderr[-4000:]
    else:
        for code, log in run_workers(args):
            assert code == 0, log[-4000:]
    expected_steps = {"": [1, 2, 3, 4]}
    if strategy_type == "mirrored":
        expected_steps["pretraining_"] = [2, 4]
    assert json.load(open(tmp_path / "out0.json")) == {"replicas": 2, "steps": {k: 4 for k in expected_steps}}
    for prefix, saved_steps in expected_steps.items():
        straight, resumed = tmp_path / (prefix + "straight"), tmp_path / (prefix + "resumed")
        assert (resumed / "eval_results.txt").read_text() == (straight / "eval_results.txt").read_text()
        assert [s for s, _ in checkpoints.step_checkpoints(str(resumed))] == saved_steps
        for name in [f"model.ckpt-{step}" for step in saved_steps[-2:]] + ["model.ckpt-best"]:
            assert _same_checkpoint(str(resumed / name), str(straight / name)), prefix + name


def test_a_lost_worker_stops_the_job_and_a_rerun_resumes(tmp_path):
    """One of 2 multi-worker processes is killed mid-run: the other stops with a clear error (the strategy's
    health check finds the peer down) instead of waiting forever; starting both again resumes from the last
    checkpoint and finishes the run."""
    args = ["long", str(tmp_path / "out{index}.json"), str(tmp_path / "run")]
    procs = start_workers(args)
    state = tmp_path / "run" / "tf2_checkpoints"
    try:
        for _ in range(SUBPROCESS_TIMEOUT_S * 10):  # until the first save (or a worker fails)
            if tf.train.latest_checkpoint(str(state)) or any(p.poll() is not None for p in procs):
                break
            time.sleep(0.1)
        assert all(p.poll() is None for p in procs), procs[0].communicate()[0][-3000:]
        procs[1].kill()
        survivor_log = procs[0].communicate(timeout=SUBPROCESS_TIMEOUT_S)[0]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
    assert procs[0].returncode == 3, survivor_log[-3000:]
    assert "error: a worker of the multi-worker job stopped" in survivor_log
    assert "resumes from the last checkpoint" in survivor_log
    saved = checkpoints.step_checkpoints(str(tmp_path / "run"))
    assert saved and saved[-1][0] < 200
    written = {prefix: os.stat(prefix + ".index").st_mtime_ns for _, prefix in saved}
    for code, log in run_workers(args):
        assert code == 0, log[-4000:]
    # Resumed: the checkpoints of the first run are kept as they were, not written again from step 0.
    assert {prefix: os.stat(prefix + ".index").st_mtime_ns for prefix in written} == written
    assert json.load(open(tmp_path / "out0.json")) == {"step": 200}
    steps = [step for step, _ in checkpoints.step_checkpoints(str(tmp_path / "run"))]
    assert steps == list(range(10, 201, 10))
