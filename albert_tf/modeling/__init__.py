"""ALBERT in tf_keras: layers (`layers`, `embedding`, `transformer`), the encoder (`encoder`), task
heads (`heads`) and task models (`models`), all exact to the original release's `modeling.py`."""
from albert_tf.modeling.encoder import ENCODER_INPUTS, AlbertModel, as_inputs
from albert_tf.modeling.heads import ClassificationHead, MaskedLMHead, SquadV2Head
from albert_tf.modeling.models import (AlbertClassifier, AlbertMultipleChoice, AlbertPretrainer,
                                       AlbertQuestionAnswering, AlbertSquadV2, AlbertTaskModel, encoder_tf1_variables)

__all__ = ["ENCODER_INPUTS", "AlbertModel", "as_inputs", "AlbertClassifier", "AlbertMultipleChoice",
           "AlbertPretrainer", "AlbertQuestionAnswering", "AlbertSquadV2", "AlbertTaskModel", "ClassificationHead",
           "MaskedLMHead", "SquadV2Head", "encoder_tf1_variables"]
