"""Order-preserving parallel maps over forked worker processes, and the progress lines, shared by every
feature writer.

Forking hands the workers the parent's memory copy-on-write, so large read-only state (a tokenized
corpus, a tokenizer, the examples) is never pickled; only the small tasks and the results are. Where
the `fork` start method does not exist (Windows) everything runs in this process; the output is the
same either way.
"""
from __future__ import annotations

import gc
import multiprocessing
import os
import time
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

from absl import logging

_S = TypeVar("_S")
_R = TypeVar("_R")
_T = TypeVar("_T")

# The state a forked worker inherits from its parent (set by `_init_worker` before any task runs).
_worker_state: Any = None


def _init_worker(state: Any) -> None:
    global _worker_state
    _worker_state = state


def _call_in_worker(fn_and_task: tuple[Callable, Any]) -> Any:
    fn, task = fn_and_task
    return fn(_worker_state, task)


def ordered_map(fn: Callable[[_S, Any], _R], state: _S, tasks: Iterable, num_workers: int) -> Iterator[_R]:
    """Yields `fn(state, task)` for every task, in task order, using `num_workers` forked processes.

    `state` reaches the workers by fork (not pickled), so it may be large; `fn` must be a module-level
    function, tasks and results are pickled. `tasks` may be a generator: the pool's task pipe blocks when
    full, so it is consumed as work proceeds.
    """
    if num_workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        if num_workers > 1:
            logging.warning("Process start method 'fork' is unavailable: running in a single process.")
        for task in tasks:
            yield fn(state, task)
        return
    context = multiprocessing.get_context("fork")
    # Objects that exist now are left out of garbage collections until the map ends: this process's
    # collections (triggered by the many results it unpickles) skip the large state, and the workers'
    # collections do not touch, and so copy, the pages they share with it.
    gc.freeze()
    try:
        with context.Pool(num_workers, initializer=_init_worker, initargs=(state,)) as pool:
            yield from pool.imap(_call_in_worker, ((fn, t) for t in tasks))
    finally:
        gc.unfreeze()


def _apply_to_range(state: tuple[Sequence, Callable], bounds: tuple[int, int]) -> list:
    items, fn = state
    return [fn(items[i]) for i in range(*bounds)]


def map_items(fn: Callable[[Any], _R], items: Sequence, num_workers: int | None = None, *,
              chunk_size: int = 256, min_items_for_pool: int = 5000) -> Iterator[_R]:
    """Yields `fn(item)` for every item, in order, over forked workers in chunks of `chunk_size`.

    `fn` (e.g. a `functools.partial` holding a tokenizer) and `items` reach the workers by fork.
    `num_workers` None uses every CPU for at least `min_items_for_pool` items, else one process.
    """
    if num_workers is None:
        num_workers = (os.cpu_count() or 1) if len(items) >= min_items_for_pool else 1
    chunks = [(start, min(start + chunk_size, len(items))) for start in range(0, len(items), chunk_size)]
    for chunk in ordered_map(_apply_to_range, (items, fn), chunks, min(num_workers, len(chunks))):
        yield from chunk


def format_duration(seconds: float) -> str:
    """``4m18s``-style duration (``1h05m`` from an hour on)."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def progress(items: Iterable[_T], total: int, what: str = "examples", *, label: str = "",
             interval_s: float = 10.0, log: Callable[[str], None] = logging.info,
             clock: Callable[[], float] = time.monotonic) -> Iterator[_T]:
    """Yields ``items`` unchanged, logging how far the consumer got: at most one line every
    ``interval_s`` seconds, ``"<label>n/total <what> (p%), r <what>/s, ETA 1m05s"``, and one at the end,
    ``"<label>n/total <what> in 35s (r <what>/s)"``. An item counts once the consumer asks for the next
    one, so the rate covers producing and consuming it. No line is logged when the consumer stops early.

    Args:
      items: what to pass through.
      total: how many items there are (the ETA assumes the rate so far).
      what: the unit in the lines, e.g. "examples".
      label: prefix of the lines, e.g. "SQuAD features: ".
      interval_s: least seconds between two lines before the end.
      log: receives each line.
      clock: seconds, monotonic (injectable for tests).
    """
    start = last = clock()
    done = 0
    for item in items:
        yield item
        done += 1
        now = clock()
        if now - last >= interval_s and now > start and done < total:
            last = now
            rate = done / (now - start)
            log(f"{label}{done}/{total} {what} ({100.0 * done / total:.0f}%), {rate:.1f} {what}/s, "
                f"ETA {format_duration((total - done) / rate)}")
    elapsed = clock() - start
    rate = f"{done / elapsed:.1f}" if elapsed > 0 else "-"
    log(f"{label}{done}/{total} {what} in {format_duration(elapsed)} ({rate} {what}/s)")
