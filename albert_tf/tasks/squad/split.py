"""Splits one SQuAD file by article into a training file and a dev file (for a quick local run).

The public SQuAD dev set is often the only SQuAD file at hand (``../shared/data/squad`` has
``dev-v1.1.json`` only). This command cuts it into consecutive articles for training and the
following ones for evaluation, so a fine-tuning run can be tried without the training set:

    python -m albert_tf.tasks.squad.split --input_file=../shared/data/squad/dev-v1.1.json \\
      --train_file=train40.json --dev_file=dev8.json --num_train_articles=40 --num_dev_articles=8

The training file keeps each answerable question's first gold answer only (training reads exactly
one answer per question, as the original); unanswerable v2.0 questions keep their empty list. The
dev file keeps every gold answer, for the official evaluation. The ``version`` field is copied.
Existing output files are never overwritten.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from typing import Any, Mapping, Optional, Sequence


class SplitError(ValueError):
    """Bad arguments or an input too small for the split asked for."""


def first_answer_only(article: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `article` whose questions keep at most their first answer."""
    article = copy.deepcopy(dict(article))
    for paragraph in article.get("paragraphs", []):
        for qa in paragraph.get("qas", []):
            qa["answers"] = qa.get("answers", [])[:1]
    return article


def split_articles(articles: Sequence[Mapping[str, Any]], num_train: int,
                   num_dev: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The first `num_train` articles (first answer each) and the `num_dev` that follow (unchanged).

    Raises:
      SplitError: a count below 1, or fewer than `num_train + num_dev` articles.
    """
    if num_train < 1 or num_dev < 1:
        raise SplitError("--num_train_articles and --num_dev_articles must be at least 1.")
    if num_train + num_dev > len(articles):
        raise SplitError(f"the input has {len(articles)} articles, fewer than --num_train_articles + "
                         f"--num_dev_articles = {num_train + num_dev}; ask for fewer.")
    train = [first_answer_only(a) for a in articles[:num_train]]
    dev = [dict(a) for a in articles[num_train:num_train + num_dev]]
    return train, dev


def _count_questions(articles: Sequence[Mapping[str, Any]]) -> int:
    return sum(len(p.get("qas", [])) for a in articles for p in a.get("paragraphs", []))


def _parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m albert_tf.tasks.squad.split",
        description="Split a SQuAD JSON file by article: the first N articles become a training file (first "
                    "gold answer per question), the next M a dev file (all gold answers).")
    parser.add_argument("--input_file", required=True, help="A SQuAD v1.1 / v2.0 JSON file, e.g. dev-v1.1.json.")
    parser.add_argument("--train_file", required=True, help="The training JSON to write.")
    parser.add_argument("--dev_file", required=True, help="The dev JSON to write.")
    parser.add_argument("--num_train_articles", type=int, required=True)
    parser.add_argument("--num_dev_articles", type=int, required=True)
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the command line; returns the exit status (2 for bad input, with one line on stderr)."""
    args = _parse_args(argv)
    from albert_tf.tasks.squad import data as squad  # TensorFlow is imported only here.
    try:
        for path in (args.train_file, args.dev_file):
            if os.path.exists(path):
                raise SplitError(f"{path} exists; remove it or pick another output name (nothing is overwritten).")
        if os.path.abspath(args.train_file) == os.path.abspath(args.dev_file):
            raise SplitError("--train_file and --dev_file must differ.")
        articles = squad.load_squad_json(args.input_file)  # checks the file, with clear errors
        train, dev = split_articles(articles, args.num_train_articles, args.num_dev_articles)
        with open(args.input_file, encoding="utf-8") as f:
            version = json.load(f).get("version")
    except (SplitError, squad.SquadDataError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for path, articles in ((args.train_file, train), (args.dev_file, dev)):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "x", encoding="utf-8") as f:
            json.dump({"version": version, "data": articles}, f, ensure_ascii=False)
        print(f"{path}: {len(articles)} articles, {_count_questions(articles)} questions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
