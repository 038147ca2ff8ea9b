"""Pretraining data as an Apache Beam pipeline: the in-process writer's instances, on any Beam runner.

The pipeline runs `albert_tf.tasks.pretraining.data`'s own steps, so the records are the same bytes:

1. Read: every input file (any Beam filesystem: local, ``gs://``, ``hdfs://``, ``s3://``, ...) is read and
   tokenised by one worker (`pretraining.decode_lines`, `pretraining.tokenize_lines`).
2. Corpus: the tokenised files are joined in input order (`pretraining.assemble_corpus`; a file boundary
   is not a document boundary, as in the original) into one `TokenizedCorpus`, a side input of the build
   step: every instance may draw its random-next B segment from any document.
3. Units: the documents are shuffled with ``random.Random(random_seed)`` and cut into the in-process
   writer's units of work (`pretraining.plan_units`: per dupe pass, blocks of `docs_per_unit` documents),
   each built with its own seeded generator (`pretraining.build_unit`), so a unit gives the same bytes
   wherever it runs.
4. Shards: shard s of N builds units s, s + N, s + 2N, ... and writes their records in an order shuffled by
   ``random.Random`` seeded with the seed and s: a deterministic seeded order, whatever the runner or
   the number of workers. Only the small unit lists travel between workers, never the records. Files
   are ``<output_file>-SSSSS-of-NNNNN`` (every shard is written, empty or not), each first under a
   temporary name and then renamed. The shards are the build's parallelism: use at least as many
   shards as workers (a few times more balances better).

So, for the same inputs and flags, the multiset of records equals the in-process writer's (whose final
order comes from one sequential shuffle buffer, which a parallel pipeline cannot reproduce), and the
files are identical from run to run and across runners and worker counts.

Memory: every worker of the build step holds the tokenised corpus (about 5 bytes per token, ~1.3 GB per
GB of English text) and one shard's records (choose N so that a shard fits).
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import time
import uuid
from typing import Callable, Iterable, Iterator, Sequence

import apache_beam as beam
from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from albert_tf import fileio, tokenization
from albert_tf.data import tfrecord
from albert_tf.tasks.pretraining import data as pretraining


METRICS_NAMESPACE = "albert_tf.pretraining"


@contextlib.contextmanager
def _stage_clock(stage: str) -> Iterator[None]:
    """Measures one element of `stage` where it runs: its CPU milliseconds (counters ``cpu_ms/<stage>`` and
    ``cpu_ms_pid/<process id>``) and its start and end wall times (distribution ``wall_ms/<stage>``: the
    min and max bound the stage, worker start-up excluded)."""
    wall, cpu = time.time(), time.thread_time()  # the thread: right for threaded runners too
    yield
    spent = round((time.thread_time() - cpu) * 1000)
    Metrics.counter(METRICS_NAMESPACE, f"cpu_ms/{stage}").inc(spent)
    Metrics.counter(METRICS_NAMESPACE, f"cpu_ms_pid/{os.getpid()}").inc(spent)
    span = Metrics.distribution(METRICS_NAMESPACE, f"wall_ms/{stage}")
    span.update(round(wall * 1000))
    span.update(round(time.time() * 1000))


@dataclasses.dataclass(frozen=True)
class PipelineFigures:
    """What a run's workers measured (given to `run_pipeline`'s `report`).

    Attributes:
      stage_cpu: CPU seconds per stage (tokenize, plan, build, write), summed over the processes that ran it.
      process_cpu: CPU seconds of those stages per worker process (its balance across workers).
      stage_seconds: wall seconds from a stage's first element's start to its last's end.
      work_seconds: wall seconds from the first element's start to the last's end (start-up excluded).
    """

    stage_cpu: dict[str, float]
    process_cpu: dict[str, float]
    stage_seconds: dict[str, float]
    work_seconds: float


def _figures(result: beam.runners.runner.PipelineResult) -> PipelineFigures:
    metrics = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))
    cpu: dict[str, dict[str, float]] = {"cpu_ms": {}, "cpu_ms_pid": {}}
    for counter in metrics["counters"]:
        kind, name = counter.key.metric.name.split("/")
        cpu[kind][name] = cpu[kind].get(name, 0.0) + counter.committed / 1000
    spans: dict[str, tuple[float, float]] = {}
    for d in metrics["distributions"]:
        if d.committed and d.committed.count:
            stage = d.key.metric.name.split("/")[1]
            low, high = spans.get(stage, (float("inf"), float("-inf")))
            spans[stage] = (min(low, d.committed.min / 1000), max(high, d.committed.max / 1000))
    work = (max(h for _, h in spans.values()) - min(lo for lo, _ in spans.values())) if spans else 0.0
    return PipelineFigures(stage_cpu=cpu["cpu_ms"], process_cpu=cpu["cpu_ms_pid"],
                           stage_seconds={s: h - lo for s, (lo, h) in spans.items()}, work_seconds=work)


@dataclasses.dataclass(frozen=True)
class _Plan:
    """The build step's side input: the corpus and its shuffled document order."""

    corpus: pretraining.TokenizedCorpus
    documents: list[int]


def _beam_glob(pattern: str) -> list[str]:
    """Paths matching `pattern` on any Beam filesystem (none for a missing path)."""
    try:
        return [m.path for m in FileSystems.match([pattern])[0].metadata_list]
    except BeamIOError:
        return []


def expand_inputs(patterns: str | Sequence[str]) -> list[str]:
    """Comma-separated glob patterns -> sorted, de-duplicated paths, through Beam's filesystems.

    Raises:
      FileNotFoundError: naming every pattern that matched nothing.
    """
    return fileio.expand_file_patterns(patterns, what="input_file", match=_beam_glob)


class _TokenizeFile(beam.DoFn):
    """(file index, path) -> (file index, tokenised block of the whole file)."""

    def __init__(self, tokenizer: tokenization.FullTokenizer, do_lower_case: bool, allow_binary_input: bool):
        self._tokenizer = tokenizer
        self._do_lower_case = do_lower_case
        self._allow_binary_input = allow_binary_input

    def process(self, element: tuple[int, str]) -> Iterator[tuple[int, tuple]]:
        index, path = element
        with _stage_clock("tokenize"):
            with FileSystems.open(path, compression_type="uncompressed") as f:
                lines = pretraining.decode_lines(f.read(), path, self._allow_binary_input)
            block = pretraining.tokenize_lines(self._tokenizer, self._do_lower_case, lines)
        yield index, block


def _plan(blocks: Iterable[tuple[int, tuple]], options: pretraining.PretrainingOptions,
          docs_per_unit: int) -> tuple[_Plan, list[pretraining.Unit]]:
    with _stage_clock("plan"):
        corpus = pretraining.assemble_corpus(block for _, block in sorted(blocks, key=lambda b: b[0]))
        documents, units = pretraining.plan_units(corpus.num_documents, options,
                                                  random.Random(options.random_seed), docs_per_unit)
    return _Plan(corpus=corpus, documents=documents), units


class _BuildShard(beam.DoFn):
    """(shard index, its units) -> the shard file, its instances in a seeded shuffled order; yields its path."""

    def __init__(self, options: pretraining.PretrainingOptions, vocab: pretraining.VocabIds, paths: Sequence[str]):
        self._options = options
        self._vocab = vocab
        self._paths = list(paths)

    def process(self, element: tuple[int, list[pretraining.Unit]], plan: _Plan) -> Iterator[str]:
        shard, units = element
        with _stage_clock("build"):
            records = [record for unit in units for record in
                       pretraining.build_unit(plan.corpus, plan.documents, self._options, self._vocab, unit)]
            random.Random(f"albert-pretraining-shard/{self._options.random_seed}/{shard}").shuffle(records)
        path = self._paths[shard]
        temporary = f"{path}.tmp-{uuid.uuid4().hex}"
        with _stage_clock("write"):
            with FileSystems.create(temporary) as f:
                for record in records:
                    f.write(tfrecord.frame(record))
            FileSystems.rename([temporary], [path])
        yield path


def build_pipeline(pipeline: beam.Pipeline, input_files: Sequence[str], output_paths: Sequence[str],
                   tokenizer: tokenization.FullTokenizer, vocab: pretraining.VocabIds,
                   options: pretraining.PretrainingOptions, do_lower_case: bool = True,
                   allow_binary_input: bool = False,
                   docs_per_unit: int = pretraining.DEFAULT_DOCS_PER_UNIT) -> beam.PCollection:
    """Adds the pretraining-data transforms to `pipeline` (see the module docstring).

    Args:
      input_files: text files in input order (`expand_inputs`).
      output_paths: the shard files, ``<output_file>-SSSSS-of-NNNNN`` (`pretraining.output_paths`).
      The other arguments are those of `pretraining.create_pretraining_data`.

    Returns:
      The PCollection of the written file names.
    """
    num_shards = len(output_paths)
    blocks = (pipeline
              | "ListFiles" >> beam.Create(list(enumerate(input_files)))
              | "SpreadFiles" >> beam.Reshuffle()
              | "Tokenize" >> beam.ParDo(_TokenizeFile(tokenizer, do_lower_case, allow_binary_input)))
    planned = (blocks
               | "AllBlocks" >> beam.combiners.ToList()
               | "Plan" >> beam.Map(_plan, options, docs_per_unit))
    plan = planned | "Corpus" >> beam.Map(lambda planned_: planned_[0])

    def assign_units(planned_: tuple[_Plan, list[pretraining.Unit]]) -> list[tuple[int, list[pretraining.Unit]]]:
        # Shard s builds units s, s + N, s + 2N, ... (in order): every shard gets an even share.
        return [(s, planned_[1][s::num_shards]) for s in range(num_shards)]

    return (planned
            | "AssignUnits" >> beam.FlatMap(assign_units)
            | "SpreadShards" >> beam.Reshuffle()
            | "BuildAndWrite" >> beam.ParDo(_BuildShard(options, vocab, output_paths), beam.pvalue.AsSingleton(plan)))


def run_pipeline(input_file: str | Sequence[str], output_file: str, *, num_output_shards: int,
                 pipeline_args: Sequence[str], spm_model_file: str | None = None, vocab_file: str | None = None,
                 do_lower_case: bool = True, allow_binary_input: bool = False,
                 options: pretraining.PretrainingOptions = pretraining.PretrainingOptions(),
                 docs_per_unit: int = pretraining.DEFAULT_DOCS_PER_UNIT,
                 report: Callable[[PipelineFigures], None] | None = None) -> list[str]:
    """Runs the pipeline to completion; the library form of ``create_pretraining_data.py --runner=...``.

    Args:
      input_file: comma-separated glob patterns (or a list) on any Beam filesystem.
      output_file: the shard prefix; writes ``<output_file>-SSSSS-of-NNNNN``.
      num_output_shards: N >= 1.
      pipeline_args: Beam pipeline options, e.g. ``["--runner=DirectRunner", "--direct_num_workers=2"]``.
      report: called with the workers' figures after the run (runners without metrics report zeros).
      The other arguments are those of `pretraining.create_pretraining_data`.

    Returns:
      The written files, in shard order.
    """
    if num_output_shards < 1:
        raise ValueError(f"--num_output_shards={num_output_shards}: the Beam pipeline writes sharded output; "
                         "pass --num_output_shards=1 or more.")
    if docs_per_unit < 1:
        raise ValueError(f"docs_per_unit={docs_per_unit} must be >= 1.")
    paths = pretraining.output_paths(output_file, num_output_shards)
    tokenizer, vocab = pretraining.load_tokenizer(spm_model_file, vocab_file, do_lower_case)
    input_files = expand_inputs(input_file)
    directory = FileSystems.split(paths[0])[0]
    if directory and not FileSystems.exists(directory):
        FileSystems.mkdirs(directory)
    pipeline = beam.Pipeline(options=PipelineOptions(list(pipeline_args)))
    build_pipeline(pipeline, input_files, paths, tokenizer, vocab, options, do_lower_case,
                   allow_binary_input, docs_per_unit)
    result = pipeline.run()
    result.wait_until_finish()
    if report:
        report(_figures(result))
    return paths
