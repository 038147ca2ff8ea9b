"""The `Task` interface: everything that differs between ALBERT jobs (pretraining, GLUE, SQuAD, RACE).

The one driver (`albert_tf.core.driver.run`) does the rest, the same way for every task: validate,
initialise, train with checkpoints in both layouts, evaluate every saved checkpoint, keep the best one,
predict and export. The method names follow Model Garden's `official.core.base_task.Task`
(`build_model`, `build_inputs`, `build_losses`, `build_metrics`, `validation_step` outputs,
`aggregate_logs` / `reduce_aggregated_logs`, `initialize`), restated for this project's needs: exact
original numerics, the original flags, TF1-layout checkpoints and outputs.

A task is built from its run settings (`albert_tf.core.settings.RunSettings` plus the task's own fields,
named like the original flags) and the run's context (`albert_tf.core.context.RunContext`: model source,
encoder, config, tokenizer, resolved once by the driver). Tasks load nothing themselves. A new job needs a
`Task` subclass, a settings class and a thin absl script (see docs/architecture.md).
"""
from __future__ import annotations

import abc
import dataclasses
from typing import Any, Callable, Mapping, Optional

import numpy as np
import tensorflow as tf
import tf_keras as keras

from albert_tf.checkpoints import loading
from albert_tf.configs import AlbertConfig
from albert_tf.core.context import RunContext
from albert_tf.core.settings import RunSettings  # noqa: F401  (the settings every task extends)

# A nested structure of tensors: one batch of features, or the model's outputs.
Nested = Any
# (features, outputs) -> per-example values, or (values, weights); logged as a weighted mean in training.
MetricFn = Callable[[Nested, Nested], Any]
# The fine-tuning tasks' training shuffle seed: the same stream every run, so that a resumed run under a
# distributed strategy (whose input position cannot be checkpointed) continues it by skipping what was read.
TRAIN_SHUFFLE_SEED = 12345


@dataclasses.dataclass
class EvalSet:
    """One evaluation data set of a task.

    Attributes:
      name: "" for the main set; other sets (e.g. MNLI "_mismatched") suffix their metric keys.
      dataset: GLOBAL batches in a fixed order; finite unless `num_steps` bounds it.
      num_steps: stop after this many batches (None: until the data ends).
      context: anything the task's `reduce_validation` needs for this set (e.g. SQuAD side information).
    """

    name: str
    dataset: tf.data.Dataset
    num_steps: Optional[int] = None
    context: Any = None


class Task(abc.ABC):
    """One ALBERT job. Subclasses set the class attributes and implement the abstract methods.

    Class attributes:
      name: short name used in logs.
      metric_key: the evaluation metric that selects `model.ckpt-best` (e.g. `eval_accuracy`, `f1`).
      higher_is_better: direction of `metric_key`.
    """

    name: str = "task"
    metric_key: str = "eval_accuracy"
    higher_is_better: bool = True

    # Settings fields a rerun in the same output directory must share with the earlier run to resume it,
    # where the task has them (see `compatibility_facts`).
    compatibility_fields: tuple[str, ...] = ()

    def __init__(self, settings: RunSettings, context: Optional[RunContext] = None):
        self.settings = settings
        # What the run resolved (`albert_tf.core.context.build`); the driver binds it before any other call.
        self.context = context
        # Set by the driver on a worker other than the chief (see `write_dir`).
        self.scratch_dir: Optional[str] = None

    @property
    def write_dir(self) -> str:
        """Where this process writes the task's output files (predictions, prediction results):
        `output_dir`, or on a worker other than the chief a scratch folder of its own. Every worker of a
        multi-worker run computes every output; only the chief's files count."""
        return self.scratch_dir or self.settings.output_dir

    # ------------------------------------------------------------------------------- model inputs
    def _context(self) -> RunContext:
        if self.context is None:
            raise RuntimeError(f"{type(self).__name__} has no run context: driver.run(task) builds one, or pass "
                               "context=albert_tf.core.context.build(settings).")
        return self.context

    @property
    def hub_encoder(self) -> Optional[keras.layers.Layer]:
        """The encoder of `--albert_hub_module_handle`, or None."""
        return self._context().hub_encoder

    @property
    def config(self) -> Optional[AlbertConfig]:
        """The model config (see `albert_tf.core.context.resolve_config`)."""
        return self._context().config

    @property
    def tokenizer(self) -> Any:
        """The run's `FullTokenizer` (see `albert_tf.core.context.resolve_tokenizer`)."""
        return self._context().tokenizer

    # ------------------------------------------------------------------------------- settings
    def resolve_settings(self) -> RunSettings:
        """The settings the run uses, resolved from the given ones before anything else (default: as given;
        e.g. SQuAD's original scripts turn on evaluation when the predict file has answers)."""
        return self.settings

    def validate(self) -> None:
        """Cheap checks of the settings and inputs, before any expensive work (tokenizing, building
        models): files exist, lengths fit the config, nothing to do is an error. Raise `ValueError` /
        `FileNotFoundError` with one line naming the flag and the fix. The driver adds the checks every
        task shares (init checkpoint exists and fits the config, output directory writable)."""

    @abc.abstractmethod
    def num_train_steps(self) -> int:
        """Optimizer steps to train for (the schedule's length)."""

    def compatibility_facts(self) -> dict[str, Any]:
        """What a rerun in the same output directory must share with the earlier run to resume it (kept in
        `run_settings.json`, see `albert_tf.core.run_dir`): the task, the model config, the vocabulary file's
        hash and the task's `compatibility_fields`."""
        from albert_tf.core.settings import TextSettings
        from albert_tf.data import cache  # light: hashing only

        s = self.settings
        facts: dict[str, Any] = {"task": self.name}
        if self.context is not None and self.context.config is not None:
            facts["albert_config"] = self.context.config.to_dict()
        if isinstance(s, TextSettings):
            vocabulary = s.spm_model_file or s.vocab_file
            if vocabulary and tf.io.gfile.exists(vocabulary):
                facts["vocab_sha256"] = cache.file_sha256(vocabulary)
        values = dataclasses.asdict(s)
        facts.update({name: values[name] for name in self.compatibility_fields})
        return facts

    def num_warmup_steps(self) -> int:
        """Linear warmup steps of the schedule."""
        return 0

    def train_log_summary(self) -> str:
        """One line describing the training run, for the log."""
        s = self.settings
        return (f"{self.name}: batch {s.train_batch_size}, {self.num_train_steps()} steps "
                f"({self.num_warmup_steps()} warmup), {s.optimizer} lr {s.learning_rate:g}")

    # ------------------------------------------------------------------------------- model
    @abc.abstractmethod
    def build_model(self, encoder: Optional[keras.layers.Layer] = None) -> keras.Model:
        """A new task model (an `albert_tf.modeling.AlbertTaskModel`), built around `encoder` when given
        (e.g. from `--albert_hub_module_handle`), else around an `AlbertModel` of the task's config. Called
        under the strategy scope."""

    def initialize(self, model: keras.Model, path: Any) -> None:
        """Initialises a new model from `--init_checkpoint` (before training). Default: the one policy of
        `checkpoints.initialize_from_checkpoint` (encoder strictly; heads too when the checkpoint has
        them)."""
        loading.initialize_from_checkpoint(model, path, init_from_group0=self.settings.init_from_group0)

    # ------------------------------------------------------------------------------- training
    def micro_batch_size(self) -> int:
        """Examples over all replicas in one forward/backward pass: `train_batch_size` divided by
        `gradient_accumulation_steps` (the trainer accumulates that many passes per optimizer step)."""
        s = self.settings
        return s.train_batch_size // s.gradient_accumulation_steps

    @abc.abstractmethod
    def train_dataset(self, input_context: tf.distribute.InputContext) -> tf.data.Dataset:
        """PER-REPLICA training batches (`input_context.get_per_replica_batch_size(self.micro_batch_size())`),
        sharded by input pipeline, shuffled, repeating forever. Builds cached feature files when missing."""

    @abc.abstractmethod
    def loss(self, features: Nested, outputs: Nested) -> tf.Tensor:
        """Scalar mean loss of one replica's batch (`outputs` already cast to float32)."""

    def train_metrics(self) -> Mapping[str, MetricFn]:
        """Metrics logged during training (weighted means since the previous log line)."""
        return {}

    # ------------------------------------------------------------------------------- evaluation
    def eval_sets(self) -> list[EvalSet]:
        """The data sets every checkpoint is evaluated on (`--do_eval`); builds cached features when missing.
        Called once per run, so the evaluation step is traced once."""
        raise NotImplementedError(f"{type(self).__name__} has no evaluation (--do_eval).")

    def validation_outputs(self, features: Nested, outputs: Nested) -> Mapping[str, tf.Tensor]:
        """Per-example tensors to collect during evaluation (leading batch dimension), in the graph."""
        raise NotImplementedError(f"{type(self).__name__} has no evaluation (--do_eval).")

    def reduce_validation(self, collected: Mapping[str, Mapping[str, np.ndarray]], step: int) -> dict[str, Any]:
        """The metrics of one checkpoint from every eval set's collected outputs (`{set name: {key: array}}`,
        arrays concatenated in data order). Keys of sets other than "" carry the set's suffix. May write
        task files in `write_dir` (e.g. SQuAD's predictions of this checkpoint). Must include `metric_key`."""
        raise NotImplementedError(f"{type(self).__name__} has no evaluation (--do_eval).")

    # ------------------------------------------------------------------------------- predict and export
    def predict(self, model: keras.Model, runner: "Predictor") -> Any:
        """`--do_predict`: predict with the fine-tuned `model` and write the task's output files in
        `write_dir`. `runner.predict(dataset, output_fn)` runs the model (compiled once)."""
        raise NotImplementedError(f"{type(self).__name__} has no prediction (--do_predict).")

    def export(self, model: keras.Model, export_dir: str, checkpoint: ServingCheckpoint) -> dict[str, str]:
        """`--export_dir`: SavedModels of the fine-tuned `model`, which holds `checkpoint` (see
        `albert_tf.export.serving`). Returns {kind: directory}."""
        raise NotImplementedError(f"{type(self).__name__} has no export (--export_dir).")


@dataclasses.dataclass(frozen=True)
class ServingCheckpoint:
    """The checkpoint the driver predicts and exports with, and what the run recorded about it.

    Attributes:
      path: its prefix (official layout) or Hugging Face directory.
      step: the training step it was saved at (None when unknown: a release, a converted model).
      best_value: the best evaluation metric this run recorded (`best_trial.txt`), None without a record.
      best_record: the `eval_results.txt` block of `model.ckpt-best` (e.g. SQuAD v2.0's tuned threshold),
        None without one.
    """

    path: str
    step: Optional[int] = None
    best_value: Optional[float] = None
    best_record: Optional[Mapping[str, Any]] = None


class Predictor(abc.ABC):
    """Runs a model over global batches with step functions compiled once per element spec.

    `checkpoint` is the checkpoint whose weights the model holds (set by the driver for `--do_predict`),
    for task outputs that record it (RACE's `predict_results.txt`).
    """

    checkpoint: Optional[ServingCheckpoint] = None

    @abc.abstractmethod
    def predict(self, dataset: tf.data.Dataset, output_fn: Optional[Callable[[Nested, Nested], Nested]] = None,
                num_steps: Optional[int] = None) -> Nested:
        """Numpy arrays of `output_fn(features, outputs)` (default: the outputs), one row per example,
        in dataset order."""


def check_seq_length(max_seq_length: int, config: Optional[AlbertConfig], config_file: Optional[str]) -> None:
    """`--max_seq_length` must fit the config's position table and hold `[CLS] a [SEP] b [SEP]`."""
    if config is not None and max_seq_length > config.max_position_embeddings:
        raise ValueError(f"--max_seq_length={max_seq_length} exceeds max_position_embeddings="
                         f"{config.max_position_embeddings} of {config_file}; use a smaller --max_seq_length.")
    if max_seq_length < 3:
        raise ValueError(f"--max_seq_length={max_seq_length} is too small: [CLS] A [SEP] B [SEP] needs >= 3.")
