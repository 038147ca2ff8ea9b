"""Keras serialization of every model: get_config / from_config, and a save + reload in the Keras and
SavedModel formats giving identical outputs."""
import numpy as np
import pytest
import tf_keras as keras

from albert_tf.configs import AlbertConfig
from albert_tf.modeling import (AlbertClassifier, AlbertModel, AlbertMultipleChoice, AlbertPretrainer,
                                AlbertQuestionAnswering)
from albert_tf.modeling.models import AlbertSquadV2

CONFIG = AlbertConfig(vocab_size=30, embedding_size=8, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=32, max_position_embeddings=16)
IDS = np.array([[2, 5, 6, 3, 0], [2, 7, 3, 9, 3]], np.int32)
INPUTS = dict(input_word_ids=IDS, input_mask=(IDS > 0).astype(np.int32), input_type_ids=np.zeros_like(IDS))
MODELS = {
    "encoder": (lambda: AlbertModel(CONFIG), INPUTS, "sequence_output"),
    "pretrainer": (lambda: AlbertPretrainer(CONFIG), dict(INPUTS, masked_lm_positions=np.array([[1, 2], [0, 3]])),
                   "mlm_logits"),
    "classifier": (lambda: AlbertClassifier(CONFIG, 3, id2label={0: "a", 1: "b", 2: "c"}), INPUTS, "logits"),
    # An injected encoder of another size is serialized with the model.
    "classifier_injected": (lambda: AlbertClassifier(None, 2, encoder=AlbertModel(
        AlbertConfig(**dict(CONFIG.to_dict(), hidden_size=8, num_hidden_layers=1)))), INPUTS, "logits"),
    "question_answering": (lambda: AlbertQuestionAnswering(CONFIG), INPUTS, "end_logits"),
    "multiple_choice": (lambda: AlbertMultipleChoice(CONFIG, num_choices=2),
                        {k: np.stack([v, v[::-1]], axis=1) for k, v in INPUTS.items()}, "logits"),
    "squad_v2": (lambda: AlbertSquadV2(CONFIG, start_n_top=2, end_n_top=2),
                 dict(INPUTS, p_mask=1 - INPUTS["input_mask"]), "end_top_log_probs"),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_save_and_reload_give_identical_outputs(name, tmp_path):
    build, inputs, key = MODELS[name]
    model = build()
    expected = model(inputs, training=False)[key].numpy()
    clone = type(model).from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    for path, kwargs in ((str(tmp_path / "model.keras"), {}), (str(tmp_path / "saved_model"), {"save_format": "tf"})):
        model.save(path, **kwargs)
        reloaded = keras.models.load_model(path)
        assert type(reloaded) is type(model), path
        np.testing.assert_array_equal(reloaded(inputs, training=False)[key].numpy(), expected)
    if name == "classifier":
        assert keras.models.load_model(str(tmp_path / "model.keras")).id2label == {0: "a", 1: "b", 2: "c"}
