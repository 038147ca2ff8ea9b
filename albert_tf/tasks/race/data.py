"""RACE multiple-choice features, as the original `race_utils.py` builds them.

Layout: ``RACE_ROOT/{train,dev,test}/{middle,high}/`` holds either the official release's one JSON
article per ``N.txt`` file (read in numeric file-name order: ``2.txt`` before ``10.txt``) or the
original scripts' ``all.txt`` with one JSON article per line (used alone when present). Level ``all``
reads ``middle`` before ``high``. An article has the keys ``id``, ``article``, ``questions``,
``options`` (one list of 4 options per question) and ``answers`` (letters ``A``-``D``).

Every question is one example with ``label = ord(answer) - ord("A")`` and 4 candidate texts: the
question with every ``_`` replaced by the option when it has one, else ``question + " " + option``.
Question, option and article are normalised separately (``preprocess_text`` in SentencePiece mode).

Each candidate is encoded as ``[CLS] context [SEP] ending [SEP]`` where ``ending`` keeps the LAST
``max_qa_length`` pieces of the candidate and the context is cut from its end to fit
``max_seq_length - 3``; segment ids are 0 for ``[CLS] context [SEP]`` and 1 for ``ending [SEP]``.
On disk a ``tf.train.Example`` holds ``input_ids``, ``input_mask``, ``segment_ids`` (int64
[4 * S], the 4 choices concatenated), ``label_ids`` and ``is_real_example`` (int64 [1]), exactly the
original's records. Next to a feature file ``F.tf_record`` the writer puts ``F.examples.json`` (see
`examples_path`): per record its article id, question index, level and label, so evaluation can split
accuracy by level; and the cache fingerprint ``F.tf_record.fingerprint.json`` (`albert_tf.data.cache`).

Input errors (missing keys, wrong types, not 4 options, an answer outside A-D, invalid JSON or
UTF-8, a missing split folder) raise `RaceDataError` / `FileNotFoundError` naming the file.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
from typing import Any, Iterator, Sequence

import tensorflow as tf
from absl import logging

from albert_tf import tokenization
from albert_tf.data import cache, classifier_features, parallel, records

SPLITS = ("train", "dev", "test")
LEVELS = ("middle", "high", "all")
NUM_CHOICES = 4
LABELS = ("A", "B", "C", "D")
_ALL_FILE = "all.txt"
_LAYOUT = "RACE_ROOT/{train,dev,test}/{middle,high}/*.txt (one JSON article per file) or all.txt"


class RaceDataError(ValueError):
    """A RACE input that cannot be read; the message names the file and what to fix."""


@dataclasses.dataclass(frozen=True)
class RaceExample:
    """One question with its 4 candidates.

    Attributes:
      example_id: ``<article id>-<question index>``.
      context: the normalised article.
      endings: the 4 normalised question+option texts, in option order A-D.
      label: index of the right option, 0-3.
      article_id: the article's ``id`` (the original's ``example_id``, e.g. ``high12.txt``).
      question_index: position of the question in its article.
      level: ``middle`` or ``high`` (the folder it was read from).
    """
    example_id: str
    context: str
    endings: tuple[str, ...]
    label: int
    article_id: str
    question_index: int
    level: str


def _file_order(name: str) -> tuple[int, int, str]:
    """Sort key: numeric stems by value first (``2.txt`` < ``10.txt``), other names after, by name."""
    stem = os.path.splitext(name)[0]
    return (0, int(stem), name) if stem.isdigit() else (1, 0, name)


def race_root(data_dir: str) -> str:
    """The folder holding ``{train,dev,test}/``: ``data_dir/RACE`` when it exists (the original
    ``--data_dir`` is the folder above ``RACE/``), else ``data_dir`` itself."""
    nested = os.path.join(data_dir, "RACE")
    return nested if tf.io.gfile.isdir(nested) else data_dir


def _level_dir(data_dir: str, split: str, level: str) -> str:
    path = os.path.join(data_dir, split, level)
    if tf.io.gfile.isdir(path):
        return path
    hint = ""
    if tf.io.gfile.isdir(os.path.join(data_dir, "RACE", split, level)):
        hint = f" (found it under {os.path.join(data_dir, 'RACE')!r}: pass that as --data_dir)"
    raise FileNotFoundError(f"RACE folder not found: {path!r}{hint}. Expected the layout {_LAYOUT}.")


def level_files(data_dir: str, split: str, level: str) -> list[str]:
    """The article files of one level (``middle`` or ``high``) of a split, in reading order: its
    ``all.txt`` alone when present, else every ``*.txt`` in numeric file-name order.

    Raises:
      FileNotFoundError: the folder is missing or holds no ``*.txt`` file (the message names it).
    """
    directory = _level_dir(data_dir, split, level)
    names = tf.io.gfile.listdir(directory)
    if _ALL_FILE in names:
        return [os.path.join(directory, _ALL_FILE)]
    files = sorted((n for n in names if n.endswith(".txt")), key=_file_order)
    if not files:
        raise FileNotFoundError(f"No *.txt article in {directory!r}. Expected the layout {_LAYOUT}.")
    return [os.path.join(directory, name) for name in files]


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RaceDataError(f"{source}: invalid UTF-8 at byte {e.start} ({data[e.start:e.start + 1]!r}); "
                            "RACE articles are UTF-8 JSON: re-encode the file as UTF-8.") from None


def _read_level(data_dir: str, split: str, level: str) -> Iterator[tuple[str, str]]:
    """Yields ``(source, json_text)`` for every article of one level, in reading order.

    ``source`` names the file (and line, for ``all.txt``) for error messages.
    """
    for path in level_files(data_dir, split, level):
        with tf.io.gfile.GFile(path, "rb") as f:
            if os.path.basename(path) != _ALL_FILE:
                yield path, _decode(f.read(), path)
                continue
            for line_number, line in enumerate(f, start=1):
                source = f"{path}:{line_number}"
                text = _decode(line, source)
                if text.strip():
                    yield source, text


def _field(article: dict, key: str, source: str, kind: type | None = None) -> Any:
    if key not in article:
        raise RaceDataError(f"{source}: article has no {key!r} key; every RACE article needs id, "
                            "article, questions, options and answers.")
    value = article[key]
    if kind is not None and not isinstance(value, kind):
        raise RaceDataError(f"{source}: {key!r} must be a {kind.__name__}, got {type(value).__name__}.")
    return value


def _article_examples(source: str, text: str, process_text: Any, level: str) -> list[RaceExample]:
    """Parses one JSON article of `level` into its examples (see the module docstring)."""
    try:
        article = json.loads(text)
    except json.JSONDecodeError as e:
        raise RaceDataError(f"{source}: not valid JSON ({e}); expected one RACE article.") from e
    if not isinstance(article, dict):
        raise RaceDataError(f"{source}: expected a JSON object (one RACE article), got "
                            f"{type(article).__name__}.")
    article_id = str(_field(article, "id", source))
    context = process_text(_field(article, "article", source, str))
    questions = _field(article, "questions", source, list)
    options = _field(article, "options", source, list)
    answers = _field(article, "answers", source, list)
    if not len(questions) == len(options) == len(answers):
        raise RaceDataError(f"{source}: 'questions', 'options' and 'answers' must have one entry per "
                            f"question; got {len(questions)}, {len(options)} and {len(answers)}.")
    examples = []
    for i, (question_text, choices, answer) in enumerate(zip(questions, options, answers)):
        if not isinstance(choices, list):
            raise RaceDataError(f"{source}: 'options'[{i}] is a {type(choices).__name__}; RACE needs a "
                                f"list of exactly {NUM_CHOICES} options.")
        if len(choices) != NUM_CHOICES:
            raise RaceDataError(f"{source}: 'options'[{i}] has {len(choices)} options; RACE needs exactly "
                                f"{NUM_CHOICES}.")
        if answer not in LABELS:
            raise RaceDataError(f"{source}: 'answers'[{i}] is {answer!r}; expected one of "
                                f"{', '.join(LABELS)}.")
        texts = [question_text, *choices]
        if not all(isinstance(t, str) for t in texts):
            raise RaceDataError(f"{source}: question {i} and its options must be strings.")
        question = process_text(question_text)
        endings = []
        for choice in choices:
            option = process_text(choice)
            endings.append(question.replace("_", option) if "_" in question
                           else " ".join([question, option]))
        examples.append(RaceExample(example_id=f"{article_id}-{i}", context=context,
                                    endings=tuple(endings), label=ord(answer) - ord("A"),
                                    article_id=article_id, question_index=i, level=level))
    return examples


def read_race_examples(data_dir: str, split: str, level: str = "all", do_lower_case: bool = True,
                       use_spm: bool = True, **text_options: bool) -> list[RaceExample]:
    """Reads every question of a RACE split.

    Args:
      data_dir: RACE_ROOT, holding ``{train,dev,test}/{middle,high}/``.
      split: train, dev or test.
      level: middle, high or all (middle then high).
      do_lower_case: lower-case the texts (SentencePiece mode only, as the original).
      use_spm: normalise with ``preprocess_text`` (SentencePiece); else only decode to str.
      text_options: further ``preprocess_text`` options of the tokenizer (`tokenization.text_options`).

    Returns:
      The examples, article by article in file order, questions in article order.

    Raises:
      FileNotFoundError: a level folder or its articles are missing.
      RaceDataError: an article is malformed or not UTF-8 (the message names the file and key).
    """
    if split not in SPLITS:
        raise ValueError(f"RACE split must be one of {', '.join(SPLITS)}; got {split!r}.")
    if level not in LEVELS:
        raise ValueError(f"RACE level must be one of {', '.join(LEVELS)}; got {level!r}.")
    if use_spm:
        process_text = functools.partial(tokenization.preprocess_text, lower=do_lower_case, **text_options)
    else:
        process_text = tokenization.convert_to_unicode
    levels = ("middle", "high") if level == "all" else (level,)
    examples: list[RaceExample] = []
    for name in levels:
        for source, text in _read_level(data_dir, split, name):
            examples.extend(_article_examples(source, text, process_text, name))
    return examples


def convert_single_example(example: RaceExample, tokenizer: Any, max_seq_length: int,
                           max_qa_length: int, context_tokens: Sequence[str] | None = None
                           ) -> classifier_features.InputFeatures:
    """Encodes one example's 4 choices as the original ``convert_single_example``.

    Args:
      example: the example.
      tokenizer: an object with ``tokenize`` and ``convert_tokens_to_ids`` (``FullTokenizer``).
      max_seq_length: S, the padded length of one choice.
      max_qa_length: ending pieces kept, counted from the END of the question+option text.
      context_tokens: ``tokenizer.tokenize(example.context)`` when already known (articles have
        several questions); computed when None.

    Returns:
      `InputFeatures` whose lists have length 4 * S, choice after choice.
    """
    if context_tokens is None:
        context_tokens = tokenizer.tokenize(example.context)
    input_ids: list[int] = []
    input_mask: list[int] = []
    segment_ids: list[int] = []
    for ending in example.endings:
        ending_tokens = tokenizer.tokenize(ending)[-max_qa_length:]
        context = list(context_tokens[:max_seq_length - 3 - len(ending_tokens)])
        tokens = ["[CLS]", *context, "[SEP]", *ending_tokens, "[SEP]"]
        padding = [0] * (max_seq_length - len(tokens))
        input_ids += tokenizer.convert_tokens_to_ids(tokens) + padding
        input_mask += [1] * len(tokens) + padding
        segment_ids += [0] * (len(context) + 2) + [1] * (len(ending_tokens) + 1) + padding
    return classifier_features.InputFeatures(input_ids=input_ids, input_mask=input_mask, segment_ids=segment_ids,
                        label_id=example.label)


def _group_by_article(examples: Sequence[RaceExample]) -> list[list[RaceExample]]:
    """Splits ``examples`` into runs of consecutive examples sharing one context."""
    groups: list[list[RaceExample]] = []
    for example in examples:
        if groups and groups[-1][0].context == example.context:
            groups[-1].append(example)
        else:
            groups.append([example])
    return groups


def _encode_article(group: list[RaceExample], tokenizer: Any, max_seq_length: int,
                    max_qa_length: int) -> list[bytes]:
    """Serialized features of one article's examples; the article is tokenized once."""
    context_tokens = tokenizer.tokenize(group[0].context)
    return [classifier_features.serialize_features(
        convert_single_example(e, tokenizer, max_seq_length, max_qa_length, context_tokens), is_regression=False)
        for e in group]


def examples_path(feature_file: str) -> str:
    """Where the side file of a feature file goes: ``F.tf_record`` -> ``F.examples.json`` (the last
    extension is replaced)."""
    return os.path.splitext(feature_file)[0] + ".examples.json"


@dataclasses.dataclass(frozen=True)
class RaceFeatureInfo:
    """The side file of a RACE feature file: one entry per record, in record order.

    Attributes:
      article_ids: each record's article ``id``.
      question_indices: each record's question position in its article.
      levels: each record's level, ``middle`` or ``high``.
      labels: each record's label, 0-3.
    """
    article_ids: list[str]
    question_indices: list[int]
    levels: list[str]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.labels)


_INFO_COLUMNS = tuple(field.name for field in dataclasses.fields(RaceFeatureInfo))


def _write_feature_info(path: str, examples: Sequence[RaceExample]) -> None:
    info = RaceFeatureInfo(article_ids=[e.article_id for e in examples],
                           question_indices=[e.question_index for e in examples],
                           levels=[e.level for e in examples], labels=[e.label for e in examples])
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(dataclasses.asdict(info), ensure_ascii=False))


def read_feature_info(path: str) -> RaceFeatureInfo:
    """Reads a side file written by `write_race_features` (``examples_path(F)``).

    Raises:
      RaceDataError: the file is not such a side file (the message names it).
    """
    with tf.io.gfile.GFile(path, "rb") as f:
        text = _decode(f.read(), path)
    try:
        content = json.loads(text)
        columns = [list(content[name]) for name in _INFO_COLUMNS]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise RaceDataError(f"{path}: not a RACE feature side file ({type(e).__name__}: {e}); delete it "
                            "together with its feature file to rebuild both.") from None
    if len({len(c) for c in columns}) != 1:
        raise RaceDataError(f"{path}: its columns have different lengths; delete it together with its "
                            "feature file to rebuild both.")
    return RaceFeatureInfo(*columns)


def feature_fingerprint(data_dir: str, split: str, level: str, tokenizer: Any, max_seq_length: int,
                        max_qa_length: int, do_lower_case: bool) -> dict[str, Any]:
    """What a RACE feature file is built from (`albert_tf.data.cache.fingerprint`): the tokenizer's file,
    every article file read, and the settings.

    Raises:
      FileNotFoundError: a level folder, its articles or the tokenizer's file is missing.
    """
    levels = ("middle", "high") if level == "all" else (level,)
    sources = [path for name in levels for path in level_files(data_dir, split, name)]
    return cache.fingerprint(tokenizer_file=cache.tokenizer_file(tokenizer), sources=sources, kind="race",
                             split=split, level=level, max_seq_length=max_seq_length,
                             max_qa_length=max_qa_length, do_lower_case=do_lower_case,
                             use_spm=getattr(tokenizer, "sp_model", None) is not None,
                             **tokenization.text_options(tokenizer))


def write_race_features(data_dir: str, split: str, level: str, tokenizer: Any, max_seq_length: int,
                        max_qa_length: int, output_file: str, do_lower_case: bool = True,
                        num_workers: int | None = None, reuse_cache: bool = False) -> int | None:
    """Reads a RACE split (see `read_race_examples`) and writes its features to one TFRecord file,
    with the side file ``examples_path(output_file)`` (see `RaceFeatureInfo`) and the cache fingerprint
    (`feature_fingerprint`, see `albert_tf.data.cache`).

    Args:
      data_dir, split, level, do_lower_case: as `read_race_examples`; SentencePiece mode follows
        ``tokenizer.sp_model``.
      tokenizer: ``albert_tf.tokenization.FullTokenizer`` (built from a file, which is fingerprinted).
      max_seq_length: S, the length of one choice (512 in the original).
      max_qa_length: ending pieces kept (128 in the original); at most ``max_seq_length - 3``.
      output_file: the TFRecord file; its folder is created.
      num_workers: tokenization processes (forked); None: all CPUs for >= 5000 articles, else 1.
        The file does not depend on it.
      reuse_cache: keep an existing ``output_file`` whose fingerprint matches (a stale one is rebuilt;
        one without a fingerprint is refused with `cache.StaleCacheError`); False always writes.

    Returns:
      The number of examples (questions) written; None when a cached file was reused.
    """
    if max_qa_length < 1 or max_seq_length - 3 < max_qa_length:
        raise ValueError(f"Need 1 <= max_qa_length <= max_seq_length - 3 ([CLS], 2 x [SEP]); got "
                         f"max_qa_length={max_qa_length}, max_seq_length={max_seq_length}.")
    expected = feature_fingerprint(data_dir, split, level, tokenizer, max_seq_length, max_qa_length,
                                   do_lower_case)
    if os.path.dirname(output_file):
        tf.io.gfile.makedirs(os.path.dirname(output_file))
    counts: list[int] = []

    def build() -> None:
        examples = read_race_examples(data_dir, split, level, do_lower_case,
                                      use_spm=getattr(tokenizer, "sp_model", None) is not None,
                                      **tokenization.text_options(tokenizer))
        logging.info("Writing %d RACE %s/%s examples to %s", len(examples), split, level, output_file)
        encode = functools.partial(_encode_article, tokenizer=tokenizer, max_seq_length=max_seq_length,
                                   max_qa_length=max_qa_length)
        with records.RoundRobinWriter([output_file]) as writer:
            for serialized in parallel.map_items(encode, _group_by_article(examples), num_workers):
                for record in serialized:
                    writer.write(record)
        _write_feature_info(examples_path(output_file), examples)
        counts.append(writer.count)

    if reuse_cache:
        cache.ensure_features(output_file, expected, build)
    else:
        cache.build_with_fingerprint(output_file, expected, build)
    return counts[0] if counts else None


def race_dataset(path: str | Sequence[str], seq_length: int, batch_size: int, is_training: bool,
                 input_context: tf.distribute.InputContext | None = None,
                 drop_remainder: bool | None = None, shuffle_buffer_size: int = 100,
                 seed: int | None = None) -> tf.data.Dataset:
    """Reads RACE TFRecords as batches of model inputs.

    Args:
      path: a TFRecord file (or list / comma-separated globs) written by `write_race_features`.
      seq_length: S, the ``max_seq_length`` of one choice the file was written with.
      batch_size, is_training, input_context, drop_remainder, shuffle_buffer_size, seed: as
        ``classifier_features.classifier_dataset`` (training shards, repeats and shuffles).

    Returns:
      A dataset of dicts: ``input_word_ids``, ``input_mask``, ``input_type_ids`` int32 [B, 4, S];
      ``label_ids`` and ``is_real_example`` int32 [B].
    """
    dataset = classifier_features.classifier_dataset(
        path, NUM_CHOICES * seq_length, batch_size, is_training, is_regression=False,
        input_context=input_context, drop_remainder=drop_remainder,
        shuffle_buffer_size=shuffle_buffer_size, seed=seed)

    def split_choices(inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        choices = {k: tf.reshape(inputs[k], [-1, NUM_CHOICES, seq_length])
                   for k in ("input_word_ids", "input_mask", "input_type_ids")}
        return {**inputs, **choices}

    return dataset.map(split_choices, num_parallel_calls=tf.data.AUTOTUNE)
