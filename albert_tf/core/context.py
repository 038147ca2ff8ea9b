"""The run context: what a run resolves once, before any task method runs.

`build(settings, strategy)` resolves `--init_checkpoint` and `--albert_hub_module_handle` into model sources
(`albert_tf.checkpoints.source`), loads the Hub encoder under the strategy, picks the model config and the
tokenizer, and checks what every task needs from them. The driver builds one per run and hands it to the
task (`Task(settings, context)`); tasks only read it, so no task method loads a model file, and every
consumer of the init checkpoint (the dry run, the initialisation, the serving checkpoint) shares one
resolution and one read of its weights. Parsed task inputs (e.g. SQuAD JSON files) live on the task,
read once per run.
"""
from __future__ import annotations

from typing import Any, Optional

import tensorflow as tf
import tf_keras as keras

from albert_tf.checkpoints import source as model_source
from albert_tf.checkpoints.source import ModelSource
from albert_tf.configs import AlbertConfig
from albert_tf.core.settings import ModelSettings, RunSettings, TextSettings


class RunContext:
    """What one run resolved (see the module docstring).

    Attributes:
      init_source: `--init_checkpoint` resolved (None without it).
      hub_encoder: the `--albert_hub_module_handle` encoder, built under the run's strategy (None without).
      config: `--albert_config_file`, else the config a Hugging Face `--init_checkpoint` carries, else
        the Hub encoder's (None for a TF2 SavedModel encoder, which needs none).
      tokenizer: the run's `FullTokenizer` (`resolve_tokenizer`), built on first use and kept: a run that
        only exports a model may need none.
    """

    def __init__(self, settings: Any = None, init_source: Optional[ModelSource] = None,
                 hub_encoder: Optional[keras.layers.Layer] = None, config: Optional[AlbertConfig] = None,
                 tokenizer: Any = None):
        self.settings = settings
        self.init_source = init_source
        self.hub_encoder = hub_encoder
        self.config = config
        self._tokenizer = tokenizer

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None and isinstance(self.settings, TextSettings):
            self._tokenizer = resolve_tokenizer(self.settings, self.init_source, self.hub_encoder)
        return self._tokenizer


def resolve_config(albert_config_file: Optional[str], init_source: Optional[ModelSource] = None,
                   hub_encoder: Optional[keras.layers.Layer] = None) -> Optional[AlbertConfig]:
    """The model config of a run: `--albert_config_file`, else that of a Hugging Face `--init_checkpoint`,
    else the Hub encoder's; None when none of them gives one."""
    if albert_config_file:
        if not tf.io.gfile.exists(albert_config_file):
            raise FileNotFoundError(f"--albert_config_file={albert_config_file} not found.")
        return AlbertConfig.from_json_file(albert_config_file)
    if init_source is not None and init_source.kind == model_source.TRANSFORMERS:
        return init_source.config()
    return getattr(hub_encoder, "config", None)


def resolve_tokenizer(settings: Any, init_source: Optional[ModelSource] = None,
                      hub_encoder: Optional[keras.layers.Layer] = None) -> Any:
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
    if init_source is not None and init_source.kind == model_source.TRANSFORMERS:
        spec = init_source.tokenizer_spec()
        if spec is not None:
            tokenizer, source = FullTokenizer.from_spec(spec), "--init_checkpoint"
    if tokenizer is None and getattr(hub_encoder, "tokenizer", None) is not None:
        tokenizer, source = hub_encoder.tokenizer, "--albert_hub_module_handle"
    if tokenizer is None:
        raise ValueError("Set --spm_model_file (SentencePiece, e.g. 30k-clean.model) or --vocab_file (WordPiece); "
                         "a Hugging Face --init_checkpoint or --albert_hub_module_handle also brings its own.")
    cased = getattr(tokenizer, "do_lower_case", settings.do_lower_case)
    if cased != settings.do_lower_case:
        raise ValueError(f"The model of {source} has do_lower_case={cased}, but --do_lower_case="
                         f"{settings.do_lower_case}: pass --do_lower_case={cased}.")
    return tokenizer


def build(settings: RunSettings, strategy: Optional[tf.distribute.Strategy] = None) -> RunContext:
    """Resolves the run's model sources, encoder, config and tokenizer once (see the module docstring).

    Settings with `ModelSettings` need a config (from one of the three places); settings with
    `TextSettings` get a tokenizer (on first use); others (a toy task) get neither.

    Raises:
      ValueError / FileNotFoundError: a path that holds nothing usable, no config where the model needs
        one, no tokenizer where the task needs one; each names the flag and the fix.
    """
    if isinstance(settings, TextSettings):  # cheap, before anything is loaded
        for flag, path in (("spm_model_file", settings.spm_model_file), ("vocab_file", settings.vocab_file)):
            if path and not tf.io.gfile.exists(path):
                raise FileNotFoundError(f"--{flag}={path} not found.")
    init_source = model_source.resolve(settings.init_checkpoint) if settings.init_checkpoint else None
    hub_encoder = None
    if settings.albert_hub_module_handle:
        from albert_tf.checkpoints import hub  # TF-Hub loading is only needed with a handle

        with (strategy or tf.distribute.get_strategy()).scope():  # its variables must belong to the strategy
            hub_encoder = hub.from_hub(model_source.resolve(settings.albert_hub_module_handle, hub=True))
    config = None
    if isinstance(settings, ModelSettings):
        config = resolve_config(settings.albert_config_file, init_source, hub_encoder)
        if config is None and hub_encoder is None:
            raise ValueError("--albert_config_file is required (the albert_config.json of the model), unless "
                             "--albert_hub_module_handle gives the encoder or --init_checkpoint is a Hugging Face "
                             "directory.")
    return RunContext(settings, init_source=init_source, hub_encoder=hub_encoder, config=config)
