"""The Apache Beam pretraining-data pipeline on the DirectRunner (in-process and multi-process modes):
the same multiset of records as the in-process writer, and identical files across runs and worker counts.

Needs the `beam` extra (apache-beam); skipped, visibly, without it.
"""
from __future__ import annotations

import collections
import dataclasses
import os
import subprocess
import sys

import pytest

beam = pytest.importorskip("apache_beam")

from albert_tf.data import tfrecord
from albert_tf.tasks.pretraining import data as pretraining
from albert_tf.tasks.pretraining import beam as pretraining_beam  # noqa: E402

from conftest import ROOT  # noqa: E402
from test_pretraining_data import SPM_MODEL, doc_line_corpus, english_corpus  # noqa: E402

OPTIONS = pretraining.PretrainingOptions(max_seq_length=48, max_predictions_per_seq=6, dupe_factor=3, random_seed=11)
IN_PROCESS = ["--runner=DirectRunner", "--direct_num_workers=1", "--direct_running_mode=in_memory"]
MULTI_PROCESS = ["--runner=DirectRunner", "--direct_num_workers=2", "--direct_running_mode=multi_processing"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Two files (the first's last document continues into the second) and a WordPiece vocabulary."""
    d = tmp_path_factory.mktemp("beam")
    text, vocab = doc_line_corpus(num_docs=40, seed=2)
    lines = text.split("\n")
    (d / "part-a.txt").write_text("\n".join(lines[:70]) + "\n")
    (d / "part-b.txt").write_text("\n".join(lines[70:]))
    (d / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return d


def run_beam(corpus, out, args, shards=3, options=OPTIONS, report=None):
    paths = pretraining_beam.run_pipeline(f"{corpus}/part-*.txt", str(out), num_output_shards=shards,
                                          pipeline_args=args, vocab_file=str(corpus / "vocab.txt"),
                                          options=options, docs_per_unit=4, report=report)
    return [open(p, "rb").read() for p in paths]


def records_of(files: list[bytes], tmp_path) -> collections.Counter:
    out = collections.Counter()
    for k, data in enumerate(files):
        path = tmp_path / f"check-{k}"
        path.write_bytes(data)
        out.update(tfrecord.read_records(str(path)))
    return out


@pytest.fixture(scope="module")
def in_process_records(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("inproc") / "train.tfrecord"
    pretraining.create_pretraining_data(
        f"{corpus}/part-*.txt", str(out), vocab_file=str(corpus / "vocab.txt"), num_workers=1, docs_per_unit=4,
        shuffle_buffer_size=7, **{f: getattr(OPTIONS, f) for f in ("max_seq_length", "max_predictions_per_seq",
                                                                   "dupe_factor", "random_seed")})
    return collections.Counter(tfrecord.read_records(str(out)))


def test_direct_runner_in_memory_equals_in_process_writer_and_is_repeatable(corpus, in_process_records, tmp_path):
    first = run_beam(corpus, tmp_path / "a" / "train", IN_PROCESS)
    assert sum(in_process_records.values()) > 100
    assert records_of(first, tmp_path) == in_process_records
    assert all(first)  # every shard got records
    assert run_beam(corpus, tmp_path / "b" / "train", IN_PROCESS) == first
    assert sorted(os.listdir(tmp_path / "a")) == [f"train-{k:05d}-of-00003" for k in range(3)]


def test_direct_runner_multi_process_gives_the_same_files(corpus, tmp_path, monkeypatch):
    # The worker processes unpickle the pipeline's functions: they must find albert_tf wherever pytest runs.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    single = run_beam(corpus, tmp_path / "one" / "train", IN_PROCESS, shards=2)
    figures = []
    assert run_beam(corpus, tmp_path / "two" / "train", MULTI_PROCESS, shards=2, report=figures.append) == single
    # The workers' own clocks come back through the runner's metrics: every stage, every element counted
    # once per stage and once per process.
    (measured,) = figures
    assert set(measured.stage_cpu) == {"tokenize", "plan", "build", "write"}
    assert set(measured.stage_seconds) == set(measured.stage_cpu)
    assert 0 < measured.work_seconds >= max(measured.stage_seconds.values())
    assert os.getpid() not in {int(pid) for pid in measured.process_cpu}  # measured in the workers
    assert round(sum(measured.process_cpu.values()), 3) == round(sum(measured.stage_cpu.values()), 3)
    other_seed = dataclasses.replace(OPTIONS, random_seed=12)
    assert run_beam(corpus, tmp_path / "seed" / "train", IN_PROCESS, shards=2, options=other_seed) != single


def test_more_shards_than_records_writes_empty_shards(corpus, tmp_path):
    tiny = pretraining.PretrainingOptions(max_seq_length=256, dupe_factor=1, short_seq_prob=0.0)
    files = run_beam(corpus, tmp_path / "t", IN_PROCESS, shards=60, options=tiny)
    assert len(files) == 60 and b"" in files
    assert sum(records_of(files, tmp_path).values()) == 40  # one pair per document at this length


def test_command_line_runner_passes_pipeline_options(tmp_path):
    (tmp_path / "c.txt").write_text(english_corpus(12, seed=6))
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "create_pretraining_data.py"), "--runner=DirectRunner",
         "--direct_num_workers=1", f"--input_file={tmp_path}/c.txt", f"--output_file={tmp_path}/out/x",
         f"--spm_model_file={SPM_MODEL}", "--max_seq_length=32", "--dupe_factor=2", "--num_output_shards=2"],
        capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = sorted(os.listdir(tmp_path / "out"))
    assert names == ["x-00000-of-00002", "x-00001-of-00002"]
    assert all(tfrecord.read_records(str(tmp_path / "out" / n)) for n in names)
    bad = subprocess.run(
        [sys.executable, os.path.join(ROOT, "create_pretraining_data.py"), "--runner=DirectRunner",
         f"--input_file={tmp_path}/c.txt", f"--output_file={tmp_path}/y", f"--spm_model_file={SPM_MODEL}"],
        capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), timeout=600)
    assert bad.returncode == 2 and "error: --num_output_shards=0" in bad.stderr


def test_inputs_through_beam_filesystems(corpus):
    assert pretraining_beam.expand_inputs(f"{corpus}/part-*.txt,{corpus}/part-a.txt") == [
        str(corpus / "part-a.txt"), str(corpus / "part-b.txt")]
    with pytest.raises(FileNotFoundError, match=r"--input_file: no file matches '.*missing\.txt', '.*nope\*'"):
        pretraining_beam.expand_inputs(f"{corpus}/missing.txt,{corpus}/nope*")
