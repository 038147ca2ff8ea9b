"""SavedModel export of GLUE classifiers (albert_tf.export, albert_tf.classifier.export_checkpoint,
export_savedmodel.py): reloaded in a new process, both SavedModels give the Python path's outputs."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from albert_tf import checkpoints
from albert_tf.export import serving as export
from albert_tf.runs import export_classifier_checkpoint as export_checkpoint
from albert_tf.tasks.glue.export import head_outputs
from albert_tf.configs import AlbertConfig
from albert_tf.tasks.glue import data as glue
from albert_tf.data.classifier_features import InputExample, convert_single_example, label_map_for, serialize_features
from albert_tf.modeling import AlbertClassifier, AlbertModel
from albert_tf.tokenization import FullTokenizer, preprocess_text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPM_MODEL = os.path.join(ROOT, "tests", "fixtures", "tokenization", "tiny-clean.model")
SEQ = 24
THRESHOLD = 0.25
# Case, accents, runs of spaces and pairs long enough to be truncated (SEQ - 3 pieces), as the
# Python feature code and the in-graph preprocessing must treat them alike.
PAIRS = [
    ("The  Café is OPEN.", "A function returns a value."),
    ("Élan  vital", "the object and the method and the class statement with other values and types"),
    ("Raise an exception when the module attribute is missing from the namespace, always.",
     "Short one."),
    ("x", "Y z"),
]
# task -> (single text?, threshold)
TASKS = {"mrpc": (False, THRESHOLD), "sst-2": (True, None), "sts-b": (False, None)}

LOADER = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf

    spec = json.load(open(sys.argv[1]))
    out = {}
    for task, entry in spec.items():
        serve = tf.saved_model.load(entry["dir"]).signatures["serving_default"]
        serialized = [r.numpy() for r in tf.data.TFRecordDataset(entry["records"])]
        result = serve(serialized_example=tf.constant(serialized))
        out[task] = {"examples": {k: v.numpy().tolist() for k, v in result.items()},
                     "inputs": sorted(serve.structured_input_signature[1])}
    out["tensorflow_text_needed"] = "tensorflow_text" in sys.modules
    import tensorflow_text  # registers the ops of the raw-text SavedModels
    for task, entry in spec.items():
        loaded = tf.saved_model.load(entry["text_dir"])
        serve = loaded.signatures["serving_default"]
        texts = {name: tf.constant(values) for name, values in entry["texts"].items()}
        result = serve(**texts)
        out[task]["text"] = {k: (v.numpy().astype(str).tolist() if v.dtype == tf.string else v.numpy().tolist())
                             for k, v in result.items()}
        out[task]["text_inputs"] = sorted(serve.structured_input_signature[1])
        info = loaded.signatures["tokenization_info"]()
        out[task]["info"] = {"vocab_file": info["vocab_file"].numpy().decode(),
                             "do_lower_case": bool(info["do_lower_case"].numpy())}
    json.dump(out, open(sys.argv[2], "w"))
""")


def python_features(task, pairs, tokenizer):
    """Features of the Python path: processor normalisation + convert_single_example."""
    processor = glue.get_processor(task)
    label_map = label_map_for(processor.get_labels(), processor.is_regression)
    single = TASKS[task][0]
    features = []
    for i, (a, b) in enumerate(pairs):
        example = InputExample(guid=str(i), text_a=preprocess_text(a, lower=True),
                               text_b=None if single else preprocess_text(b, lower=True),
                               label=0.0 if processor.is_regression else processor.get_labels()[0])
        features.append(convert_single_example(example, label_map, SEQ, tokenizer))
    return features


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Exports a randomly initialised classifier per task (mrpc through export_savedmodel.py), reloads
    every SavedModel in a new process and returns (in-process reference outputs, served outputs, dirs)."""
    root = tmp_path_factory.mktemp("export")
    tf.random.set_seed(3)
    # A wide initialiser, so examples get clearly different probabilities.
    config = dict(vocab_size=1000, embedding_size=8, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                  intermediate_size=32, max_position_embeddings=SEQ, initializer_range=0.5)
    config_file = root / "albert_config.json"
    config_file.write_text(json.dumps(config))
    tokenizer = FullTokenizer(spm_model_file=SPM_MODEL)
    reference, spec, dirs = {}, {}, {}
    for task, (single, threshold) in TASKS.items():
        processor = glue.get_processor(task)
        model = AlbertClassifier(AlbertConfig.from_dict(config), len(processor.get_labels()))
        checkpoints.save_original_checkpoint(model, str(root / task / "model.ckpt-best"))
        features = python_features(task, PAIRS, tokenizer)
        inputs = {name: tf.constant([getattr(f, field) for f in features]) for name, field in
                  (("input_word_ids", "input_ids"), ("input_mask", "input_mask"), ("input_type_ids", "segment_ids"))}
        outputs = head_outputs(model(inputs, training=False)["logits"], processor.is_regression)
        reference[task] = {k: v.numpy() for k, v in outputs.items()}
        records = str(root / f"{task}.tf_record")
        with tf.io.TFRecordWriter(records) as writer:
            for f in features:
                writer.write(serialize_features(f, processor.is_regression))
        export_dir = str(root / "exports" / task)
        if task == "mrpc":
            proc = subprocess.run(
                [sys.executable, os.path.join(ROOT, "export_savedmodel.py"), "--task_name=MRPC",
                 f"--albert_config_file={config_file}", f"--output_dir={root / task}", f"--spm_model_file={SPM_MODEL}",
                 f"--max_seq_length={SEQ}", f"--export_dir={export_dir}", f"--threshold_to_export={threshold}"],
                capture_output=True, text=True, timeout=600)
            assert proc.returncode == 0, proc.stderr[-3000:]
            printed = proc.stdout.split()
            paths = {"": printed[0], "_text": printed[1]}
        else:
            paths = export_checkpoint(str(config_file), task, export_dir, output_dir=str(root / task),
                                      max_seq_length=SEQ, spm_model_file=SPM_MODEL, threshold=threshold)
        dirs[task] = paths
        texts = {"text_a": [a for a, _ in PAIRS]}
        if not single:
            texts["text_b"] = [b for _, b in PAIRS]
        spec[task] = {"dir": paths[""], "text_dir": paths["_text"], "records": records, "texts": texts}
    (root / "spec.json").write_text(json.dumps(spec))
    (root / "loader.py").write_text(LOADER)
    proc = subprocess.run([sys.executable, str(root / "loader.py"), str(root / "spec.json"), str(root / "out.json")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return reference, json.loads((root / "out.json").read_text()), dirs


# One test for everything the shared export fixture feeds: pytest-xdist would run a module fixture
# once per worker that picks up one of its tests, and the fixture is the expensive part.
def test_reloaded_savedmodels(exported):
    reference, served, dirs = exported
    # The original SavedModel uses plain TensorFlow ops only.
    assert served["tensorflow_text_needed"] is False
    for task, (single, threshold) in TASKS.items():
        processor = glue.get_processor(task)
        expected = reference[task]
        # The comparison means something only when examples differ.
        assert np.ptp(expected["probabilities"], axis=0).max() > 1e-3
        assert served[task]["inputs"] == ["serialized_example"]
        assert served[task]["text_inputs"] == (["text_a"] if single else ["text_a", "text_b"])
        for signature in ("examples", "text"):
            got = served[task][signature]
            where = f"{task} {signature}"
            np.testing.assert_allclose(got["probabilities"], expected["probabilities"], rtol=1e-5, atol=1e-6,
                                       err_msg=where)
            if processor.is_regression:
                np.testing.assert_allclose(got["predictions"], expected["predictions"], rtol=1e-5, atol=1e-6,
                                           err_msg=where)
                assert "labels" not in got, where
            else:
                assert got["predictions"] == expected["predictions"].tolist(), where
                if signature == "text":
                    labels = processor.get_labels()
                    assert got["labels"] == [labels[i] for i in expected["predictions"]], where
            if threshold is None:
                assert "threshold" not in got, where
            else:
                assert got["threshold"] == pytest.approx(threshold), where
        # Layout: <stamp>/ and <stamp>_text/, nothing temporary left; the spm model is an asset.
        paths = dirs[task]
        stamp = os.path.basename(paths[""])
        assert stamp.isdigit() and paths["_text"] == paths[""] + "_text"
        assert sorted(os.listdir(os.path.dirname(paths[""]))) == [stamp, stamp + "_text"]
        assert tf.saved_model.contains_saved_model(paths[""])
        info = served[task]["info"]
        assert info["do_lower_case"] is True
        assert info["vocab_file"] == os.path.join(paths["_text"], "assets", "tiny-clean.model")
        assert os.path.exists(info["vocab_file"])


def test_export_timestamps_never_collide(tmp_path, monkeypatch):
    monkeypatch.setattr(export.time, "time", lambda: 1000.5)
    os.makedirs(tmp_path / "1000")
    os.makedirs(tmp_path / "1001_text")
    assert export.free_stamp(str(tmp_path), ["", "_text"]) == "1002"


def test_export_needs_a_fine_tuned_checkpoint(tmp_path):
    config = AlbertConfig(vocab_size=1000, embedding_size=8, hidden_size=16, num_hidden_layers=1,
                          num_attention_heads=2, intermediate_size=32, max_position_embeddings=SEQ)
    config.to_json_file(str(tmp_path / "albert_config.json"))
    encoder_only = checkpoints.save_original_checkpoint(AlbertModel(config), str(tmp_path / "pretrained" / "model.ckpt"))
    with pytest.raises(ValueError, match="not fine-tuned for rte.*Fine-tune first"):
        export_checkpoint(str(tmp_path / "albert_config.json"), "rte", str(tmp_path / "exports"),
                          init_checkpoint=encoder_only, max_seq_length=SEQ)
    with pytest.raises(ValueError, match="--max_seq_length=25 exceeds max_position_embeddings=24"):
        export_checkpoint(str(tmp_path / "albert_config.json"), "rte", str(tmp_path / "exports"),
                          init_checkpoint=encoder_only, max_seq_length=SEQ + 1)
