"""The `Task` interface: everything that differs between ALBERT jobs (pretraining, GLUE, SQuAD, RACE).

The one driver (`albert_tf.core.driver.run`) does the rest, the same way for every task: validate,
initialise, train with checkpoints in both layouts, evaluate every saved checkpoint, keep the best one,
predict and export. The method names follow Model Garden's `official.core.base_task.Task`
(`build_model`, `build_inputs`, `build_losses`, `build_metrics`, `validation_step` outputs,
`aggregate_logs` / `reduce_aggregated_logs`, `initialize`), restated for this project's needs: exact
original numerics, the original flags, TF1-layout checkpoints and outputs.

A task is built from its run settings (`RunSettings` plus the task's own fields, named like the
original flags). A new job needs a `Task` subclass and a thin absl script.
"""
from __future__ import annotations

import abc
import dataclasses
import math
from typing import Any, Callable, Mapping, Optional

import numpy as np
import tensorflow as tf
import tf_keras as keras

from albert_tf import checkpoints
from albert_tf.configs import AlbertConfig

# A nested structure of tensors: one batch of features, or the model's outputs.
Nested = Any
# (features, outputs) -> per-example values, or (values, weights); logged as a weighted mean in training.
MetricFn = Callable[[Nested, Nested], Any]
# The fine-tuning tasks' training shuffle seed: the same stream every run, so that a resumed run under a
# distributed strategy (whose input position cannot be checkpointed) continues it by skipping what was read.
TRAIN_SHUFFLE_SEED = 12345


@dataclasses.dataclass(kw_only=True)
class RunSettings:
    """What the driver needs from every task's settings. Task settings subclass this and add their own
    fields (named like the original flags); each script maps its flags onto them with one explicit table
    (`albert_tf.core.flags.run_config_from_flags`).

    Task-specific names of the same facts (e.g. GLUE's `train_step`, pretraining's `num_train_steps`) are
    reported through `Task.num_train_steps()` / `Task.num_warmup_steps()`.
    """

    output_dir: str
    init_checkpoint: Optional[str] = None
    albert_hub_module_handle: Optional[str] = None
    do_train: bool = False
    do_eval: bool = False
    do_predict: bool = False
    export_dir: Optional[str] = None
    export_formats: str = "savedmodel"  # comma list, see `albert_tf.export.deploy`
    export_quantize: str = ""
    train_batch_size: int = 32
    eval_batch_size: int = 8
    predict_batch_size: int = 8
    optimizer: str = "adamw"
    learning_rate: float = 5e-5
    poly_power: float = 1.0
    start_warmup_step: int = 0
    save_checkpoints_steps: int = 1000
    keep_checkpoint_max: int = 5
    init_from_group0: bool = False
    # TF2 runtime settings (`albert_tf.core.flags`).
    steps_per_loop: int = 1000
    log_steps: Optional[int] = None
    jit_compile: bool = False
    write_summaries: bool = True
    gradient_accumulation_steps: int = 1
    recompute_grad: bool = False
    overwrite_output_dir: bool = False
    # The side-car evaluator (`albert_tf.core.driver`).
    continuous_eval: bool = False
    eval_timeout: int = 3600


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

    def __init__(self, settings: RunSettings):
        self.settings = settings
        self._hub_encoder: Optional[keras.layers.Layer] = None
        self._config: Optional[AlbertConfig] = None
        self._tokenizer: Any = None
        # Set by the driver on a worker other than the chief (see `write_dir`).
        self.scratch_dir: Optional[str] = None

    @property
    def write_dir(self) -> str:
        """Where this process writes the task's output files (predictions, prediction results):
        `output_dir`, or on a worker other than the chief a scratch folder of its own. Every worker of a
        multi-worker run computes every output; only the chief's files count."""
        return self.scratch_dir or self.settings.output_dir

    # ------------------------------------------------------------------------------- model inputs
    @property
    def hub_encoder(self) -> Optional[keras.layers.Layer]:
        """The encoder of `--albert_hub_module_handle` (loaded once), or None."""
        handle = self.settings.albert_hub_module_handle
        if handle and self._hub_encoder is None:
            from albert_tf.checkpoints import hub  # TF-Hub reading is only needed with a handle

            self._hub_encoder = hub.from_hub(handle)
        return self._hub_encoder

    @property
    def config(self) -> Optional[AlbertConfig]:
        """The model config: `--albert_config_file`, else that of a Hugging Face `--init_checkpoint`, else
        that of a TF1 Hub module; None for a TF2 Hub encoder (which needs none)."""
        if self._config is None:
            self._config = load_model_config(getattr(self.settings, "albert_config_file", None),
                                             self.settings.init_checkpoint)
            if self._config is None and self.hub_encoder is not None:
                self._config = getattr(self.hub_encoder, "config", None)
        return self._config

    @property
    def tokenizer(self) -> Any:
        """The `FullTokenizer` of the run (see `load_tokenizer`), built once."""
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.settings, self.hub_encoder)
        return self._tokenizer

    # ------------------------------------------------------------------------------- settings
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
        hash, the casing and the sequence length, where the task has them."""
        from albert_tf.data import cache  # light: hashing only

        s = self.settings
        facts: dict[str, Any] = {"task": self.name}
        config = getattr(self, "config", None)
        if config is not None:
            facts["albert_config"] = config.to_dict()
        vocabulary = getattr(s, "spm_model_file", None) or getattr(s, "vocab_file", None)
        if vocabulary and tf.io.gfile.exists(vocabulary):
            facts["vocab_sha256"] = cache.file_sha256(vocabulary)
        for name in ("do_lower_case", "max_seq_length", "max_predictions_per_seq"):
            if hasattr(s, name):
                facts[name] = getattr(s, name)
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

    def initialize(self, model: keras.Model, path: str) -> None:
        """Initialises a new model from `--init_checkpoint` (before training). Default: the one policy of
        `checkpoints.initialize_from_checkpoint` (encoder strictly; heads too when the checkpoint has
        them)."""
        checkpoints.initialize_from_checkpoint(model, path, init_from_group0=self.settings.init_from_group0)

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

    def export(self, model: keras.Model, export_dir: str) -> dict[str, str]:
        """`--export_dir`: SavedModels of the fine-tuned `model` (see `albert_tf.export.serving`).
        Returns {kind: directory}."""
        raise NotImplementedError(f"{type(self).__name__} has no export (--export_dir).")


class Predictor(abc.ABC):
    """Runs a model over global batches with step functions compiled once per element spec.

    `checkpoint_step` is the training step of the checkpoint whose weights the model holds (None when
    unknown), for task outputs that record it (RACE's `predict_results.txt`).
    """

    checkpoint_step: Optional[int] = None

    @abc.abstractmethod
    def predict(self, dataset: tf.data.Dataset, output_fn: Optional[Callable[[Nested, Nested], Nested]] = None,
                num_steps: Optional[int] = None) -> Nested:
        """Numpy arrays of `output_fn(features, outputs)` (default: the outputs), one row per example,
        in dataset order."""


def load_model_config(albert_config_file: Optional[str], init_checkpoint: Optional[str] = None
                      ) -> Optional[AlbertConfig]:
    """The model config of a run: `--albert_config_file`, else the `config.json` of a Hugging Face
    `--init_checkpoint`, else None (the encoder then comes from `--albert_hub_module_handle`)."""
    if albert_config_file:
        return AlbertConfig.from_json_file(albert_config_file)
    if init_checkpoint:
        from albert_tf.checkpoints import transformers  # only needed for Hugging Face directories

        if transformers.is_transformers_dir(init_checkpoint):
            return transformers.transformers_albert_config(init_checkpoint)
    return None


def check_seq_length(max_seq_length: int, config: Optional[AlbertConfig], config_file: Optional[str]) -> None:
    """`--max_seq_length` must fit the config's position table and hold `[CLS] a [SEP] b [SEP]`."""
    if config is not None and max_seq_length > config.max_position_embeddings:
        raise ValueError(f"--max_seq_length={max_seq_length} exceeds max_position_embeddings="
                         f"{config.max_position_embeddings} of {config_file}; use a smaller --max_seq_length.")
    if max_seq_length < 3:
        raise ValueError(f"--max_seq_length={max_seq_length} is too small: [CLS] A [SEP] B [SEP] needs >= 3.")


def load_tokenizer(settings: Any, hub_encoder: Optional[keras.layers.Layer] = None) -> Any:
    """The `FullTokenizer` of a run: `--spm_model_file` / `--vocab_file` (with `--do_lower_case`), else the one
    of a Hugging Face `--init_checkpoint`, else the one of the `--albert_hub_module_handle` encoder.

    Raises:
      ValueError: none of them gives a tokenizer, or the model's own casing contradicts `--do_lower_case`.
    """
    from albert_tf.tokenization import FullTokenizer

    if settings.spm_model_file or settings.vocab_file:
        return FullTokenizer(vocab_file=settings.vocab_file, do_lower_case=settings.do_lower_case,
                             spm_model_file=settings.spm_model_file)
    tokenizer, source = None, None
    if settings.init_checkpoint:
        from albert_tf.checkpoints import transformers  # only needed for Hugging Face directories

        if transformers.is_transformers_dir(settings.init_checkpoint):
            tokenizer, source = FullTokenizer.from_transformers(settings.init_checkpoint), "--init_checkpoint"
    if tokenizer is None and hub_encoder is not None and getattr(hub_encoder, "tokenizer", None) is not None:
        tokenizer, source = hub_encoder.tokenizer, "--albert_hub_module_handle"
    if tokenizer is None:
        raise ValueError("Set --spm_model_file (SentencePiece, e.g. 30k-clean.model) or --vocab_file (WordPiece); "
                         "a Hugging Face --init_checkpoint or --albert_hub_module_handle also brings its own.")
    cased = getattr(tokenizer, "do_lower_case", settings.do_lower_case)
    if cased != settings.do_lower_case:
        raise ValueError(f"The model of {source} has do_lower_case={cased}, but --do_lower_case="
                         f"{settings.do_lower_case}: pass --do_lower_case={cased}.")
    return tokenizer


def better(value: float, best: Optional[float], higher_is_better: bool = True) -> bool:
    """Whether `value` beats `best` (None: nothing yet; a NaN never beats a number)."""
    if best is None or (math.isnan(best) and not math.isnan(value)):
        return True
    if math.isnan(value):
        return False
    return value > best if higher_is_better else value < best
