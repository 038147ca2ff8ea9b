"""Bounded, seeded fuzz of the tokenizers, `preprocess_text` and the text readers (issue 13, item 11).

Random bytes, invalid UTF-8, huge lines, control characters, empty fields and malformed JSON must give a
clean error (a `ValueError`: every error class of this project) or a valid output, never a crash or a
hang. benchmarks/fuzz_long.py runs the same targets on >= 100,000 inputs.
"""

import signal

import pytest
from absl import logging

import fuzz_inputs
from albert_tf import tokenization

# About 2,700 inputs; well under 20 s on one core.
COUNTS = {"preprocess_text": 600, "spm_tokenizer": 500, "wordpiece_tokenizer": 500, "in_graph_tokenizer": 16,
          "glue_reader": 250, "squad_reader": 250, "race_reader": 250, "pretraining_reader": 120}


def test_fuzz_gives_clean_errors_or_valid_outputs(tmp_path):
    verbosity = logging.get_verbosity()
    logging.set_verbosity(logging.ERROR)  # the readers' warnings about odd lines are expected here
    try:
        result = fuzz_inputs.run_all(str(tmp_path), seed=13, counts=COUNTS, limit_s=30.0)
    finally:
        logging.set_verbosity(verbosity)
    assert result["failures"] == []
    stats = result["by_target"]
    assert sum(s["inputs"] for s in stats.values()) >= 2500
    for name, s in stats.items():
        assert s["ok"] + s["clean_error"] == COUNTS[name], name
        # Both outcomes occur for every reader: the generators make valid and broken inputs.
        if name.endswith("_reader"):
            assert s["ok"] > 0 and s["clean_error"] > 0, name


def test_harness_reports_crashes_and_hangs(tmp_path):
    class Broken(fuzz_inputs.Targets):
        def __init__(self):
            pass

        def crashes(self, _):
            return {}["missing"]

        def hangs(self, _):
            while True:
                pass

    assert fuzz_inputs.run_target(Broken(), "crashes", (1,))[0] == "crash"
    assert fuzz_inputs.run_target(Broken(), "hangs", (1,), limit_s=0.2)[0] == "hang"


def test_time_limit_leaves_the_wall_clock_timer_of_pytest_timeout_alone():
    """pytest-timeout's deadline lives on ITIMER_REAL / SIGALRM: a fuzz block must not cancel or replace it."""
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *_: fired.append(True))
    signal.setitimer(signal.ITIMER_REAL, 300)
    try:
        with fuzz_inputs.time_limit(5):
            pass
        with pytest.raises(fuzz_inputs.Hang):
            with fuzz_inputs.time_limit(0.1):
                while True:
                    pass
        remaining = signal.getitimer(signal.ITIMER_REAL)[0]
        assert 250 < remaining <= 300 and signal.getsignal(signal.SIGALRM) is not signal.SIG_DFL
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert not fired


def test_spm_tokenizer_rejects_lone_surrogates_with_a_value_error():
    tokenizer = tokenization.FullTokenizer(spm_model_file=fuzz_inputs.SPM_MODEL)
    with pytest.raises(ValueError, match="lone surrogate"):
        tokenizer.tokenize("a\ud800b")
