"""The feature writers' progress lines (`albert_tf.data.parallel.progress`), driven by a fake clock."""
from albert_tf.data import parallel


class FakeClock:
    """Returns the given times in turn (seconds)."""

    def __init__(self, times):
        self.times = list(times)

    def __call__(self):
        return self.times.pop(0)


def test_format_duration():
    assert parallel.format_duration(0) == "0s"
    assert parallel.format_duration(59.4) == "59s"
    assert parallel.format_duration(65) == "1m05s"
    assert parallel.format_duration(3600 + 5 * 60 + 59) == "1h05m"


def test_progress_lines_are_rate_limited_with_counts_rate_and_eta():
    lines = []
    # Start at 100 s; item i (1..10) is done at 100 + 2i s; the end is read at 121 s.
    clock = FakeClock([100] + [100 + 2 * i for i in range(1, 11)] + [121])
    items = parallel.progress(iter("abcdefghij"), 10, "examples", label="F: ", interval_s=10.0,
                              log=lines.append, clock=clock)
    assert "".join(items) == "abcdefghij"  # passed through unchanged
    # 10 s after the start (item 5): 5 in 10 s = 0.5/s, 5 left -> 10 s. At item 10 (120 s) another 10 s
    # have passed, but the last item is reported by the end line only: 10 in 21 s = 0.476/s.
    assert lines == ["F: 5/10 examples (50%), 0.5 examples/s, ETA 10s",
                     "F: 10/10 examples in 21s (0.5 examples/s)"]


def test_progress_every_interval_and_early_stop():
    lines = []
    clock = FakeClock([0, 10, 20, 30, 40])
    items = parallel.progress(range(10), 10, "questions", log=lines.append, clock=clock)
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    next(items)  # the consumer is done with item 2: 3 of 10 at 30 s
    items.close()  # stops early: no end line
    # 1 in 10 s -> 9 left at 0.1/s = 90 s; 2 in 20 s -> 80 s; 3 in 30 s -> 70 s.
    assert lines == ["1/10 questions (10%), 0.1 questions/s, ETA 1m30s",
                     "2/10 questions (20%), 0.1 questions/s, ETA 1m20s",
                     "3/10 questions (30%), 0.1 questions/s, ETA 1m10s"]


def test_progress_of_nothing_logs_one_end_line():
    lines = []
    assert list(parallel.progress([], 0, "examples", log=lines.append, clock=FakeClock([5, 5]))) == []
    assert lines == ["0/0 examples in 0s (- examples/s)"]
