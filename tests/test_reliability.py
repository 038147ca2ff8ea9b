"""Issue 13: no silent wrong results, clean errors up front, a quiet console.

One test (or a few) per defect: stale feature caches, the `checkpoint` state file of a relative output
directory, reruns into an incompatible output directory, malformed and binary inputs, truncated
checkpoints, unusable output directories, one-line errors from scripts, and the SQuAD evaluator's
one-line summary of unanswered questions.
"""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import sentencepiece as spm
import tensorflow as tf

from albert_tf import checkpoints, tokenization
from albert_tf.tasks.squad import evaluate as squad_eval
from albert_tf.configs import AlbertConfig
from albert_tf.core import cli, run_dir
from albert_tf.data import cache, text_checks
from albert_tf.tasks.glue import data as glue
from albert_tf.tasks.pretraining import data as pretraining
from albert_tf.tasks.glue import names as task_names
from albert_tf.demo import DemoOptions, demo_settings, eval_history_table, small_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPM_MODEL = os.path.join(ROOT, "tests", "fixtures", "tokenization", "tiny-clean.model")
RTE_HEADER = "index\tsentence1\tsentence2\tlabel\n"
RTE_TRAIN = RTE_HEADER + "0\tThe cat sat.\tA cat sat.\tentailment\n1\tDogs bark.\tCats bark.\tnot_entailment\n"


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


def train_other_spm(tmp_path) -> str:
    """A second, different SentencePiece model (another vocabulary than the fixture's)."""
    text = tmp_path / "spm_text.txt"
    text.write_text("\n".join(["zebras quickly jump over lazy wolves", "every wolf sleeps at noon",
                               "quiet rivers flow to the warm sea"] * 20), encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(text), model_prefix=str(tmp_path / "other"), vocab_size=30,
                                   pad_id=0, unk_id=1, eos_id=-1, bos_id=-1,
                                   control_symbols=["[CLS]", "[SEP]", "[MASK]"], minloglevel=2)
    return str(tmp_path / "other.model")


def first_ids(path):
    record = next(iter(tf.data.TFRecordDataset(path)))
    return list(tf.train.Example.FromString(record.numpy()).features.feature["input_ids"].int64_list.value)


# ------------------------------------------------------------------------------------------ item 1
@pytest.fixture()
def rte(tmp_path):
    data_dir = tmp_path / "glue"
    write(data_dir / "RTE" / "train.tsv", RTE_TRAIN)
    return str(data_dir), str(tmp_path / "cache")


def write_train(data_dir, cache_dir, spm_model=SPM_MODEL, lower=True, rebuild_stale=True, messages=None):
    tokenizer = tokenization.FullTokenizer(spm_model_file=spm_model, do_lower_case=lower)
    log = messages.append if messages is not None else (lambda m: None)
    return glue.write_glue_features("RTE", data_dir, tokenizer, 16, cache_dir, splits=("train",),
                                    do_lower_case=lower, reuse_cache=True, rebuild_stale=rebuild_stale,
                                    log=log)["train"]


def test_fresh_glue_cache_is_reused(rte):
    data_dir, cache_dir = rte
    path, count = write_train(data_dir, cache_dir)
    assert count == 2
    with open(cache.sidecar_path(path)) as f:
        recorded = json.load(f)
    assert recorded["complete"] and recorded["max_seq_length"] == 16 and recorded["task"] == "rte"
    assert recorded["tokenizer"]["sha256"] == cache.file_sha256(SPM_MODEL)
    messages = []
    assert write_train(data_dir, cache_dir, messages=messages) == (path, None)  # None: not rewritten
    assert any("Using cached features" in m for m in messages)


def test_glue_cache_of_another_spm_model_is_rebuilt_or_refused(rte, tmp_path):
    data_dir, cache_dir = rte
    path, _ = write_train(data_dir, cache_dir)
    ids_a = first_ids(path)
    other = train_other_spm(tmp_path)
    with pytest.raises(cache.StaleCacheError, match=r"tokenizer: cached .*tiny-clean\.model.*other\.model"):
        write_train(data_dir, cache_dir, spm_model=other, rebuild_stale=False)
    messages = []
    assert write_train(data_dir, cache_dir, spm_model=other, messages=messages) == (path, 2)
    assert any(m.startswith(f"Rebuilding cached features {path}") for m in messages)
    ids_b = first_ids(path)
    tokenizer_b = tokenization.FullTokenizer(spm_model_file=other)
    expected_b = tokenizer_b.convert_tokens_to_ids(tokenizer_b.tokenize("the cat sat."))
    # [CLS] then text_a (pair truncation only drops pieces from the end): the new vocabulary's ids.
    assert ids_b[1:4] == expected_b[:3] and ids_b != ids_a


def test_glue_cache_of_other_casing_or_data_is_stale(rte):
    data_dir, cache_dir = rte
    path, _ = write_train(data_dir, cache_dir)
    with pytest.raises(cache.StaleCacheError, match="do_lower_case: cached True, now False"):
        write_train(data_dir, cache_dir, lower=False, rebuild_stale=False)
    write(pathlib.Path(data_dir, "RTE", "train.tsv"), RTE_TRAIN + "2\tBirds fly.\tBirds sing.\tnot_entailment\n")
    with pytest.raises(cache.StaleCacheError, match="sources: cached"):
        write_train(data_dir, cache_dir, rebuild_stale=False)
    assert write_train(data_dir, cache_dir) == (path, 3)


def test_cache_without_fingerprint_is_refused_and_interrupted_build_rebuilt(rte):
    data_dir, cache_dir = rte
    path, _ = write_train(data_dir, cache_dir)
    os.remove(cache.sidecar_path(path))
    with pytest.raises(cache.StaleCacheError) as info:
        write_train(data_dir, cache_dir)
    assert path in str(info.value) and "no fingerprint" in str(info.value) and "Delete the file" in str(info.value)
    facts = glue.feature_fingerprint(glue.get_processor("rte"), tokenization.FullTokenizer(spm_model_file=SPM_MODEL),
                                     data_dir, "train", 16)
    cache.write_fingerprint(path, facts, complete=False)  # as left by a killed build
    with pytest.raises(cache.StaleCacheError, match="interrupted"):
        cache.check_cache(path, facts)
    assert write_train(data_dir, cache_dir) == (path, 2)


def test_fingerprint_records_what_it_is_given(tmp_path):
    source = write(tmp_path / "a.txt", "abc")
    facts = cache.fingerprint(tokenizer_file=SPM_MODEL, sources=[source], max_seq_length=8, labels=("x", "y"))
    assert facts["sources"] == [{"name": "a.txt", "size": 3, "sha256":
                                 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}]
    assert facts["labels"] == ["x", "y"] and facts["feature_code_version"] == cache.FEATURE_CODE_VERSION
    assert cache.check_cache(str(tmp_path / "none.tf_record"), facts) == "missing"


# ------------------------------------------------------------------------------------------ items 2, 5, 7
class _Weights:
    """The least a model needs for `save_original_checkpoint`: official names -> variables."""

    def __init__(self, shapes):
        self.variables = {name: tf.Variable(np.full(shape, 0.5, np.float32)) for name, shape in shapes.items()}

    def tf1_variables(self):
        return self.variables


def test_checkpoint_state_is_right_for_a_relative_output_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = _Weights({"bert/w": [2, 3]})
    checkpoints.save_original_checkpoint(model, os.path.join("runs", "rte", "model.ckpt"), global_step=5)
    checkpoints.save_original_checkpoint(model, os.path.join("runs", "rte", "model.ckpt-best"))
    with open(os.path.join("runs", "rte", "checkpoint")) as f:
        state = f.read()
    assert 'model_checkpoint_path: "model.ckpt-best"' in state and "../" not in state
    assert 'all_model_checkpoint_paths: "model.ckpt-5"' in state
    assert tf.train.latest_checkpoint(os.path.join("runs", "rte")) == os.path.join("runs", "rte", "model.ckpt-best")
    monkeypatch.chdir(tmp_path / "runs")  # found from any working directory
    assert tf.train.latest_checkpoint("rte") == os.path.join("rte", "model.ckpt-best")
    absolute = tmp_path / "runs" / "rte"
    assert tf.train.latest_checkpoint(str(absolute)) == str(absolute / "model.ckpt-best")


def test_relative_directory_resolves_to_the_checkpoint_its_state_file_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = _Weights({"bert/w": [2]})
    for step in (5, 7):
        checkpoints.save_original_checkpoint(model, os.path.join("runs", "model.ckpt"), global_step=step)
    assert checkpoints.resolve_checkpoint_path("runs") == os.path.join("runs", "model.ckpt-7")


@pytest.mark.parametrize("suffix", [".data-00000-of-00001", ".index"])
def test_truncated_checkpoint_error_names_the_file(tmp_path, suffix):
    prefix = checkpoints.save_original_checkpoint(_Weights({"bert/w": [64, 64]}), str(tmp_path / "model.ckpt"), 3)
    path = prefix + suffix
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])
    with pytest.raises(checkpoints.CorruptCheckpointError) as info:
        checkpoints.load_original_checkpoint(_Weights({"bert/w": [64, 64]}), prefix, allow_partial=True)
    message = str(info.value)
    assert prefix in message and "incomplete or corrupt" in message and "again" in message


def test_shape_mismatch_message_lists_a_few_names_and_a_count(tmp_path):
    names = {f"bert/layer_{i}/w": [4] for i in range(12)}
    prefix = checkpoints.save_original_checkpoint(_Weights(names), str(tmp_path / "model.ckpt"))
    with pytest.raises(checkpoints.CheckpointMismatchError) as info:
        checkpoints.load_original_checkpoint(_Weights({n: [5] for n in names}), prefix)
    message = str(info.value)
    assert "12 shape mismatches" in message and "and 9 more" in message
    assert message.count("bert/layer_") == 3 and len(message) < 600
    assert "allow_partial" not in message  # no Python-only advice to a command-line user


# ------------------------------------------------------------------------------------------ items 3, 8
def test_rerun_with_other_settings_stops_before_writing(tmp_path):
    out = str(tmp_path / "demo")
    corpus = write(tmp_path / "corpus.txt", "One line.\nTwo lines.\n")
    options = DemoOptions(output_dir=out, vocab_size=3000)
    settings = demo_settings(options, [corpus], small_config(3000, 64))
    assert run_dir.prepare_output_dir(out, settings) is False
    write(tmp_path / "demo" / "spm.model", "old model")
    assert run_dir.prepare_output_dir(out, settings) is True  # same flags: resume
    other = demo_settings(DemoOptions(output_dir=out, vocab_size=4000), [corpus], small_config(4000, 64))
    with pytest.raises(run_dir.OutputDirError) as info:
        run_dir.prepare_output_dir(out, other)
    message = str(info.value)
    assert "vocab_size: recorded 3000, now 4000" in message and "new --output_dir" in message
    assert "--overwrite_output_dir" in message
    assert (tmp_path / "demo" / "spm.model").read_text() == "old model"  # nothing overwritten
    assert run_dir.prepare_output_dir(out, other, overwrite=True) is False
    assert not (tmp_path / "demo" / "spm.model").exists()
    assert run_dir.read_settings(out)["vocab_size"] == 4000


def test_changed_corpus_or_config_is_incompatible(tmp_path):
    out = str(tmp_path / "demo")
    corpus = write(tmp_path / "corpus.txt", "One line.\n")
    run_dir.prepare_output_dir(out, demo_settings(DemoOptions(), [corpus], small_config(3000, 64)))
    write(tmp_path / "corpus.txt", "Another text.\n")
    with pytest.raises(run_dir.OutputDirError, match="corpus"):
        run_dir.prepare_output_dir(out, demo_settings(DemoOptions(), [corpus], small_config(3000, 64)))
    config = AlbertConfig.from_dict({**small_config(3000, 64).to_dict(), "hidden_size": 64})
    with pytest.raises(run_dir.OutputDirError, match="albert_config.hidden_size: recorded 128, now 64"):
        write(tmp_path / "corpus.txt", "One line.\n")
        run_dir.prepare_output_dir(out, demo_settings(DemoOptions(), [corpus], config))


def test_earlier_run_without_settings_is_refused(tmp_path):
    write(tmp_path / "old" / "checkpoint", 'model_checkpoint_path: "model.ckpt-10"\n')
    with pytest.raises(run_dir.OutputDirError, match="without run_settings.json"):
        run_dir.prepare_output_dir(str(tmp_path / "old"), {"task": "rte"})
    assert run_dir.prepare_output_dir(str(tmp_path / "fresh"), {"task": "rte"}) is False


def test_output_dir_that_is_a_file_is_an_error(tmp_path):
    path = write(tmp_path / "results.txt", "x")
    with pytest.raises(run_dir.OutputDirError, match="results.txt is a file, not a directory"):
        run_dir.prepare_output_dir(path, {})
    with pytest.raises(run_dir.OutputDirError, match="cannot be created"):
        run_dir.prepare_output_dir(os.path.join(path, "sub"), {})


def test_rerun_prints_the_evaluation_history(tmp_path):
    path = write(tmp_path / "eval_results.txt", "".join(
        f"global_step = {step}\nloss = 6.0\nmasked_lm_accuracy = {acc}\nmasked_lm_loss = 5.5\n"
        f"sentence_order_accuracy = 0.75\nsentence_order_loss = 0.5\n{'=' * 50}\n"
        for step, acc in ((300, 0.25), (600, 0.5))))
    lines = eval_history_table(path)
    assert lines[-2].split() == ["300", "0.250", "5.500", "0.750", "0.500"]
    assert lines[-1].split()[:2] == ["600", "0.500"]
    assert "No held-out evaluation" in eval_history_table(str(tmp_path / "none.txt"))[-1]


# ------------------------------------------------------------------------------------------ item 4
@pytest.mark.parametrize("rel,text,line,expected", [
    ("RTE/train.tsv", RTE_HEADER + "0\tA.\tB.\tentailment\n1\tOnly a text.\tentailment\n", 3,
     "expected 4 tab-separated columns (index, sentence1, sentence2, label), found 3"),
    ("RTE/train.tsv", RTE_HEADER + "0\tA.\tB.\tentailment\textra\n", 2, "expected 4 tab-separated columns"),
    ("CoLA/train.tsv", "gj04\t1\t\tGood.\ngj04\t1\tBad one.\n", 2,
     "expected 4 tab-separated columns (source, label, original label, sentence), found 3"),
    ("SST-2/dev.tsv", "sentence\tlabel\nfine film\n", 2, "expected 2 tab-separated columns"),
])
def test_glue_row_with_wrong_column_count_is_an_error(tmp_path, rel, text, line, expected):
    path = write(tmp_path / rel, text)
    task = {"RTE": "rte", "CoLA": "cola", "SST-2": "sst-2"}[rel.split("/")[0]]
    split = "dev" if "dev" in rel else "train"
    with pytest.raises(glue.GlueDataError) as info:
        glue.get_processor(task).get_examples(str(tmp_path), split)
    assert str(info.value).startswith(f"{path}, line {line}: {expected}")


def test_qqp_short_rows_are_skipped_as_in_the_original(tmp_path):
    header = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
    write(tmp_path / "QQP" / "train.tsv", header + "1\t2\t3\tWhy?\tHow?\t0\n2\t4\t5\tbroken question\n"
          "3\t6\t7\tWho?\tWhom?\t1\n")
    examples = glue.get_processor("qqp").get_examples(str(tmp_path), "train")
    assert [(e.guid, e.label) for e in examples] == [("1", "0"), ("3", "1")]


def test_binary_or_huge_field_glue_file_is_a_clean_error(tmp_path):
    path = tmp_path / "RTE" / "train.tsv"
    path.parent.mkdir()
    path.write_bytes(b"index\tsentence1\n" + bytes(range(256)) * 40)
    with pytest.raises(glue.GlueDataError, match="does not look like text"):
        glue.get_processor("rte").get_examples(str(tmp_path), "train")
    write(path, RTE_HEADER + "0\t" + "a" * 200_000 + "\tb\tentailment\n")
    with pytest.raises(glue.GlueDataError, match="line 2: field larger than field limit"):
        glue.get_processor("rte").get_examples(str(tmp_path), "train")


def test_task_names_match_the_processors():
    assert set(task_names.GLUE_TASKS) == set(glue.PROCESSORS)
    assert all(target in glue.PROCESSORS for target in task_names.TASK_ALIASES.values())


def test_binary_pretraining_input_is_refused(tmp_path):
    binary = tmp_path / "program.bin"  # like an executable: every byte value, NULs included, many lines
    binary.write_bytes(bytes(range(256)) * 400)
    with pytest.raises(text_checks.NotTextError) as info:
        pretraining._read_lines(str(binary))
    assert f"--input_file {binary} does not look like text" in str(info.value)
    assert "--allow_binary_input" in str(info.value)
    assert len(pretraining._read_lines(str(binary), allow_binary_input=True)) > 1


def test_text_with_a_few_stray_bytes_is_accepted(tmp_path):
    latin1 = ("Caf\u00e9 au lait, na\u00efve fa\u00e7ade.\n" * 200).encode("latin-1")
    assert 0.1 < text_checks.suspicious_share(latin1) < text_checks.MAX_SUSPICIOUS_SHARE
    path = tmp_path / "latin1.txt"
    path.write_bytes(latin1)
    assert pretraining._read_lines(str(path))[0] == "Caf\u00e9 au lait, na\u00efve fa\u00e7ade."
    with pytest.raises(text_checks.NotTextError, match="UTF-16"):
        text_checks.check_text("Hello world\n".encode("utf-16-le"), "x.txt")


# ------------------------------------------------------------------------------------------ items 6, 7, 9
def script_env():
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "CUDA_VISIBLE_DEVICES")}
    env["PYTHONPATH"] = ROOT
    return env


def run_script(*args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "create_finetuning_data.py"), *args],
                          capture_output=True, text=True, env=script_env(), timeout=300)


def test_unknown_task_name_fails_at_once_without_tensorflow():
    result = run_script("--task=glue", "--task_name=rtee", "--data_dir=d", "--output_dir=o")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --task_name must be one of " + ", ".join(task_names.GLUE_TASKS) + " (aliases: "
        + ", ".join(task_names.TASK_ALIASES) + "); got 'rtee'."]


@pytest.mark.skipif(cli.has_gpu_device(), reason="checks the console of a machine without a GPU")
def test_script_input_error_is_one_line_without_traceback_or_cuda_noise(tmp_path):
    data_dir = tmp_path / "glue"
    write(data_dir / "RTE" / "train.tsv", RTE_HEADER + "0\tOnly a text.\tentailment\n")
    args = ["--task=glue", "--task_name=RTE", f"--data_dir={data_dir}", f"--spm_model_file={SPM_MODEL}",
            "--splits=train", f"--output_dir={tmp_path / 'out'}"]
    result = run_script(*args)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {data_dir / 'RTE' / 'train.tsv'}, line 2: expected 4 tab-separated columns (index, sentence1, "
        "sentence2, label), found 3. A missing or extra column shifts the fields (e.g. the label would be read as "
        "a text); fix this row of the rte train file."]


def test_verbose_shows_the_traceback():
    result = run_script("--task=glue", "--task_name=rtee", "--data_dir=d", "--output_dir=o", "--verbose")
    assert result.returncode != 0 and "Traceback" in result.stderr and "UserError" in result.stderr


def test_cli_helpers(monkeypatch):
    assert cli.error_line(ValueError("first\n  second ")) == "error: first second"
    assert cli.check_choice("task", " SST2 ", task_names.GLUE_TASKS, task_names.TASK_ALIASES) == "sst-2"
    assert cli.verbose_requested(["x", "--verbose"]) and not cli.verbose_requested(["x", "--verbose", "--noverbose"])
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    monkeypatch.setattr(cli, "has_gpu_device", lambda: False)
    cli.quiet_tensorflow(["x"])
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"


def test_squad_eval_summarises_unanswered_questions_in_one_line():
    data = {"data": [{"paragraphs": [{"context": "c", "qas": [
        {"id": f"q{i}", "question": "?", "answers": [{"text": "yes", "answer_start": 0}]} for i in range(5)]}]}]}
    messages = []
    result = squad_eval.evaluate_v1(data, {"q0": "yes"}, log=messages.append)
    assert result == {"exact_match": 20.0, "f1": 20.0}
    assert messages == ["4 of 5 questions are unanswered and will receive score 0 (ids q1, q2, q3, ...)."]
