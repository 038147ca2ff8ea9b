"""A toy classification task for the training-loop tests, and the child processes they launch.

Logical CPU devices and multi-worker strategies must be set up before TensorFlow initialises, so the
distributed tests run this file as a fresh process:

  python distributed_child.py mirrored OUT.npz               # 2 logical CPUs: one_device vs mirrored
  TF_CONFIG=... python distributed_child.py worker OUT.npz DIR   # one multi-worker-mirrored worker
  [TF_CONFIG=...] python distributed_child.py tasks OUT.json STRATEGY DATA ROOT   # ALBERT tasks: eval + predict
  [TF_CONFIG=...] python distributed_child.py resume OUT.json STRATEGY ROOT   # kill-and-resume of the driver
  TF_CONFIG=... python distributed_child.py long OUT.json DIR   # 200 multi-worker steps (a worker gets killed)

Results go to OUT.npz; the test process makes the assertions.
"""
from __future__ import annotations

import os
import sys
import warnings
from typing import Any, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from albert_tf import optimization  # noqa: E402
from albert_tf.core import distribute, driver, evaluator, trainer as training  # noqa: E402

# The toy model reads only "ids"; tf_keras warns about the other feature keys on every call.
warnings.filterwarnings("ignore", message="Input dict contained keys")

VOCAB = 16
SEQ = 4
CLASSES = 3
NUM_EXAMPLES = 64
GLOBAL_BATCH = 8


def toy_examples(num: int = NUM_EXAMPLES, seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic examples: ``ids`` int32 [num, SEQ], ``label`` int32 [num] (sum of ids mod 3),
    ``index`` int32 [num] (position, to check output order)."""
    rng = np.random.RandomState(seed)
    ids = rng.randint(0, VOCAB, size=(num, SEQ)).astype(np.int32)
    return {
        "ids": ids,
        "label": (ids.sum(axis=1) % CLASSES).astype(np.int32),
        "index": np.arange(num, dtype=np.int32),
    }


def toy_model() -> keras.Model:
    """Embedding -> mean pool -> dense(relu) -> dense logits; returns ``{"logits": [B, 3]}``.

    Weights come from a fixed numpy generator, so every call builds an identical model.
    """
    ids = keras.Input(shape=(SEQ,), dtype=tf.int32, name="ids")
    x = keras.layers.Embedding(VOCAB, 8)(ids)
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = keras.layers.Dense(8, activation="relu")(x)
    logits = keras.layers.Dense(CLASSES, name="logits")(x)
    model = keras.Model(inputs={"ids": ids}, outputs={"logits": logits})
    rng = np.random.RandomState(1)
    model.set_weights([rng.normal(scale=0.5, size=w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def toy_optimizer(num_train_steps: int = 8) -> keras.optimizers.Optimizer:
    """The project's AdamW with warmup + linear decay and global-norm clipping."""
    return optimization.create_optimizer(
        init_lr=0.05, num_train_steps=num_train_steps, num_warmup_steps=2, optimizer="adamw"
    )


def toy_sgd() -> keras.optimizers.Optimizer:
    """Plain SGD: unlike Adam (invariant to the gradient scale) and clipping, it exposes a wrong
    cross-replica loss scaling."""
    return keras.optimizers.SGD(learning_rate=0.5)


def toy_loss(features: dict[str, tf.Tensor], outputs: dict[str, tf.Tensor]) -> tf.Tensor:
    """Mean cross-entropy over the batch."""
    return tf.reduce_mean(
        keras.losses.sparse_categorical_crossentropy(
            features["label"], outputs["logits"], from_logits=True
        )
    )


def toy_accuracy(features: dict[str, tf.Tensor], outputs: dict[str, tf.Tensor]) -> tf.Tensor:
    """Per-example 0/1 correctness."""
    predictions = tf.argmax(outputs["logits"], axis=-1, output_type=tf.int32)
    return tf.cast(tf.equal(predictions, features["label"]), tf.float32)


def toy_dataset_fn(
    input_context: tf.distribute.InputContext, num_batches: Optional[int] = None
) -> tf.data.Dataset:
    """Per-replica training batches, sharded by input pipeline, repeating forever.

    With ``num_batches`` the stream cycles through the first ``num_batches`` global batches only.
    """
    data = toy_examples()
    if num_batches is not None:
        data = {k: v[: num_batches * GLOBAL_BATCH] for k, v in data.items()}
    dataset = tf.data.Dataset.from_tensor_slices(data)
    dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    per_replica = input_context.get_per_replica_batch_size(GLOBAL_BATCH)
    return dataset.repeat().batch(per_replica, drop_remainder=True)


def eval_dataset(num: int, batch: int) -> tf.data.Dataset:
    """Global eval batches over the first ``num`` examples, final partial batch kept."""
    return tf.data.Dataset.from_tensor_slices(toy_examples(num)).batch(batch)


def train_toy(
    strategy: tf.distribute.Strategy, model_dir: str, num_train_steps: int = 6, **kwargs: Any
) -> tuple[training.Trainer, dict[str, Any]]:
    """Trains the toy task; ``kwargs`` override Trainer arguments."""
    arguments = dict(
        strategy=strategy,
        model_fn=toy_model,
        optimizer_fn=lambda: toy_optimizer(num_train_steps),
        dataset_fn=toy_dataset_fn,
        loss_fn=toy_loss,
        metrics={"acc": toy_accuracy},
        global_batch_size=GLOBAL_BATCH,
        num_train_steps=num_train_steps,
        model_dir=model_dir,
        steps_per_loop=3,
    )
    arguments.update(kwargs)
    trainer = training.Trainer(**arguments)
    return trainer, trainer.train()


def _mirrored(out_path: str, work_dir: str) -> None:
    distribute.split_cpu_devices(2)
    results: dict[str, Any] = {}
    strategies = {
        "one": tf.distribute.OneDeviceStrategy("/cpu:0"),
        "mirrored": distribute.get_strategy("mirrored"),
    }
    results["mirrored_replicas"] = strategies["mirrored"].num_replicas_in_sync
    for name, strategy in strategies.items():
        sgd_trainer, _ = train_toy(strategy, os.path.join(work_dir, name + "_sgd"), optimizer_fn=toy_sgd)
        for i, weight in enumerate(sgd_trainer.model.get_weights()):
            results[f"{name}_sgd_w{i}"] = weight
        trainer, summary = train_toy(strategy, os.path.join(work_dir, name))
        results[f"{name}_loss"] = summary["loss"]
        results[f"{name}_step"] = summary["global_step"]
        for i, weight in enumerate(trainer.model.get_weights()):
            results[f"{name}_w{i}"] = weight
        # 9 examples in batches of 4: the final global batch holds 1 example, so under mirrored one
        # replica gets an empty share.
        predictions = evaluator.Evaluator(strategy, trainer.model).predict(
            eval_dataset(9, 4), lambda f, o: {"index": f["index"], "logits": o["logits"]})
        results[f"{name}_pred_index"] = predictions["index"]
        results[f"{name}_pred_logits"] = predictions["logits"]
    np.savez(out_path, **results)


def _worker(out_path: str, model_dir: str) -> None:
    strategy = distribute.get_strategy("multi_worker_mirrored")
    trainer, summary = train_toy(strategy, model_dir, save_checkpoints_steps=3, optimizer_fn=toy_sgd)
    weights = {f"w{i}": w for i, w in enumerate(trainer.model.get_weights())}
    # The one driver under the same strategy: every worker trains and evaluates, the chief alone writes the
    # TF1 layout and the evaluation record.
    from test_driver import ToyRun, ToyTask  # noqa: E402 (the toy task of tests/test_driver.py)

    run = ToyRun(output_dir=model_dir + "_driver", do_train=True, do_eval=True, train_batch_size=4, train_steps=2,
                 save_checkpoints_steps=1, steps_per_loop=1, write_summaries=False, learning_rate=1e-2)
    result = driver.run(ToyTask(run), strategy)
    np.savez(
        out_path,
        replicas=strategy.num_replicas_in_sync,
        step=summary["global_step"],
        chief=distribute.is_chief(strategy),
        driver_step=result["train"]["global_step"],
        driver_evals=len(result["eval"]),
        **weights,
    )


def albert_tasks(data: str, root: str, glue_export_dir: Optional[str] = None, **overrides: Any) -> dict[str, Any]:
    """GLUE (RTE), SQuAD v2.0 and RACE on the tiny data `tests/test_training.py` writes under `data`, each
    with its outputs in `root/<name>`: eval sets whose sizes are not multiples of the batches. GLUE also
    exports its SavedModels to `glue_export_dir` when given."""
    from albert_tf.tasks.glue.task import ClassifierRun, GlueTask
    from albert_tf.tasks.race.task import RaceRun, RaceTask
    from albert_tf.tasks.squad.task import SquadRun, SquadTask

    spm = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "tokenization", "tiny-clean.model")
    common = dict(albert_config_file=os.path.join(data, "albert_config.json"), spm_model_file=spm, max_seq_length=32,
                  learning_rate=1e-2, save_checkpoints_steps=1, steps_per_loop=1, keep_checkpoint_max=0,
                  write_summaries=False, **overrides)
    squad_file = os.path.join(data, "squad.json")
    return {
        "glue": GlueTask(ClassifierRun(output_dir=os.path.join(root, "glue"), data_dir=os.path.join(data, "glue"),
                                       task_name="rte", train_batch_size=4, eval_batch_size=4, predict_batch_size=4,
                                       train_step=2, export_dir=glue_export_dir, **common)),
        "squad": SquadTask(SquadRun(output_dir=os.path.join(root, "squad"), squad_version="v2.0", train_file=squad_file,
                                    predict_file=squad_file, doc_stride=8, max_query_length=8, train_batch_size=4,
                                    predict_batch_size=6, num_train_epochs=1.0, start_n_top=3, end_n_top=2, **common)),
        "race": RaceTask(RaceRun(output_dir=os.path.join(root, "race"), data_dir=os.path.join(data, "race"),
                                 max_qa_length=8, train_batch_size=4, eval_batch_size=4, predict_batch_size=6,
                                 train_step=2, warmup_step=1,
                                 # RACE evaluates and predicts XLA-compiled (the default on AVX2 CPUs).
                                 **{"eval_jit_compile": True, **common})),
    }


def _tasks(strategy_type: str, data: str, root: str, out_path: str) -> None:
    """Evaluates and predicts the saved checkpoints of `albert_tasks(data, root)` under a strategy."""
    import json

    if strategy_type == "mirrored":
        distribute.split_cpu_devices(2)
    strategy = distribute.get_strategy(strategy_type)
    results = {"replicas": strategy.num_replicas_in_sync, "chief": distribute.is_chief(strategy)}
    # Multi-worker: GLUE also exports (the chief alone writes; the test serves the SavedModel).
    export_dir = os.path.join(root, "glue_export") if strategy_type == "multi_worker_mirrored" else None
    for name, task in albert_tasks(data, root, export_dir, do_train=False, do_eval=True, do_predict=True).items():
        results[name] = driver.run(task, strategy)["eval"]
    with open(out_path, "w") as f:
        json.dump(results, f)


def _killed_pretraining(root: str, **overrides: Any) -> Any:
    """The pretraining task on the tiny config and files the test wrote to `root/pretraining_data/`
    (several files, so that training interleaves them), killed while evaluating `crash_at`."""
    from albert_tf.tasks import pretraining

    class KilledPretraining(pretraining.PretrainingTask):
        def build_model(self, encoder=None):
            tf.keras.utils.set_random_seed(0)  # the same initial weights in every run
            return super().build_model(encoder)

        def reduce_validation(self, collected, step):
            if step == crash_at:
                raise RuntimeError("killed")
            return super().reduce_validation(collected, step)

    crash_at = overrides.pop("crash_at", None)
    data = os.path.join(root, "pretraining_data")
    from test_pretraining import PRED, SEQ  # noqa: E402 (the tiny setup of tests/test_pretraining.py)

    return KilledPretraining(pretraining.PretrainingRun(
        albert_config_file=os.path.join(data, "albert_config.json"), input_file=os.path.join(data, "train-*"),
        eval_input_file=os.path.join(data, "train-0.tfrecord"), eval_batch_size=4, max_seq_length=SEQ,
        max_predictions_per_seq=PRED, num_train_steps=4, num_warmup_steps=1, max_eval_steps=1, **overrides))


def _resume(strategy_type: str, root: str, out_path: str) -> None:
    """The driver's toy task (seeded shuffle), saving every step, trained for 4 steps straight, and killed
    while evaluating step 3 then rerun: `root/straight` and `root/resumed`. Under mirrored also the
    pretraining task (seeded shuffle of interleaved files), saving every 2 steps and killed at step 2:
    `root/pretraining_straight` and `root/pretraining_resumed` (one strategy only: it is the slower task)."""
    import json

    from test_driver import ToyRun, ToyTask  # noqa: E402 (the toy task of tests/test_driver.py)

    if strategy_type == "mirrored":
        distribute.split_cpu_devices(2)
    strategy = distribute.get_strategy(strategy_type)
    common = dict(do_train=True, do_eval=True, train_batch_size=4, steps_per_loop=1, keep_checkpoint_max=0,
                  write_summaries=False, learning_rate=1e-2)
    tasks = {"": (lambda **kw: ToyTask(ToyRun(train_steps=4, save_checkpoints_steps=1, **common, **kw)), 3)}
    if strategy_type == "mirrored":
        tasks["pretraining_"] = (lambda **kw: _killed_pretraining(root, save_checkpoints_steps=2, **common, **kw), 2)
    steps = {}
    for prefix, (make_task, crash_at) in tasks.items():
        driver.run(make_task(output_dir=os.path.join(root, prefix + "straight")), strategy)
        resumed = os.path.join(root, prefix + "resumed")
        try:
            driver.run(make_task(output_dir=resumed, crash_at=crash_at), strategy)
            raise AssertionError("the run was not interrupted")
        except RuntimeError as e:
            assert "killed" in str(e), e
        steps[prefix] = driver.run(make_task(output_dir=resumed), strategy)["train"]["global_step"]
    with open(out_path, "w") as f:
        json.dump({"replicas": strategy.num_replicas_in_sync, "steps": steps}, f)


def _long_run(root: str, out_path: str) -> None:
    """The driver's toy task for 200 steps under multi-worker mirrored, saving every 10 (a worker is killed
    mid-run by the test, then both are started again)."""
    import json

    from test_driver import ToyRun, ToyTask  # noqa: E402 (the toy task of tests/test_driver.py)

    strategy = distribute.get_strategy("multi_worker_mirrored")
    run = ToyRun(output_dir=root, do_train=True, train_batch_size=4, train_steps=200, save_checkpoints_steps=10,
                 steps_per_loop=1, keep_checkpoint_max=0, write_summaries=False, learning_rate=1e-2)
    try:
        result = driver.run(ToyTask(run), strategy)
    except distribute.WorkerLostError as e:
        print(f"error: {e}", flush=True)
        os._exit(3)  # the strategy's threads wait on the lost peer: leave without joining them
    with open(out_path, "w") as f:
        json.dump({"step": result["train"]["global_step"]}, f)


if __name__ == "__main__":
    mode, output = sys.argv[1], sys.argv[2]
    if mode == "mirrored":
        _mirrored(output, sys.argv[3])
    elif mode == "worker":
        _worker(output, sys.argv[3])
    elif mode == "tasks":
        _tasks(sys.argv[3], sys.argv[4], sys.argv[5], output)
    elif mode == "resume":
        _resume(sys.argv[3], sys.argv[4], output)
    elif mode == "long":
        _long_run(sys.argv[3], output)
    else:
        raise SystemExit(f"unknown mode {mode!r}: use mirrored, worker, tasks, resume or long")
