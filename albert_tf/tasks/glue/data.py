"""GLUE (and XNLI) data processors, as the original `classifier_utils.py` defines them.

A processor turns the TSV files under ``data_dir/<Dir>/`` into `InputExample`s. Tasks are keyed by
lower-cased name: ``cola``, ``sst-2``, ``mrpc``, ``sts-b``, ``qqp``, ``mnli``, ``mismnli`` (MNLI with
the mismatched dev/test files), ``qnli``, ``rte``, ``wnli``, ``ax`` (the GLUE diagnostic set: test
only, predicted with an MNLI model, MNLI labels) and ``xnli`` (BERT-style XNLI, one language).

Every text, and the guid and label strings where the original does so, goes through
`DataProcessor.process_text`: ``preprocess_text(lower=do_lower_case)`` with a SentencePiece
tokenizer, ``convert_to_unicode`` with WordPiece. Files are read with
``csv.reader(delimiter="\\t", quotechar=None)`` as UTF-8 (a leading BOM, as in MRPC, is dropped).
Fully empty lines are skipped (the original would crash on them).

Every row must have exactly the file's number of columns: the header's where the split has one, else
the processor's `num_columns`. A row with a column too few or too many is an error naming the file, the
line and the expected columns (the original silently shifted the fields, e.g. the label became the
second text). The one exception is the original's: QQP train/dev rows with fewer than 6 columns are
skipped with a warning (the public QQP train set has a few broken lines).

`write_glue_features` writes the cached TFRecord files ``<task>_{train,eval,predict}.tf_record``, each
with a fingerprint sidecar (`albert_tf.data.cache`) recording the tokenizer file, casing, length, task,
split and source file it was built from; with ``reuse_cache=True`` a fresh cache is reused and a stale
one rebuilt (or refused).
"""
from __future__ import annotations

import csv
import io
import os
from typing import Any, Callable, ClassVar, Sequence

import tensorflow as tf
from absl import logging

from albert_tf import tokenization
from albert_tf.data import cache, classifier_features, text_checks
from albert_tf.tasks.glue import names as task_names
from albert_tf.data.classifier_features import InputExample

SPLITS = ("train", "dev", "test")
# Feature-file splits (the names of the cached files) and the example split each one encodes.
FEATURE_SPLITS = {"train": "train", "eval": "dev", "predict": "test"}


class GlueDataError(ValueError):
    """A malformed GLUE file; the message names the file, the line and what to fix."""


class _Row:
    """One parsed TSV line that names its file and line number when a column is missing."""

    def __init__(self, fields: list[str], path: str, line_number: int):
        self.fields = fields
        self.path = path
        self.line_number = line_number

    def __getitem__(self, index: int) -> str:
        if not -len(self.fields) <= index < len(self.fields):
            needed = index + 1 if index >= 0 else -index
            raise self.error(f"expected at least {needed} tab-separated columns, found "
                             f"{len(self.fields)}. Check that the file is the GLUE release's "
                             "tab-separated file, unmodified")
        return self.fields[index]

    def __len__(self) -> int:
        return len(self.fields)

    def error(self, message: str) -> GlueDataError:
        return GlueDataError(f"{self.path}, line {self.line_number}: {message}.")


def read_tsv(path: str) -> list[_Row]:
    """Reads a tab-separated file (no quoting, UTF-8 with or without a BOM) into rows.

    Empty lines are dropped; every row keeps its 1-based line number.

    Raises:
      FileNotFoundError: the file does not exist.
      GlueDataError: the file is binary, not valid UTF-8, or has a field longer than the csv module's
        limit (131,072 characters).
    """
    with tf.io.gfile.GFile(path, "rb") as f:
        raw = f.read()
    try:
        text_checks.check_text(raw, path)
        text = raw.decode("utf-8-sig")
    except text_checks.NotTextError as e:
        raise GlueDataError(str(e)) from None
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise GlueDataError(f"{path}, line {line}: not valid UTF-8 ({e.reason}). "
                            "Re-save the file as UTF-8.") from e
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quotechar=None)
    rows = []
    try:
        for fields in reader:
            if fields:
                rows.append(_Row(fields, path, reader.line_num))
    except csv.Error as e:
        raise GlueDataError(f"{path}, line {reader.line_num}: {e}. Check that the file is the GLUE "
                            "release's tab-separated file.") from None
    return rows


class DataProcessor:
    """Base class: reads one task's files and builds `InputExample`s.

    Subclasses set the class attributes and implement `_example`.

    Attributes:
      name: the lower-cased task key (also the prefix of cached feature files).
      directory: the task's folder under ``data_dir``.
      files: file name per split (``train``/``dev``/``test``); a split absent here does not exist.
      labels: the label strings (ids are their positions); ``[None]`` for regression.
      is_regression: one float output (STS-B).
      metric_key: the eval metric that selects the best checkpoint.
      extra_metrics: eval metrics beyond accuracy and loss (`albert_tf.metrics.EXTRA_METRICS`).
      single_sentence: examples have one text (decides the raw-text serving inputs).
      header_splits: the splits whose first line is a header to skip; every row of such a split must
        have as many columns as the header.
      num_columns: the exact column count of each split without a header, and the column names
        used in error messages.
    """
    name: ClassVar[str]
    directory: ClassVar[str]
    files: dict[str, str]
    labels: ClassVar[list[str | None]]
    is_regression: ClassVar[bool] = False
    metric_key: ClassVar[str] = "eval_accuracy"
    extra_metrics: ClassVar[tuple[str, ...]] = ()
    single_sentence: ClassVar[bool] = False
    header_splits: ClassVar[tuple[str, ...]] = SPLITS
    num_columns: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __init__(self, use_spm: bool = True, do_lower_case: bool = True, **text_options: bool):
        self.use_spm = use_spm
        self.do_lower_case = do_lower_case
        self.text_options = text_options  # `tokenization.text_options`: empty for the original's

    def process_text(self, text: str) -> str:
        """Normalises a text: `preprocess_text` in SPM mode, `convert_to_unicode` otherwise."""
        if self.use_spm:
            return tokenization.preprocess_text(text, lower=self.do_lower_case, **self.text_options)
        return tokenization.convert_to_unicode(text)

    def get_labels(self) -> list[str | None]:
        """The task's labels; ids are their positions."""
        return list(self.labels)

    def has_split(self, split: str) -> bool:
        """Whether the task defines ``split`` (``train``, ``dev`` or ``test``)."""
        return split in self.files

    def split_path(self, data_dir: str, split: str) -> str:
        """Path of a split's file under ``data_dir``."""
        if split not in SPLITS:
            raise ValueError(f"Unknown split {split!r}; use one of {list(SPLITS)}.")
        if split not in self.files:
            raise ValueError(f"Task {self.name!r} has no {split} set (it has: "
                             f"{', '.join(self.files)}).")
        return os.path.join(data_dir, self.directory, self.files[split])

    def layout_hint(self) -> str:
        """Describes the directory layout ``--data_dir`` must have for this task."""
        listed = ", ".join(f"{self.directory}/{f}" for f in self.files.values())
        return f"--data_dir must be the GLUE root folder holding {listed}"

    def get_train_examples(self, data_dir: str) -> list[InputExample]:
        return self.get_examples(data_dir, "train")

    def get_dev_examples(self, data_dir: str) -> list[InputExample]:
        return self.get_examples(data_dir, "dev")

    def get_test_examples(self, data_dir: str) -> list[InputExample]:
        return self.get_examples(data_dir, "test")

    def get_examples(self, data_dir: str, split: str) -> list[InputExample]:
        """Reads one split.

        Raises:
          FileNotFoundError: the split's file is missing (the message shows the expected layout).
          GlueDataError: a malformed row (too few columns, unknown label, bad score), with its line.
        """
        path = self.split_path(data_dir, split)
        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(f"{path} not found: {self.layout_hint()}.")
        examples = []
        columns: tuple[str, ...] = self.num_columns.get(split, ())
        for index, row in enumerate(read_tsv(path)):
            if index == 0 and split in self.header_splits:
                columns = tuple(row.fields)
                continue
            if not self._has_columns(row, columns, split):
                continue
            example = self._example(row, index, split)
            if example is None:
                continue
            if not self.is_regression and example.label not in self.labels:
                raise row.error(f"unknown label {example.label!r}; {self.name} labels are "
                                f"{self.labels}")
            examples.append(example)
        return examples

    def _has_columns(self, row: _Row, columns: Sequence[str], split: str) -> bool:
        """Checks that ``row`` has exactly ``len(columns)`` fields (no check when ``columns`` is empty).

        Returns True to use the row; subclasses may return False to skip rows the original skipped.

        Raises:
          GlueDataError: another number of fields, naming the expected columns.
        """
        if not columns or len(row) == len(columns):
            return True
        raise row.error(f"expected {len(columns)} tab-separated columns ({', '.join(columns)}), found "
                        f"{len(row)}. A missing or extra column shifts the fields (e.g. the label would be "
                        f"read as a text); fix this row of the {self.name} {split} file")

    def _example(self, row: _Row, index: int, split: str) -> InputExample | None:
        """Builds the example of one row (``index`` counts rows from 0, header included)."""
        raise NotImplementedError


class ColaProcessor(DataProcessor):
    """CoLA: train/dev have no header (label c1, text c3); test has one (guid c0, text c1)."""
    name = "cola"
    single_sentence = True
    extra_metrics = ("matthew_corr",)
    directory = "CoLA"
    files = {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"}
    labels = ["0", "1"]
    metric_key = "matthew_corr"
    header_splits = ("test",)
    num_columns = {split: ("source", "label", "original label", "sentence") for split in ("train", "dev")}

    def _example(self, row, index, split):
        if split == "test":
            return InputExample(guid=row[0], text_a=self.process_text(row[1]), label="0")
        return InputExample(guid=f"{split}-{index}", text_a=self.process_text(row[3]),
                            label=self.process_text(row[1]))


class Sst2Processor(DataProcessor):
    """SST-2: train/dev text c0, label c1, guid ``<split>-i``; test guid c0, text c1."""
    name = "sst-2"
    single_sentence = True
    directory = "SST-2"
    files = {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"}
    labels = ["0", "1"]

    def _example(self, row, index, split):
        if split == "test":
            return InputExample(guid=self.process_text(row[0]), text_a=self.process_text(row[1]),
                                label="0")
        return InputExample(guid=f"{split}-{index}", text_a=self.process_text(row[0]),
                            label=self.process_text(row[1]))


class MrpcProcessor(DataProcessor):
    """MRPC: label c0, texts c3/c4, guid ``<split>-i``; test guid c0."""
    name = "mrpc"
    extra_metrics = ("f1",)
    directory = "MRPC"
    files = {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"}
    labels = ["0", "1"]

    def _example(self, row, index, split):
        text_a, text_b = self.process_text(row[3]), self.process_text(row[4])
        if split == "test":
            return InputExample(guid=row[0], text_a=text_a, text_b=text_b, label="0")
        return InputExample(guid=f"{split}-{index}", text_a=text_a, text_b=text_b,
                            label=self.process_text(row[0]))


class StsbProcessor(DataProcessor):
    """STS-B (regression): guid c0, texts c7/c8, score = float(last column); test score 0."""
    name = "sts-b"
    directory = "STS-B"
    files = {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"}
    labels = [None]
    is_regression = True
    metric_key = "pearson"

    def _example(self, row, index, split):
        guid, text_a, text_b = (self.process_text(row[0]), self.process_text(row[7]),
                                self.process_text(row[8]))
        if split == "test":
            return InputExample(guid=guid, text_a=text_a, text_b=text_b, label=0.0)
        try:
            score = float(row[-1])
        except ValueError:
            raise row.error(f"the score {row[-1]!r} in the last column is not a number") from None
        return InputExample(guid=guid, text_a=text_a, text_b=text_b, label=score)


class QqpProcessor(DataProcessor):
    """QQP: guid c0; train/dev texts c3/c4, label c5 (short rows are skipped); test texts c1/c2."""
    name = "qqp"
    extra_metrics = ("f1",)
    directory = "QQP"
    files = {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"}
    labels = ["0", "1"]

    def _has_columns(self, row, columns, split):
        if split != "test" and len(row) < len(columns):
            # The original skips these rows (the public QQP train set has a few broken lines).
            logging.warning("%s, line %d: skipping a row with %d columns (QQP needs %d).",
                            row.path, row.line_number, len(row), len(columns))
            return False
        return super()._has_columns(row, columns, split)

    def _example(self, row, index, split):
        if split == "test":
            return InputExample(guid=row[0], text_a=self.process_text(row[1]),
                                text_b=self.process_text(row[2]), label="0")
        return InputExample(guid=row[0], text_a=self.process_text(row[3]),
                            text_b=self.process_text(row[4]), label=self.process_text(row[5]))


class _GuidPairProcessor(DataProcessor):
    """Shared layout: guid c0, texts c1/c2, label = last column; test rows get ``test_label``."""
    test_label: ClassVar[str]

    def _example(self, row, index, split):
        label = self.test_label if split == "test" else self.process_text(row[-1])
        return InputExample(guid=self.process_text(row[0]), text_a=self.process_text(row[1]),
                            text_b=self.process_text(row[2]), label=label)


class QnliProcessor(_GuidPairProcessor):
    name = "qnli"
    directory = "QNLI"
    files = {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"}
    labels = ["entailment", "not_entailment"]
    test_label = "entailment"


class RteProcessor(_GuidPairProcessor):
    name = "rte"
    directory = "RTE"
    files = {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"}
    labels = ["entailment", "not_entailment"]
    test_label = "entailment"


class WnliProcessor(_GuidPairProcessor):
    name = "wnli"
    directory = "WNLI"
    files = {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"}
    labels = ["0", "1"]
    test_label = "0"


class AxProcessor(_GuidPairProcessor):
    """GLUE diagnostic (AX): test only; predict it with a model fine-tuned on MNLI."""
    name = "ax"
    directory = "diagnostic"
    files = {"test": "diagnostic.tsv"}
    labels = ["contradiction", "entailment", "neutral"]
    test_label = "contradiction"


class MnliProcessor(DataProcessor):
    """MNLI matched: guid c0, texts c8/c9, label = last column; test label "contradiction"."""
    name = "mnli"
    directory = "MNLI"
    files = {"train": "train.tsv", "dev": "dev_matched.tsv", "test": "test_matched.tsv"}
    labels = ["contradiction", "entailment", "neutral"]

    def _example(self, row, index, split):
        label = "contradiction" if split == "test" else self.process_text(row[-1])
        return InputExample(guid=self.process_text(row[0]), text_a=self.process_text(row[8]),
                            text_b=self.process_text(row[9]), label=label)


class MisMnliProcessor(MnliProcessor):
    """MNLI with the mismatched dev and test sets (same train set)."""
    name = "mismnli"
    files = {"train": "train.tsv", "dev": "dev_mismatched.tsv", "test": "test_mismatched.tsv"}


class XnliProcessor(DataProcessor):
    """XNLI, BERT-style, for one language (default "zh").

    Train: ``XNLI/multinli/multinli.train.<lang>.tsv`` (text_a c0, text_b c1, label c2, where
    "contradictory" means "contradiction"), guid ``train-i``. Dev/test: ``XNLI/xnli.{dev,test}.tsv``
    keeping rows whose language (c0) is ``<lang>``; label c1, texts c6/c7, guid ``<split>-i``.
    """
    name = "xnli"
    directory = "XNLI"
    labels = ["contradiction", "entailment", "neutral"]

    def __init__(self, use_spm: bool = True, do_lower_case: bool = True, language: str = "zh",
                 **text_options: bool):
        super().__init__(use_spm, do_lower_case, **text_options)
        self.language = language
        self.files = {"train": f"multinli/multinli.train.{language}.tsv", "dev": "xnli.dev.tsv",
                      "test": "xnli.test.tsv"}

    def _example(self, row, index, split):
        if split == "train":
            label = self.process_text(row[2])
            if label == "contradictory":
                label = "contradiction"
            return InputExample(guid=f"train-{index}", text_a=self.process_text(row[0]),
                                text_b=self.process_text(row[1]), label=label)
        if self.process_text(row[0]) != self.language:
            return None
        return InputExample(guid=f"{split}-{index}", text_a=self.process_text(row[6]),
                            text_b=self.process_text(row[7]), label=self.process_text(row[1]))


PROCESSORS: dict[str, type[DataProcessor]] = {
    cls.name: cls for cls in (ColaProcessor, Sst2Processor, MrpcProcessor, StsbProcessor,
                              QqpProcessor, MnliProcessor, MisMnliProcessor, QnliProcessor,
                              RteProcessor, WnliProcessor, AxProcessor, XnliProcessor)}
TASK_ALIASES = task_names.TASK_ALIASES


def canonical_task_name(task_name: str) -> str:
    """Lower-cases a task name and resolves aliases (``SST2`` -> ``sst-2``).

    Raises:
      ValueError: an unknown task, listing the valid names.
    """
    key = task_name.strip().lower()
    key = TASK_ALIASES.get(key, key)
    if key not in PROCESSORS:
        raise ValueError(f"Unknown GLUE task {task_name!r}. Valid task names: "
                         f"{', '.join(PROCESSORS)} (aliases: {', '.join(TASK_ALIASES)}).")
    return key


def get_processor(task_name: str, use_spm: bool = True, do_lower_case: bool = True,
                  xnli_language: str = "zh", **text_options: bool) -> DataProcessor:
    """Returns the processor of a task (case-insensitive name or alias); `text_options` are the
    tokenizer's `preprocess_text` options (`tokenization.text_options`)."""
    key = canonical_task_name(task_name)
    if key == "xnli":
        return XnliProcessor(use_spm, do_lower_case, language=xnli_language, **text_options)
    return PROCESSORS[key](use_spm, do_lower_case, **text_options)


def feature_file_name(task_name: str, split: str, xnli_language: str = "zh") -> str:
    """Cached feature file name, ``<task>_<split>.tf_record``, for split train, eval or predict.

    XNLI names carry the language (``xnli_<language>_<split>.tf_record``) so that a cache built for one
    language is never reused for another.
    """
    if split not in FEATURE_SPLITS:
        raise ValueError(f"Unknown feature split {split!r}; use one of {list(FEATURE_SPLITS)}.")
    task = canonical_task_name(task_name)
    if task == "xnli":
        task = f"xnli_{xnli_language}"
    return f"{task}_{split}.tf_record"


def feature_fingerprint(processor: DataProcessor, tokenizer: Any, data_dir: str, split: str,
                        max_seq_length: int) -> dict[str, Any]:
    """What the feature file of ``split`` ("train", "eval" or "predict") is built from (`cache.fingerprint`).

    Raises:
      FileNotFoundError: the split's TSV file or the tokenizer's file is missing.
    """
    example_split = FEATURE_SPLITS[split]
    return cache.fingerprint(
        tokenizer_file=cache.tokenizer_file(tokenizer), sources=[processor.split_path(data_dir, example_split)],
        kind="glue", task=processor.name, split=split, language=getattr(processor, "language", None),
        do_lower_case=processor.do_lower_case, use_spm=processor.use_spm, max_seq_length=max_seq_length,
        labels=processor.get_labels(), **processor.text_options)


def write_glue_features(task_name: str, data_dir: str, tokenizer: Any, max_seq_length: int,
                        output_dir: str, splits: Sequence[str] = ("train", "eval", "predict"),
                        do_lower_case: bool = True, xnli_language: str = "zh",
                        num_workers: int | None = None,
                        log: Callable[[str], None] = logging.info, reuse_cache: bool = False,
                        rebuild_stale: bool = True) -> dict[str, tuple[str, int | None]]:
    """Encodes a task's splits into ``output_dir/<task>_<split>.tf_record`` (+ fingerprint sidecars).

    Args:
      task_name: e.g. "RTE" (lower-cased for the file names).
      data_dir: the GLUE root holding ``RTE/train.tsv`` etc.
      tokenizer: a ``FullTokenizer``; SentencePiece mode (``tokenizer.sp_model`` set) selects
        `preprocess_text` normalisation, WordPiece mode `convert_to_unicode`. Its model (or vocabulary)
        file is part of the fingerprint.
      max_seq_length: S.
      output_dir: created if missing.
      splits: any of "train" (train.tsv), "eval" (dev) and "predict" (test). A split whose file is
        missing, or that the task lacks (AX has only "predict"), is skipped with a message.
      do_lower_case: lower-case texts in SPM mode (the tokenizer ignores it there).
      xnli_language: language of the ``xnli`` task.
      num_workers: tokenization processes (see
        `classifier_features.convert_examples_to_features`).
      log: receives the skip and cache messages.
      reuse_cache: keep a feature file whose fingerprint matches (see `cache.ensure_features`); False
        always writes.
      rebuild_stale: with ``reuse_cache``, rebuild a feature file built from other inputs; False raises
        `cache.StaleCacheError` instead. A feature file without a fingerprint is always refused.

    Returns:
      {split: (path, number of examples written, or None for a reused file)} for the splits present.

    Raises:
      cache.StaleCacheError: see ``reuse_cache`` and ``rebuild_stale``.
    """
    use_spm = getattr(tokenizer, "sp_model", None) is not None
    processor = get_processor(task_name, use_spm, do_lower_case, xnli_language,
                              **tokenization.text_options(tokenizer))
    tf.io.gfile.makedirs(output_dir)
    written: dict[str, tuple[str, int | None]] = {}
    for split in splits:
        file_name = feature_file_name(processor.name, split, xnli_language)
        example_split = FEATURE_SPLITS[split]
        if not processor.has_split(example_split):
            log(f"Skipping {split}: task {processor.name} has no {example_split} set.")
            continue
        source = processor.split_path(data_dir, example_split)
        if not tf.io.gfile.exists(source):
            log(f"Skipping {split}: {source} not found ({processor.layout_hint()}).")
            continue
        path = os.path.join(output_dir, file_name)
        expected = feature_fingerprint(processor, tokenizer, data_dir, split, max_seq_length)
        counts: list[int] = []

        def build() -> None:
            examples = processor.get_examples(data_dir, example_split)
            counts.append(classifier_features.file_based_convert_examples_to_features(
                examples, processor.get_labels(), max_seq_length, tokenizer, path,
                processor.is_regression, num_workers))
            log(f"Wrote {counts[0]} {split} examples to {path}.")

        if reuse_cache:
            cache.ensure_features(path, expected, build, rebuild=rebuild_stale, log=log)
        else:
            cache.build_with_fingerprint(path, expected, build)
        written[split] = (path, counts[0] if counts else None)
    return written
