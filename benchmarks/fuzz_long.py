"""The long fuzz run of issue 13: >= 100,000 seeded inputs through the tokenizers, `preprocess_text` and
the GLUE / SQuAD / RACE / pretraining text readers (targets and generators: tests/fuzz_inputs.py).

    python benchmarks/fuzz_long.py [--seed=1] [--scale=1.0] [--spm_surrogates]

Prints one line per target (inputs, valid outputs, clean errors, crashes, hangs, seconds) and every
failure; exits 1 if there was any. --spm_surrogates also feeds lone surrogates to the SentencePiece
tokenizer (a known defect: see tests/test_fuzz.py).
"""
import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

from absl import logging  # noqa: E402

import fuzz_inputs  # noqa: E402

COUNTS = {"preprocess_text": 25_000, "spm_tokenizer": 20_000, "wordpiece_tokenizer": 15_000,
          "in_graph_tokenizer": 1_000, "glue_reader": 8_000, "squad_reader": 8_000, "race_reader": 8_000,
          "pretraining_reader": 3_000}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=float, default=1.0, help="Multiplies every target's count.")
    parser.add_argument("--spm_surrogates", action="store_true")
    args = parser.parse_args()
    logging.set_verbosity(logging.ERROR)
    counts = {name: max(1, int(n * args.scale)) for name, n in COUNTS.items()}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as work_dir:
        result = fuzz_inputs.run_all(work_dir, args.seed, counts, spm_surrogates=args.spm_surrogates)
    total = sum(s["inputs"] for s in result["by_target"].values())
    print(f"{'target':<20} {'inputs':>8} {'valid':>7} {'clean':>7} {'crash':>6} {'hang':>5} {'invalid':>7} {'s':>7}")
    for name, s in result["by_target"].items():
        print(f"{name:<20} {int(s['inputs']):>8} {int(s['ok']):>7} {int(s['clean_error']):>7} "
              f"{int(s.get('crash', 0)):>6} {int(s.get('hang', 0)):>5} {int(s.get('invalid', 0)):>7} "
              f"{s['seconds']:>7.1f}")
    print(f"{total} inputs (seed {args.seed}) in {time.perf_counter() - start:.0f} s; "
          f"{len(result['failures'])} failures")
    for failure in result["failures"][:50]:
        print("  " + failure)
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
