"""Seeded fuzz inputs and targets shared by tests/test_fuzz.py (a few thousand inputs, in the suite) and
benchmarks/fuzz_long.py (>= 100,000 inputs, reported in the README).

Every target takes one generated input and returns normally (after checking its output is valid) or
raises a *clean* error: a `ValueError` (every error class of this project derives from it, and so does
`UnicodeError`) or, for the in-graph tokenizer, `tf.errors.InvalidArgumentError`. Anything else is a
crash; an input that runs longer than the time limit is a hang (`run_target` reports both).
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import string
import time
from typing import Any, Callable, Iterator

import tensorflow as tf

from albert_tf import tokenization
from albert_tf.tasks.glue import data as glue
from albert_tf.tasks.pretraining import data as pretraining
from albert_tf.tasks.race import data as race
from albert_tf.tasks.squad import data as squad

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPM_MODEL = os.path.join(ROOT, "tests", "fixtures", "tokenization", "tiny-clean.model")
CLEAN_ERRORS = (ValueError, tf.errors.InvalidArgumentError)

_ODD_CHARS = ("\x00", "\x01", "\x07", "\x1b", "\x7f", "\r", "\n", "\t", "\x0b", "\x0c", "\x85", "\u00a0",
              "\u200b", "\u200d", "\u2028", "\u2029", "\ufeff", "\ufffd", "\u0301", "\u0308", "\U0001f600",
              "\U000e0001", "\ud800", "\udfff", "\uffff", "\U0010ffff", "\u0130", "\u00df", "\ufb01", "_", ",",
              "9,", "[MASK]", "[CLS]", "\u2581", " ", "  ")


class Hang(Exception):
    """An input ran past the time limit."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raises `Hang` in the block after ``seconds`` of the process's CPU time (main thread only).

    It uses the profiling timer (ITIMER_PROF / SIGPROF), not the wall-clock one: pytest-timeout keeps its
    own deadline on ITIMER_REAL / SIGALRM, which a block here must neither replace nor cancel. A hang in
    a tokenizer or reader is a busy loop, so CPU time finds it.
    """
    def on_timer(signum, frame):
        raise Hang(f"no result after {seconds} CPU-seconds")

    previous = signal.signal(signal.SIGPROF, on_timer)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


# ---------------------------------------------------------------------------------------- generators
def random_text(rng: random.Random, max_len: int = 60) -> str:
    """A string mixing ASCII, odd characters (controls, separators, lone surrogates, combining marks)
    and random code points from every plane; sometimes empty, whitespace-only or huge."""
    kind = rng.random()
    if kind < 0.05:
        return ""
    if kind < 0.1:
        return "".join(rng.choice(" \t\r\n\u3000\u00a0") for _ in range(rng.randint(1, 8)))
    if kind < 0.12:
        return rng.choice(["a", "word ", "\u00e9t\u00e9 ", "\U0001f600"]) * rng.randint(5_000, 60_000)
    parts = []
    for _ in range(rng.randint(1, max_len)):
        r = rng.random()
        if r < 0.5:
            parts.append(rng.choice(string.ascii_letters + string.digits + string.punctuation + "  "))
        elif r < 0.8:
            parts.append(rng.choice(_ODD_CHARS))
        else:
            parts.append(chr(rng.randint(0, 0x10FFFF)))
    return "".join(parts)


def random_bytes(rng: random.Random, max_len: int = 120) -> bytes:
    """Random bytes, UTF-8 text with invalid sequences spliced in, or valid UTF-8 (incl. lone surrogates
    encoded with surrogatepass, which is not valid UTF-8)."""
    kind = rng.random()
    if kind < 0.3:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, max_len)))
    data = random_text(rng).encode("utf-8", "surrogatepass")
    if kind < 0.6 and data:
        for _ in range(rng.randint(1, 3)):
            cut = rng.randrange(len(data) + 1)
            bad = rng.choice([b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\x80", b"\x00"])
            data = data[:cut] + bad + data[cut:]
    return data


def text_or_bytes(rng: random.Random) -> str | bytes:
    return random_bytes(rng) if rng.random() < 0.4 else random_text(rng)


def without_surrogates(text: str | bytes) -> str | bytes:
    """``text`` with lone surrogates (not valid Unicode) replaced by U+FFFD; bytes are returned as they are."""
    if isinstance(text, bytes):
        return text
    return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)


def _field_text(rng: random.Random) -> str:
    """A TSV field: random text without tabs and line ends most of the time."""
    text = random_text(rng, 20)
    return text if rng.random() < 0.2 else text.translate({9: " ", 10: " ", 13: " ", 0x85: " ", 0x2028: " ",
                                                            0x2029: " ", 0x0b: " ", 0x0c: " ", 0x1c: " ",
                                                            0x1d: " ", 0x1e: " "})


def glue_file(rng: random.Random) -> bytes:
    """An RTE train.tsv: header + rows of 3-5 columns (mostly 4) with random fields and labels."""
    if rng.random() < 0.1:
        return random_bytes(rng, 400)
    rows = [["index", "sentence1", "sentence2", "label"]]
    for i in range(rng.randint(0, 6)):
        width = rng.choice([4, 4, 4, 4, 3, 5])
        label = rng.choice(["entailment", "not_entailment", "entailment", _field_text(rng)])
        rows.append([str(i)] + [_field_text(rng) for _ in range(width - 2)] + [label])
    return "".join("\t".join(row) + "\n" for row in rows).encode("utf-8", "surrogatepass")


def _mutate(rng: random.Random, value: Any) -> Any:
    """Replaces a JSON value by one of another type now and then."""
    if rng.random() < 0.06:
        return rng.choice([None, 3, -1.5, "", [], {}, random_text(rng), [random_text(rng)], True])
    return value


def squad_file(rng: random.Random) -> bytes:
    """A SQuAD JSON file with random texts, offsets and the occasional wrong type or missing key."""
    if rng.random() < 0.1:
        return random_bytes(rng, 300)
    qas = []
    context = random_text(rng, 80)
    for q in range(rng.randint(0, 3)):
        answer_start = rng.randint(-2, len(context) + 2)
        answer = context[max(answer_start, 0):max(answer_start, 0) + rng.randint(0, 6)]
        qa = {"id": _mutate(rng, f"q{q}"), "question": _mutate(rng, random_text(rng, 20)),
              "answers": _mutate(rng, [{"text": _mutate(rng, answer), "answer_start": _mutate(rng, answer_start)}]
                                 * rng.choice([0, 1, 1, 2])),
              "is_impossible": _mutate(rng, rng.random() < 0.2)}
        if rng.random() < 0.05:
            del qa[rng.choice(list(qa))]
        qas.append(qa)
    document = {"version": "1.1", "data": _mutate(rng, [{"title": "t", "paragraphs": _mutate(rng, [
        {"context": _mutate(rng, context), "qas": _mutate(rng, qas)}])}])}
    return json.dumps(document, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")


def race_file(rng: random.Random) -> bytes:
    """One RACE article (JSON) with random texts and the occasional wrong type or count."""
    if rng.random() < 0.1:
        return random_bytes(rng, 300)
    n = rng.randint(0, 3)
    article = {"id": _mutate(rng, "middle1.txt"), "article": _mutate(rng, random_text(rng, 80)),
               "questions": _mutate(rng, [random_text(rng, 15) + rng.choice(["", " _ ."]) for _ in range(n)]),
               "options": _mutate(rng, [[_mutate(rng, random_text(rng, 8)) for _ in range(rng.choice([4, 4, 3]))]
                                        for _ in range(n)]),
               "answers": _mutate(rng, [rng.choice("ABCDE") for _ in range(n)])}
    return json.dumps(article, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")


def corpus_file(rng: random.Random) -> bytes:
    """A pretraining text file: random lines and blank lines, random bytes, or one huge line."""
    kind = rng.random()
    if kind < 0.15:
        return random_bytes(rng, 600)
    if kind < 0.2:
        return ("x" * rng.randint(50_000, 200_000)).encode()
    lines = [random_text(rng, 30) if rng.random() < 0.8 else "" for _ in range(rng.randint(0, 8))]
    return "\n".join(lines).encode("utf-8", "surrogatepass")


# ---------------------------------------------------------------------------------------- targets
class Targets:
    """The code under fuzz, built once (tokenizers are expensive to load).

    Args:
      work_dir: a scratch folder for the reader targets' files.
    """

    def __init__(self, work_dir: str):
        self.work_dir = work_dir
        self.spm = tokenization.FullTokenizer(spm_model_file=SPM_MODEL, do_lower_case=True)
        vocab_file = os.path.join(work_dir, "vocab.txt")
        with open(vocab_file, "w", encoding="utf-8") as f:
            f.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "##s", "a", "##e", "cat",
                               ",", ".", "\u00e9", "##\u00e9", "\u4e00"]) + "\n")
        self.wordpiece = tokenization.FullTokenizer(vocab_file=vocab_file, do_lower_case=True)
        self._in_graph: tokenization.InGraphTokenizer | None = None
        self.vocab_size = len(self.spm.vocab)

    @property
    def in_graph(self) -> tokenization.InGraphTokenizer:
        if self._in_graph is None:
            self._in_graph = tokenization.InGraphTokenizer(SPM_MODEL, do_lower_case=True)
        return self._in_graph

    def _write(self, relative: str, data: bytes) -> str:
        path = os.path.join(self.work_dir, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return path

    # Each target: (one input) -> None; raises a clean error or AssertionError (invalid output).
    def preprocess_text(self, text: str | bytes) -> None:
        out = tokenization.preprocess_text(text, lower=True)
        # Any str is valid: NFKD may turn a character into a space and a dropped mark, as in the original.
        assert isinstance(out, str)

    def spm_tokenizer(self, text: str | bytes) -> None:
        pieces = self.spm.tokenize(text)
        ids = self.spm.convert_tokens_to_ids(pieces)
        assert all(0 <= i < self.vocab_size for i in ids)

    def wordpiece_tokenizer(self, text: str | bytes) -> None:
        pieces = self.wordpiece.tokenize(text)
        assert all(p in self.wordpiece.vocab for p in pieces)

    def in_graph_tokenizer(self, batch: list[bytes]) -> None:
        ids = self.in_graph(tf.constant(batch, tf.string))
        assert ids.shape[0] == len(batch)
        flat = ids.flat_values.numpy()
        assert ((flat >= 0) & (flat < self.vocab_size)).all()

    def glue_reader(self, data: bytes) -> None:
        self._write(os.path.join("glue", "RTE", "train.tsv"), data)
        examples = glue.get_processor("rte").get_examples(os.path.join(self.work_dir, "glue"), "train")
        assert all(isinstance(e.text_a, str) and e.label in ("entailment", "not_entailment") for e in examples)

    def squad_reader(self, data: bytes, is_training: bool) -> None:
        examples = squad.read_squad_examples(self._write("squad.json", data), is_training)
        assert all(isinstance(e.paragraph_text, str) and isinstance(e.qas_id, str) for e in examples)

    def race_reader(self, data: bytes) -> None:
        self._write(os.path.join("race", "dev", "middle", "1.txt"), data)
        examples = race.read_race_examples(os.path.join(self.work_dir, "race"), "dev", "middle")
        assert all(len(e.endings) == race.NUM_CHOICES and 0 <= e.label < race.NUM_CHOICES for e in examples)

    def pretraining_reader(self, data: bytes) -> None:
        corpus = pretraining.read_documents([self._write("corpus.txt", data)], self.spm, True, num_workers=1)
        assert all(0 <= i < self.vocab_size for i in corpus.ids)


def cases(seed: int, counts: dict[str, int], spm_surrogates: bool = True) -> Iterator[tuple[str, tuple]]:
    """Yields (target name, arguments) for `counts[name]` inputs of each target, from one seeded stream.

    ``spm_surrogates``: also give the SentencePiece tokenizer str inputs with lone surrogates (which
    `encode_pieces` refuses with a ValueError).
    """
    rng = random.Random(seed)
    spm_text = text_or_bytes if spm_surrogates else (lambda r: without_surrogates(text_or_bytes(r)))
    makers: dict[str, Callable[[], tuple]] = {
        "preprocess_text": lambda: (text_or_bytes(rng),),
        "spm_tokenizer": lambda: (spm_text(rng),),
        "wordpiece_tokenizer": lambda: (text_or_bytes(rng),),
        "in_graph_tokenizer": lambda: ([random_bytes(rng) if rng.random() < 0.5
                                        else random_text(rng).encode("utf-8", "surrogatepass")
                                        for _ in range(16)],),
        "glue_reader": lambda: (glue_file(rng),),
        "squad_reader": lambda: (squad_file(rng), rng.random() < 0.5),
        "race_reader": lambda: (race_file(rng),),
        "pretraining_reader": lambda: (corpus_file(rng),),
    }
    for name, count in counts.items():
        for _ in range(count):
            yield name, makers[name]()


def inputs_per_case(name: str) -> int:
    """How many inputs one case holds (the in-graph tokenizer takes batches of 16)."""
    return 16 if name == "in_graph_tokenizer" else 1


def run_target(targets: Targets, name: str, args: tuple, limit_s: float = 10.0) -> tuple[str, str | None]:
    """Runs one case. Returns ("ok" | "clean_error", None) or ("crash" | "hang" | "invalid", detail)."""
    try:
        with time_limit(limit_s):
            getattr(targets, name)(*args)
    except Hang as e:
        return "hang", f"{name}: {e}: {args!r:.200}"
    except AssertionError as e:
        return "invalid", f"{name}: invalid output {e}: {args!r:.200}"
    except CLEAN_ERRORS:
        return "clean_error", None
    except Exception as e:  # noqa: BLE001 (any other exception is the crash this harness looks for)
        return "crash", f"{name}: {type(e).__name__}: {e}: {args!r:.200}"
    return "ok", None


def run_all(work_dir: str, seed: int, counts: dict[str, int], limit_s: float = 10.0,
            spm_surrogates: bool = True) -> dict[str, Any]:
    """Runs every case; returns {"by_target": {name: {outcome: n, "inputs": n, "seconds": s}}, "failures": [...]}."""
    targets = Targets(work_dir)
    by_target: dict[str, dict[str, float]] = {}
    failures: list[str] = []
    for name, args in cases(seed, counts, spm_surrogates):
        stats = by_target.setdefault(name, {"inputs": 0, "ok": 0, "clean_error": 0, "seconds": 0.0})
        start = time.perf_counter()
        outcome, detail = run_target(targets, name, args, limit_s)
        stats["seconds"] += time.perf_counter() - start
        stats["inputs"] += inputs_per_case(name)
        stats[outcome] = stats.get(outcome, 0) + 1
        if detail:
            failures.append(detail)
    return {"by_target": by_target, "failures": failures}
