"""RACE fine-tuning (albert_tf.tasks.race.task, run_race.py) on small generated RACE-format articles.

One command-line run trains a tiny ALBERT for two steps (with gradient accumulation and recompute),
evaluates both checkpoints on dev with the middle/high split, predicts the test set and exports a
SavedModel; the tests check its files against numbers computed here independently. Other tests cover the
head's official TF1 layout, both data layouts, a --predict_file used as is, and bad input.
"""
import dataclasses
import json
import os
import random
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from albert_tf import checkpoints, metrics
from albert_tf.configs import AlbertConfig
from albert_tf.core import driver
from albert_tf.core.context import RunContext
from albert_tf.tasks.race import data as race
from albert_tf.modeling import AlbertMultipleChoice
from albert_tf.tasks.race.task import RaceRun, RaceTask
from albert_tf.tokenization import FullTokenizer
from conftest import FIXTURES, ROOT, bound

SPM_MODEL = os.path.join(FIXTURES, "tokenization", "tiny-clean.model")
TINY_V2 = os.path.join(FIXTURES, "original_release", "tiny_v2")
SEQ, QA = 32, 8
WORDS = "the quick brown fox jumps over lazy dog cat sat on mat school teacher book read river".split()


def make_article(rng, article_id, num_questions):
    """A RACE article: some questions with `_`, some options longer than QA pieces, some long texts."""
    words = lambda n: " ".join(rng.choice(WORDS) for _ in range(n))  # noqa: E731
    questions, options = [], []
    for q in range(num_questions):
        questions.append(f"The {words(2)} _ {words(1)}." if q % 2 == 0 else f"What does the {words(2)} do?")
        options.append([words(rng.randint(1, 3)) if k != q % 4 else words(15) for k in range(4)])
    return {"id": article_id, "article": words(rng.choice([10, 60])), "questions": questions, "options": options,
            "answers": [rng.choice("ABCD") for _ in range(num_questions)]}


# split -> level -> (number of articles, layout); 2 questions per article.
LAYOUT = {"train": {"middle": (3, "files"), "high": (3, "files")},
          "dev": {"middle": (2, "all.txt"), "high": (3, "files")},
          "test": {"middle": (2, "files"), "high": (2, "all.txt")}}


def write_race(root, seed=0):
    """Writes `root/RACE/...` and returns {split: [(article id, question index, level, label letter)]} in
    the order the reader must produce (middle then high, files in numeric order)."""
    rng = random.Random(seed)
    expected = {}
    for split, levels in LAYOUT.items():
        expected[split] = []
        for level, (count, layout) in levels.items():
            folder = os.path.join(root, "RACE", split, level)
            os.makedirs(folder)
            articles = [make_article(rng, f"{level}{i}.txt", 2) for i in range(1, count + 1)]
            if layout == "all.txt":
                with open(os.path.join(folder, "all.txt"), "w") as f:
                    f.write("".join(json.dumps(a) + "\n" for a in articles))
            else:
                for i, article in enumerate(articles, start=1):  # 5.txt, 10.txt, 15.txt: numeric order
                    with open(os.path.join(folder, f"{i * 5}.txt"), "w") as f:
                        json.dump(article, f)
            expected[split] += [(a["id"], q, level, answer) for a in articles
                                for q, answer in enumerate(a["answers"])]
    return expected


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("race")
    expected = write_race(str(root / "data"))
    config = dict(vocab_size=1000, embedding_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                  intermediate_size=32, max_position_embeddings=64)
    config_file = root / "albert_config.json"
    config_file.write_text(json.dumps(config))
    return {"root": root, "data_dir": str(root / "data"), "config_file": str(config_file), "expected": expected}


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    return subprocess.run([sys.executable, os.path.join(ROOT, "run_race.py"), *args], capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.fixture(scope="module")
def trained(setup):
    """run_race.py with the original defaults do_train = do_eval = True, plus predict and export."""
    out = setup["root"] / "out"
    result = run_cli(f"--data_dir={setup['data_dir']}", f"--albert_config_file={setup['config_file']}",
                     f"--spm_model_file={SPM_MODEL}", f"--output_dir={out}", f"--max_seq_length={SEQ}",
                     f"--max_qa_length={QA}", "--train_batch_size=4", "--eval_batch_size=3", "--predict_batch_size=5",
                     "--learning_rate=1e-2", "--train_step=2", "--warmup_step=1", "--save_checkpoints_steps=1",
                     "--steps_per_loop=1", "--gradient_accumulation_steps=2", "--recompute_grad", "--notensorboard",
                     "--do_predict", f"--export_dir={setup['root'] / 'export'}")
    assert result.returncode == 0, result.stderr[-3000:]
    return str(out)


def finetuned_logits(setup, prefix, feature_file):
    """Logits [N,4] of the fine-tuned checkpoint on a feature file, with a fresh model."""
    model = AlbertMultipleChoice(AlbertConfig.from_json_file(setup["config_file"]))
    checkpoints.load_original_checkpoint(model, prefix)  # strict: raises on any missing or unused variable
    return np.concatenate([model(batch, training=False)["logits"].numpy()
                           for batch in race.race_dataset(feature_file, SEQ, 4, is_training=False)])


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def accuracy(logits, letters):
    return float(np.mean(logits.argmax(-1) == np.array(["ABCD".index(a) for a in letters])))


def test_eval_of_every_checkpoint_with_level_split(setup, trained):
    blocks = metrics.read_eval_results(os.path.join(trained, "eval_results.txt"))
    assert [b["global_step"] for b in blocks] == [1.0, 2.0]
    assert all(set(b) == {"eval_accuracy", "eval_loss", "eval_accuracy_middle", "eval_accuracy_high",
                          "global_step", "best"} for b in blocks)
    last, best_step, best = map(float, open(os.path.join(trained, "best_trial.txt")).read().split(":"))
    assert last == 2 and best == max(b["eval_accuracy"] for b in blocks)
    block = blocks[int(best_step) - 1]

    # Recompute the best checkpoint's metrics here: labels and levels come from the generated data.
    dev = setup["expected"]["dev"]
    logits = finetuned_logits(setup, os.path.join(trained, "model.ckpt-best"), os.path.join(trained, "eval.tf_record"))
    labels = np.array(["ABCD".index(d[3]) for d in dev])
    assert block["eval_accuracy"] == pytest.approx(accuracy(logits, [d[3] for d in dev]), abs=1e-6)
    log_probs = np.log(softmax(logits.astype(np.float64)))
    assert block["eval_loss"] == pytest.approx(-log_probs[np.arange(len(dev)), labels].mean(), rel=1e-4)
    for level in ("middle", "high"):
        rows = [i for i, d in enumerate(dev) if d[2] == level]
        assert block[f"eval_accuracy_{level}"] == pytest.approx(
            accuracy(logits[rows], [dev[i][3] for i in rows]), abs=1e-6)

    # The checkpoints are in the official layout: bert/* plus the RACE head output_weights [1,H], output_bias [1].
    saved = checkpoints.read_original_checkpoint(os.path.join(trained, "model.ckpt-best"))
    assert saved["output_weights"].shape == (1, 16) and saved["output_bias"].shape == (1,)
    assert {n for n in saved if not n.startswith("bert/")} <= {"output_weights", "output_bias", "global_step"}


def test_predict_files(setup, trained):
    test = setup["expected"]["test"]
    rows = [json.loads(line) for line in open(os.path.join(trained, "race_predictions.jsonl"))]
    assert [(r["example_id"], r["question_index"], r["level"], r["label"]) for r in rows] == test
    logits = np.array([r["logits"] for r in rows])
    np.testing.assert_allclose(logits, finetuned_logits(setup, os.path.join(trained, "model.ckpt-best"),
                                                        os.path.join(trained, "predict.tf_record")), atol=1e-5)
    np.testing.assert_allclose(np.array([r["probabilities"] for r in rows]), softmax(logits), atol=1e-6)
    assert [r["prediction"] for r in rows] == ["ABCD"[i] for i in logits.argmax(-1)]

    lines = open(os.path.join(trained, "predict_results.txt")).read().splitlines()
    assert lines[0] == "***** Predict results *****"
    values = dict(line.split(" = ") for line in lines[1:])
    assert list(values) == ["eval_accuracy", "eval_accuracy_high", "eval_accuracy_middle", "eval_loss",
                            "global_step", "best"]
    best_step = int(open(os.path.join(trained, "best_trial.txt")).read().split(":")[1])
    assert int(values["global_step"]) == best_step  # the step of model.ckpt-best, as the original reported
    assert float(values["eval_accuracy"]) == pytest.approx(accuracy(logits, [t[3] for t in test]), abs=1e-6)
    high = [i for i, t in enumerate(test) if t[2] == "high"]
    assert float(values["eval_accuracy_high"]) == pytest.approx(accuracy(logits[high], [test[i][3] for i in high]),
                                                                abs=1e-6)
    assert float(values["best"]) == float(open(os.path.join(trained, "best_trial.txt")).read().split(":")[2])


def test_export_reloads_in_a_new_process(setup, trained, tmp_path):
    (saved_model,) = [os.path.join(setup["root"], "export", d) for d in os.listdir(setup["root"] / "export")]
    batches = list(race.race_dataset(os.path.join(trained, "predict.tf_record"), SEQ, 100, is_training=False))
    inputs = {k: batches[0][k].numpy() for k in ("input_word_ids", "input_mask", "input_type_ids")}
    np.savez(tmp_path / "inputs.npz", **inputs)
    records = [r.numpy() for r in tf.data.TFRecordDataset(os.path.join(trained, "predict.tf_record"))]
    (tmp_path / "records.bin").write_bytes(b"".join(len(r).to_bytes(4, "little") + r for r in records))
    script = f"""
import json, numpy as np, tensorflow as tf
model = tf.saved_model.load({saved_model!r})
inputs = dict(np.load({str(tmp_path / 'inputs.npz')!r}))
out = model.signatures["serving_default"](**{{k: tf.constant(v) for k, v in inputs.items()}})
data, records = open({str(tmp_path / 'records.bin')!r}, "rb").read(), []
while data:
    n = int.from_bytes(data[:4], "little"); records.append(data[4:4 + n]); data = data[4 + n:]
by_record = model.signatures["serve_examples"](serialized_example=tf.constant(records))
print(json.dumps({{"tensors": {{k: v.numpy().tolist() for k, v in out.items()}},
                  "records": {{k: v.numpy().tolist() for k, v in by_record.items()}}}}))
"""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300,
                            cwd=str(tmp_path))  # a new process without albert_tf on its path
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    rows = [json.loads(line) for line in open(os.path.join(trained, "race_predictions.jsonl"))]
    for outputs in (served["tensors"], served["records"]):
        assert set(outputs) == {"logits", "probabilities", "predictions"}
        np.testing.assert_allclose(outputs["logits"], [r["logits"] for r in rows], atol=1e-5)
        np.testing.assert_allclose(outputs["probabilities"], [r["probabilities"] for r in rows], atol=1e-6)
        assert ["ABCD"[i] for i in outputs["predictions"]] == [r["prediction"] for r in rows]


def test_existing_predict_file_is_used_as_is(setup, trained, tmp_path):
    """Predict only, from a feature file without a side file (e.g. written by the original code) and a
    fine-tuned --init_checkpoint: no data directory, no tokenizer; no ids or levels in the outputs."""
    features = str(tmp_path / "original_features.tf_record")
    shutil.copy(os.path.join(trained, "predict.tf_record"), features)
    run = RaceRun(output_dir=str(tmp_path / "out"), albert_config_file=setup["config_file"],
                  init_checkpoint=os.path.join(trained, "model.ckpt-best"), predict_file=features, do_train=False,
                  do_eval=False, do_predict=True, max_seq_length=SEQ, max_qa_length=QA, predict_batch_size=8)
    result = driver.run(RaceTask(run))
    rows = [json.loads(line) for line in open(tmp_path / "out" / "race_predictions.jsonl")]
    assert all(set(r) == {"logits", "probabilities", "prediction"} for r in rows)
    before = [json.loads(line) for line in open(os.path.join(trained, "race_predictions.jsonl"))]
    np.testing.assert_allclose([r["logits"] for r in rows], [r["logits"] for r in before], atol=1e-5)
    assert set(result["predict"]["metrics"]) == {"eval_accuracy", "eval_loss"}
    lines = open(tmp_path / "out" / "predict_results.txt").read().splitlines()
    assert lines[0] == "***** Predict results *****" and not any(line.startswith("best") for line in lines)

    longer = dataclasses.replace(run, max_seq_length=SEQ + 8)
    with pytest.raises(ValueError, match=r"original_features.tf_record was written with max_seq_length=32, but "
                                         r"--max_seq_length=40"):
        RaceTask(longer, RunContext(longer)).features("predict")


def _write(prefix, tensors):
    names = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(tensors[n]) for n in names])


def test_tf1_head_loads_strictly_and_saves_in_the_official_layout(tmp_path):
    """A fine-tuned RACE checkpoint in the original layout (encoder written by the original code, head
    output_weights [1,H] / output_bias [1]) gives pooled_output . w + b of the original's pooled outputs."""
    reference = np.load(os.path.join(TINY_V2, "reference.npz"))
    reader = tf.train.load_checkpoint(os.path.join(TINY_V2, "model.ckpt-0"))
    encoder = {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map() if n.startswith("bert/")}
    rng = np.random.default_rng(0)
    head = {"output_weights": rng.normal(size=(1, 32)).astype(np.float32),
            "output_bias": rng.normal(size=(1,)).astype(np.float32)}
    _write(str(tmp_path / "race.ckpt"), {**encoder, **head})

    model = AlbertMultipleChoice(AlbertConfig.from_json_file(os.path.join(TINY_V2, "albert_config.json")))
    checkpoints.load_original_checkpoint(model, str(tmp_path / "race.ckpt"))  # strict
    rows = [0, 1, 2, 0]
    inputs = {"input_word_ids": reference["input_ids"][rows][None], "input_mask": reference["input_mask"][rows][None],
              "input_type_ids": reference["token_type_ids"][rows][None]}
    logits = model(inputs, training=False)["logits"].numpy()
    expected = reference["pooled_output"][rows] @ head["output_weights"][0] + head["output_bias"][0]
    np.testing.assert_allclose(logits, expected[None], atol=1e-5)

    prefix = checkpoints.save_original_checkpoint(model, str(tmp_path / "saved" / "model.ckpt"))
    saved = checkpoints.read_original_checkpoint(prefix)
    assert {n: list(v.shape) for n, v in saved.items()} == {
        **{n: list(v.shape) for n, v in encoder.items()}, "output_weights": [1, 32], "output_bias": [1]}
    np.testing.assert_array_equal(saved["output_weights"], head["output_weights"])

    # A GLUE head ([2,H]) is not a RACE head.
    _write(str(tmp_path / "glue.ckpt"), {**encoder, "output_weights": np.zeros((2, 32), np.float32),
                                         "output_bias": np.zeros((2,), np.float32)})
    with pytest.raises(checkpoints.CheckpointMismatchError, match="output_weights"):
        checkpoints.load_original_checkpoint(model, str(tmp_path / "glue.ckpt"))


def test_both_layouts_give_the_same_features_and_side_file(setup, tmp_path):
    """dev/middle as all.txt and the same articles as one file each: identical records; the side file
    lists every example's article id, question index, level and label."""
    source = os.path.join(setup["data_dir"], "RACE", "dev", "middle", "all.txt")
    per_file = tmp_path / "dev" / "middle"
    per_file.mkdir(parents=True)
    for i, line in enumerate(open(source).read().splitlines(), start=1):
        (per_file / f"{i}.txt").write_text(line)
    tokenizer = FullTokenizer(spm_model_file=SPM_MODEL)
    files = []
    for data_dir in (race.race_root(setup["data_dir"]), str(tmp_path)):
        out = str(tmp_path / f"features{len(files)}" / "dev.tf_record")
        assert race.write_race_features(data_dir, "dev", "middle", tokenizer, SEQ, QA, out) == 4
        files.append(out)
    records = [[r.numpy() for r in tf.data.TFRecordDataset(f)] for f in files]
    assert records[0] == records[1]
    info = race.read_feature_info(race.examples_path(files[0]))
    dev_middle = [d for d in setup["expected"]["dev"] if d[2] == "middle"]
    assert list(zip(info.article_ids, info.question_indices, info.levels, ["ABCD"[x] for x in info.labels])) == \
        dev_middle
    labels = [tf.train.Example.FromString(r).features.feature["label_ids"].int64_list.value[0] for r in records[0]]
    assert labels == info.labels


@pytest.mark.parametrize("content, message", [
    (b'{"id": "m1.txt", "article": "caf\xe9"}', r"5\.txt: invalid UTF-8 at byte 32"),
    (b'{"id": "m1.txt", "article": "a", "questions": "q?", "options": [], "answers": []}',
     r"5\.txt: 'questions' must be a list, got str"),
    (b'{"id": "m1.txt", "article": "a", "questions": ["q?"], "options": ["abcd"], "answers": ["A"]}',
     r"5\.txt: 'options'\[0\] is a str; RACE needs a list of exactly 4 options"),
    (b'{"article": "a", "questions": [], "options": [], "answers": []}', r"5\.txt: article has no 'id' key"),
    (b'{"id": "m1.txt", "article": "a", "questions": ["q?"], "options": [["a", "b", "c", "d"]], "answers": ["a"]}',
     r"5\.txt: 'answers'\[0\] is 'a'; expected one of A, B, C, D"),
])
def test_bad_articles_name_the_file(tmp_path, content, message):
    folder = tmp_path / "dev" / "high"
    folder.mkdir(parents=True)
    (folder / "5.txt").write_bytes(content)
    with pytest.raises(race.RaceDataError, match=message):
        race.read_race_examples(str(tmp_path), "dev", "high")


def test_bad_line_of_all_txt_names_file_and_line(tmp_path):
    folder = tmp_path / "test" / "middle"
    folder.mkdir(parents=True)
    valid = json.dumps(make_article(random.Random(0), "middle1.txt", 1)).encode()
    (folder / "all.txt").write_bytes(valid + b"\n\xff\xfe\n")
    with pytest.raises(race.RaceDataError, match=r"all\.txt:2: invalid UTF-8 at byte 0"):
        race.read_race_examples(str(tmp_path), "test", "middle")


@pytest.mark.parametrize("overrides, error, message", [
    (dict(high_only=True, middle_only=True), ValueError, "--high_only and --middle_only exclude each other"),
    (dict(max_qa_length=30), ValueError, r"--max_qa_length=30 must be between 1 and --max_seq_length - 3 = 29"),
    (dict(task_name="squad"), ValueError, "only runs the task 'race'"),
    (dict(spm_model_file=None), ValueError, "Set --spm_model_file"),
    (dict(data_dir=None, do_train=False, do_eval=False, do_predict=True), ValueError,
     "--data_dir is required to build the predict features"),
    (dict(albert_config_file=None), ValueError, "--albert_config_file is required"),
])
def test_bad_settings_fail_before_any_work(setup, tmp_path, overrides, error, message):
    values = dict(output_dir=str(tmp_path / "out"), data_dir=setup["data_dir"], albert_config_file=setup["config_file"],
                  spm_model_file=SPM_MODEL, max_seq_length=SEQ, max_qa_length=QA)
    values.update(overrides)
    with pytest.raises(error, match=message):
        bound(RaceTask, RaceRun(**values)).validate()
    assert not (tmp_path / "out").exists()


def test_data_dir_without_the_split_names_the_folder(setup, tmp_path):
    shutil.copytree(os.path.join(setup["data_dir"], "RACE", "dev"), tmp_path / "RACE" / "dev")
    run = RaceRun(output_dir=str(tmp_path / "out"), data_dir=str(tmp_path), albert_config_file=setup["config_file"],
                  spm_model_file=SPM_MODEL, max_seq_length=SEQ, max_qa_length=QA, do_predict=True)
    with pytest.raises(FileNotFoundError, match=r"RACE folder not found: .*RACE/train/middle"):
        driver.run(RaceTask(run))
    run = dataclasses.replace(run, do_train=False)
    with pytest.raises(FileNotFoundError, match=r"RACE folder not found: .*RACE/test/middle"):
        driver.run(RaceTask(run))
    assert not (tmp_path / "out").exists()
