"""Deployment benchmark: accuracy of the ONNX / TFLite forms (float and quantized) on real dev data, and
their latency / size at the base size, side by side with the TF SavedModel.

Accuracy (a model fine-tuned with run_classifier.py / run_squad_v1.py; exports through the task's own
`--export_dir --export_formats=savedmodel,onnx,tflite --export_quantize=float16,int8` path):

    python benchmarks/bench_deploy.py --mode=sst2 --run_dir=RUN --albert_config_file=CONFIG \
        --spm_model_file=SPM --data_dir=GLUE_ROOT --max_seq_length=64
    python benchmarks/bench_deploy.py --mode=squad --run_dir=RUN --albert_config_file=CONFIG \
        --spm_model_file=SPM --predict_file=DEV.json --max_seq_length=128 --doc_stride=64 --max_query_length=32
    python benchmarks/bench_deploy.py --mode=race --run_dir=RUN --albert_config_file=CONFIG \
        --spm_model_file=SPM --data_dir=RACE_PARENT --max_seq_length=128 --max_qa_length=32

prints, per form, the dev metric (SST-2 / RACE accuracy; SQuAD v1.1 EM / F1), the prediction agreement with the
TF model (SST-2 labels, RACE answers; SQuAD answer texts) and the max / mean |logit difference|; then tries full-integer
TFLite (calibrated on the first dev batches) and reports its agreement or why it was refused.

Latency and size (`--mode=latency`, random weights of --preset at --seq_length, one process):

    python benchmarks/bench_deploy.py --mode=latency --preset=base_v2 --seq_length=128

prints file sizes against the float32 parameter bytes, batch-1 p50 / p99 latency and batch-32 throughput
of the TF SavedModel, ONNX Runtime (float, optimized, int8) and LiteRT (float, float16, int8), each also
as a ratio to the TF SavedModel.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from albert_tf import checkpoints
from albert_tf.tasks.squad import postprocess as squad_postprocess  # noqa: E402
from albert_tf.configs import AlbertConfig  # noqa: E402
from albert_tf.core import driver  # noqa: E402
from albert_tf.export import deploy, serving  # noqa: E402
from albert_tf.export.onnx import OnnxRunner  # noqa: E402
from albert_tf.export.tflite import LiteRunner  # noqa: E402
from albert_tf.modeling import AlbertClassifier  # noqa: E402

flags.DEFINE_enum("mode", "latency", ["sst2", "squad", "race", "latency"], "What to measure.")
flags.DEFINE_string("run_dir", None, "The fine-tuning --output_dir (model.ckpt-best, cached dev features).")
flags.DEFINE_string("albert_config_file", None, "The fine-tuned model's config (latency: replaces --preset).")
flags.DEFINE_string("spm_model_file", None, "Its SentencePiece model.")
flags.DEFINE_string("data_dir", None, "GLUE root (sst2); the folder holding RACE/ (race).")
flags.DEFINE_string("predict_file", None, "SQuAD v1.1 json with answers (squad).")
flags.DEFINE_integer("max_seq_length", 128, "Sequence length of fine-tuning.")
flags.DEFINE_integer("doc_stride", 128, "SQuAD doc stride of fine-tuning.")
flags.DEFINE_integer("max_query_length", 64, "SQuAD max query length of fine-tuning.")
flags.DEFINE_integer("max_qa_length", 128, "RACE question+option length of fine-tuning.")
flags.DEFINE_integer("batch_size", 32, "Dev batch size / throughput batch size.")
flags.DEFINE_string("preset", "base_v2", "Model config preset for --mode=latency.")
flags.DEFINE_integer("seq_length", 128, "Sequence length for --mode=latency.")
flags.DEFINE_integer("rounds", 5, "Interleaved timing rounds over all forms (latency).")
flags.DEFINE_integer("requests", 20, "Timed batch-1 calls per form and round (latency).")
flags.DEFINE_integer("batches", 1, "Timed batch-32 calls per form and round (latency).")
flags.DEFINE_string("work_dir", None, "Where exports go (default: a temporary folder).")
FLAGS = flags.FLAGS

QUANTIZE = "float16,int8"


def _forms(paths: dict[str, str]) -> dict[str, object]:
    """{form name: runner} of the deployment files."""
    names = {"onnx": "ORT float32", "onnx_optimized": "ORT optimized", "onnx_float16": "ORT float16",
             "onnx_int8": "ORT int8 (dynamic)", "tflite": "LiteRT float32", "tflite_float16": "LiteRT float16",
             "tflite_int8": "LiteRT int8 (dynamic range)"}
    return {label: (OnnxRunner if paths[key].endswith(".onnx") else LiteRunner)(paths[key])
            for key, label in names.items() if key in paths}


def _run_all(module: serving.FeatureServing, runners: dict, batches: list[dict]) -> dict[str, dict[str, np.ndarray]]:
    """{form: {output: concatenated rows}} over the batches, "TF" first (the Keras model's function)."""
    function = module.concrete_function()
    results: dict[str, dict[str, list]] = {}
    start = time.time()
    for index, batch in enumerate(batches, 1):
        inputs = [np.asarray(batch[name], np.int32) for name in module.input_names]
        outs = {"TF": {k: v.numpy() for k, v in function(*[tf.constant(x) for x in inputs]).items()}}
        for label, runner in runners.items():
            outs[label] = runner(dict(zip(module.input_names, inputs)))
        for label, out in outs.items():
            for key, value in out.items():
                results.setdefault(label, {}).setdefault(key, []).append(np.asarray(value))
        if index % 20 == 0 or index == len(batches):
            elapsed = time.time() - start
            print(f"  {index}/{len(batches)} batches through every form, {elapsed:.0f} s, "
                  f"about {elapsed / index * (len(batches) - index):.0f} s left", flush=True)
    return {label: {k: np.concatenate(v) for k, v in out.items()} for label, out in results.items()}


def _full_int8(module: serving.FeatureServing, make_dataset, work_dir: str) -> str:
    """Tries full-integer TFLite calibrated on the first dev batches; returns what happened."""
    calibration = deploy.calibration_batches(make_dataset, module.input_names, num_batches=4)
    try:
        paths = deploy.write_deployment(module, work_dir, ["tflite"], ["full_int8"], calibration=calibration)
    except ValueError as error:
        return f"refused: {error}"
    return f"kept: {paths['tflite_full_int8']}"


def _export_and_restore(task) -> tuple[dict[str, str], object, str]:
    """Exports through the task's own `--export_dir` path (the driver), then restores the same fine-tuned
    checkpoint into a new model for the TF reference. Returns (export paths, model, checkpoint)."""
    start = time.time()
    paths = driver.run(task)["export"]
    print(f"exported (task --export_dir path) in {time.time() - start:.0f} s: {sorted(paths)}")
    model = task.build_model()
    prefix = driver.serving_checkpoint(task, sorted(model.head_variables()))
    checkpoints.load_original_checkpoint(model, prefix)
    return paths, model, prefix


def bench_sst2(work_dir: str) -> None:
    from albert_tf.tasks.glue.task import ClassifierRun, GlueTask

    settings = dict(task_name="SST-2", data_dir=FLAGS.data_dir, output_dir=FLAGS.run_dir,
                    albert_config_file=FLAGS.albert_config_file, spm_model_file=FLAGS.spm_model_file,
                    max_seq_length=FLAGS.max_seq_length, eval_batch_size=FLAGS.batch_size)
    task = GlueTask(ClassifierRun(**settings, export_dir=work_dir, export_formats="savedmodel,onnx,tflite",
                                  export_quantize=QUANTIZE))
    paths, model, prefix = _export_and_restore(task)
    module = serving.FeatureServing(model, task._deployed_outputs, [FLAGS.max_seq_length])

    def dev():
        return task._dataset(task.cached_features(task.processor, "eval"), FLAGS.batch_size)

    _classification_table("SST-2 dev", module, paths, dev, prefix, work_dir)


def bench_race(work_dir: str) -> None:
    from albert_tf.tasks.race import data as race
    from albert_tf.tasks.race.export import choice_outputs
    from albert_tf.tasks.race.task import RaceRun, RaceTask

    settings = dict(data_dir=FLAGS.data_dir, output_dir=FLAGS.run_dir, albert_config_file=FLAGS.albert_config_file,
                    spm_model_file=FLAGS.spm_model_file, max_seq_length=FLAGS.max_seq_length,
                    max_qa_length=FLAGS.max_qa_length, eval_batch_size=FLAGS.batch_size, do_train=False,
                    do_eval=False)
    task = RaceTask(RaceRun(**settings, export_dir=work_dir, export_formats="savedmodel,onnx,tflite",
                            export_quantize=QUANTIZE))
    paths, model, prefix = _export_and_restore(task)
    module = serving.FeatureServing(model, lambda outputs: choice_outputs(outputs["logits"]),
                                    [race.NUM_CHOICES, FLAGS.max_seq_length])

    def dev():
        return task._dataset(task.features("eval")[0], FLAGS.batch_size)

    _classification_table("RACE dev", module, paths, dev, prefix, work_dir)


def _classification_table(title: str, module: serving.FeatureServing, paths: dict[str, str], dev, prefix: str,
                          work_dir: str) -> None:
    """Accuracy, agreement with TF and logit differences of every form on the dev batches of `dev()`
    (`predictions` [N], `logits` [N,C]; padded rows, `is_real_example` 0, left out)."""
    batches = [{k: v.numpy() for k, v in b.items()} for b in dev()]
    results = _run_all(module, _forms(paths), batches)
    labels = np.concatenate([b["label_ids"] for b in batches]).reshape(-1)
    real = np.concatenate([b["is_real_example"] for b in batches]).reshape(-1).astype(bool)
    reference = results["TF"]
    print(f"\n{title} ({real.sum()} examples), {prefix}:")
    print("| form | accuracy | Δ vs TF (points) | agreement with TF | max / mean abs logit diff |")
    print("|---|---|---|---|---|")
    tf_accuracy = np.mean(reference["predictions"][real] == labels[real]) * 100
    for label, out in results.items():
        accuracy = np.mean(out["predictions"][real] == labels[real]) * 100
        agree = np.mean(out["predictions"][real] == reference["predictions"][real]) * 100
        diff = np.abs(out["logits"][real] - reference["logits"][real])
        print(f"| {label} | {accuracy:.2f} % | {accuracy - tf_accuracy:+.2f} | {agree:.2f} % | "
              f"{diff.max():.2e} / {diff.mean():.2e} |")
    print(f"\nLiteRT full integer: {_full_int8(module, dev, work_dir)}")
    _sizes(paths)


def bench_squad(work_dir: str) -> None:
    from albert_tf.tasks.squad.export import SquadFeatureServing
    from albert_tf.tasks.squad.task import SquadRun, SquadTask

    settings = dict(output_dir=FLAGS.run_dir, predict_file=FLAGS.predict_file,
                    albert_config_file=FLAGS.albert_config_file, spm_model_file=FLAGS.spm_model_file,
                    max_seq_length=FLAGS.max_seq_length, doc_stride=FLAGS.doc_stride,
                    max_query_length=FLAGS.max_query_length, predict_batch_size=FLAGS.batch_size)
    task = SquadTask(SquadRun(**settings, export_dir=work_dir, export_formats="savedmodel,onnx,tflite",
                              export_quantize=QUANTIZE))
    paths, model, prefix = _export_and_restore(task)
    module = SquadFeatureServing(model, "v1.1", FLAGS.max_seq_length)
    path, side = task.predict_features()

    def dev():
        return task._predict_dataset(path)

    batches = [{k: v.numpy() for k, v in b.items()} for b in dev()]
    results = _run_all(module, _forms(paths), batches)
    unique_ids = np.concatenate([b["unique_ids"] for b in batches])
    dataset = json.load(open(FLAGS.predict_file))
    answers, scores = {}, {}
    for label, out in results.items():
        out_dir = os.path.join(work_dir, "predictions", label.replace(" ", "_"))
        raw = {"unique_ids": unique_ids, "start_logits": out["start_logits"], "end_logits": out["end_logits"]}
        scores[label] = squad_postprocess.postprocess_and_write(side, raw, "v1.1", out_dir, dataset, 20, 30, None)
        answers[label] = json.load(open(os.path.join(out_dir, squad_postprocess.PREDICTIONS_FILE)))
    reference = results["TF"]
    print(f"\nSQuAD v1.1 held-out dev part ({len(answers['TF'])} questions, {len(unique_ids)} features), {prefix}:")
    print("| form | EM | F1 | ΔEM / ΔF1 vs TF | same answer as TF | max / mean abs logit diff |")
    print("|---|---|---|---|---|---|")
    for label, out in results.items():
        em, f1 = scores[label]["exact_match"], scores[label]["f1"]
        same = np.mean([answers[label][q] == a for q, a in answers["TF"].items()]) * 100
        diff = np.abs(np.stack([out["start_logits"], out["end_logits"]]) -
                      np.stack([reference["start_logits"], reference["end_logits"]]))
        print(f"| {label} | {em:.2f} | {f1:.2f} | {em - scores['TF']['exact_match']:+.2f} / "
              f"{f1 - scores['TF']['f1']:+.2f} | {same:.2f} % | {diff.max():.2e} / {diff.mean():.2e} |")
    print(f"\nLiteRT full integer: {_full_int8(module, dev, work_dir)}")
    _sizes(paths)


def _sizes(paths: dict[str, str]) -> None:
    sizes = {key: os.path.getsize(path) for key, path in paths.items() if os.path.isfile(path)}
    print("file sizes:", ", ".join(f"{key} {size / 1e6:.2f} MB" for key, size in sorted(sizes.items())))


def _timed(call, inputs: dict, count: int) -> list[float]:
    """Milliseconds of `count` calls."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        call(inputs)
        times.append((time.perf_counter() - start) * 1000)
    return times


def bench_latency(work_dir: str) -> None:
    # --albert_config_file (e.g. a tiny config, to check the benchmark runs) replaces --preset.
    config = (AlbertConfig.from_json_file(FLAGS.albert_config_file) if FLAGS.albert_config_file
              else AlbertConfig.from_preset(FLAGS.preset))
    seq = FLAGS.seq_length
    tf.keras.utils.set_random_seed(0)
    model = AlbertClassifier(config, 2)
    module = serving.FeatureServing(model, lambda o: {"logits": o["logits"]}, [seq])
    rng = np.random.default_rng(0)

    def inputs(batch: int) -> dict[str, np.ndarray]:
        return {"input_word_ids": rng.integers(5, config.vocab_size, (batch, seq)).astype(np.int32),
                "input_mask": np.ones((batch, seq), np.int32), "input_type_ids": np.zeros((batch, seq), np.int32)}

    module.concrete_function()(*[tf.constant(v) for v in inputs(1).values()])  # builds the weights
    parameter_bytes = sum(int(np.prod(v.shape)) * 4 for v in model.variables)
    saved = serving.export_saved_models({serving.EXAMPLES: serving.FeatureServing(
        model, lambda o: {"logits": o["logits"]}, [seq])}, os.path.join(work_dir, "saved_model"))[serving.EXAMPLES]
    start = time.time()
    paths = deploy.write_deployment(module, work_dir, ["onnx", "tflite"], ["float16", "int8"],
                                    (config.num_attention_heads, config.hidden_size))
    print(f"{FLAGS.albert_config_file or FLAGS.preset} seq {seq}: {parameter_bytes / 4e6:.1f} M parameters, {parameter_bytes / 1e6:.1f} MB "
          f"float32; converted in {time.time() - start:.0f} s")
    print("| file | MB | x float32 parameter bytes |\n|---|---|---|")
    for key, path in paths.items():
        size = os.path.getsize(path)
        print(f"| {os.path.basename(path)} | {size / 1e6:.1f} | {size / parameter_bytes:.3f} |")
    serve = tf.saved_model.load(saved).signatures["serving_default"]
    forms = {"TF SavedModel": lambda x: serve(**{k: tf.constant(v) for k, v in x.items()})}
    runners = _forms(paths)
    forms.update({k: v for k, v in runners.items() if k != "ORT float16"})  # no float16 kernels on this CPU
    one, many = inputs(1), inputs(FLAGS.batch_size)
    for call in forms.values():  # warm-up: the first calls allocate
        call(one), call(many)
    # Interleaved rounds: every form is timed in every round, so a load change on the machine touches all
    # forms alike; medians over the rounds' calls.
    single: dict[str, list[float]] = {label: [] for label in forms}
    batched: dict[str, list[float]] = {label: [] for label in forms}
    start = time.time()
    for round_index in range(FLAGS.rounds):
        for label, call in forms.items():
            single[label] += _timed(call, one, FLAGS.requests)
            batched[label] += _timed(call, many, FLAGS.batches)
        print(f"  round {round_index + 1}/{FLAGS.rounds} done at {time.time() - start:.0f} s", flush=True)
    rows = [(label, np.percentile(single[label], 50), np.percentile(single[label], 99),
             FLAGS.batch_size / (np.median(batched[label]) / 1000)) for label in forms]
    base = rows[0]
    print(f"\n{FLAGS.rounds} rounds of {FLAGS.requests} batch-1 and {FLAGS.batches} batch-{FLAGS.batch_size} calls "
          "per form (medians; p99 over all batch-1 calls)")
    print(f"| form | batch 1 p50 ms | p99 ms | batch {FLAGS.batch_size} examples/s | speed vs TF (TF p50 / p50) "
          "| throughput vs TF |")
    print("|---|---|---|---|---|---|")
    for label, p50, p99, rate in rows:
        print(f"| {label} | {p50:.1f} | {p99:.1f} | {rate:.1f} | {base[1] / p50:.2f}x | "
              f"{rate / base[3]:.2f}x |")


def main(_):
    work_dir = FLAGS.work_dir or tempfile.mkdtemp(prefix="bench_deploy_")
    {"sst2": bench_sst2, "squad": bench_squad, "race": bench_race, "latency": bench_latency}[FLAGS.mode](work_dir)


if __name__ == "__main__":
    app.run(main)
