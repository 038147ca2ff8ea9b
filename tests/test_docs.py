"""Every documented example runs as written: the ```python and ```bash blocks of README.md and docs/*.md.

Each block is one test case, named `<file>:<line of its fence>`. It runs in a fresh folder standing for
the repository root: the root scripts are linked there, `python` is this interpreter, `albert-<script>`
runs `<script>.py` (the console names), and the doc's placeholder paths (`albert_base/`,
`../shared/data/glue`, `hub/albert_base`, `albert_demo_output`, ...) are tiny stand-ins copied in from
the table `STAND_INS` below. Python blocks run in a fresh interpreter; bash blocks with `bash -ex`
(the first failing command stops the block and the log shows which). A bash block is run after the
rewriting rules of `tests/doc_blocks.py`: trailing comments and optional `[--flags]` are dropped,
`pip install` lines are skipped, and the flags of `OVERRIDES` are appended to long runs (a later flag
wins), which shrinks them without editing the command.

A block that cannot run here (a TPU, a cluster, Docker, a download, the whole test suite) carries the
marker `<!-- doc-test: skip: REASON -->` on the line before its fence and is reported as skipped with
that reason; a block that needs an optional extra carries `<!-- doc-test: requires: MODULE -->` and is
skipped visibly where the module is missing (CI installs the extras). Any other block must pass: a new doc page or example is picked up automatically, so it
must run on the stand-ins (add one to `STAND_INS` if it needs a new placeholder) or say why not.
"""
from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Optional

import pytest

import doc_blocks
from conftest import FIXTURES, ROOT

DOCS = ["README.md"] + sorted(f"docs/{name}" for name in os.listdir(os.path.join(ROOT, "docs")) if name.endswith(".md"))
TINY_SPM = os.path.join(FIXTURES, "tokenization", "tiny-clean.model")
BLOCK_TIMEOUT_S = 600

# ---------------------------------------------------------------------------------------------------
# Overrides: flags appended to every command (an `&&` part) the pattern matches, to shrink long runs.
# ---------------------------------------------------------------------------------------------------
_TRAIN_STEPS = "--train_step=2 --warmup_step=1 --save_checkpoints_steps=1"
OVERRIDES = [(re.compile(pattern), flags) for pattern, flags in [
    (r"run_demo\.py|albert-run-demo",
     "--vocab_size=400 --max_seq_length=32 --max_predictions_per_seq=5 --dupe_factor=1 --train_batch_size=8 "
     "--num_train_steps=4 --num_evals=2"),
    (r"create_pretraining_data\.py|albert-create-pretraining-data",
     "--max_seq_length=32 --max_predictions_per_seq=5 --dupe_factor=1"),
    (r"run_pretraining\.py|albert-run-pretraining",
     "--train_batch_size=4 --max_seq_length=32 --max_predictions_per_seq=5 --num_train_steps=2 "
     "--num_warmup_steps=1 --save_checkpoints_steps=1 --max_eval_steps=2"),
    (r"run_classifier\.py|albert-run-classifier",
     f"{_TRAIN_STEPS} --max_seq_length=32 --train_batch_size=4 --eval_batch_size=4 --predict_batch_size=4"),
    (r"run_squad(_v1|_v2)?\.py|albert-run-squad",
     "--max_seq_length=64 --doc_stride=32 --max_query_length=16 --train_batch_size=4 --predict_batch_size=4 "
     "--num_train_epochs=1 --save_checkpoints_steps=2"),
    (r"run_race\.py|albert-run-race",
     f"{_TRAIN_STEPS} --max_seq_length=32 --max_qa_length=8 --train_batch_size=4 --eval_batch_size=4 "
     "--predict_batch_size=4"),
    (r"albert_tf\.data\.squad_split", "--num_train_articles=2 --num_dev_articles=1"),
]]

# ---------------------------------------------------------------------------------------------------
# Blocks that continue an earlier one: the earlier block (named by its file and a piece of its text)
# runs first in the same folder, with the same stand-ins and overrides.
# ---------------------------------------------------------------------------------------------------
RUN_FIRST = {
    ("docs/squad.md", "python -m albert_tf.squad_postprocess"): ("docs/squad.md", "--max_answer_length=30 --output_dir=out\n"),
    ("docs/squad.md", "tf.saved_model.load(paths["): ("docs/squad.md", "paths = export_squad("),
}


# ---------------------------------------------------------------------------------------------------
# Stand-ins. Each builder writes one tiny thing at `dest` (once per test session, shared by the xdist
# workers); `StandIns.path(name)` gives another stand-in's built copy.
# ---------------------------------------------------------------------------------------------------
def tiny_config():
    import albert_tf  # TensorFlow loads only when a stand-in is built
    # max_position_embeddings 512: the docs' sequence lengths (up to 512) are valid with it.
    return albert_tf.AlbertConfig(vocab_size=1000, embedding_size=8, hidden_size=16, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=32, max_position_embeddings=512,
                                  hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def build_release(dest: Path, standins: "StandIns") -> None:
    """An official release folder (`albert_base_v2.tar.gz` unpacked): config, model.ckpt-best, 30k-clean.*"""
    import albert_tf
    dest.mkdir(parents=True)
    config = tiny_config()
    albert_tf.save_original_checkpoint(albert_tf.AlbertPretrainer(config), str(dest / "model.ckpt-best"))
    config.to_json_file(str(dest / "albert_config.json"))
    shutil.copy(TINY_SPM, dest / "30k-clean.model")
    shutil.copy(TINY_SPM[:-len(".model")] + ".vocab", dest / "30k-clean.vocab")


def build_config(dest: Path, standins: "StandIns") -> None:
    shutil.copy(standins.path("albert_base") / "albert_config.json", dest)


def build_spm(dest: Path, standins: "StandIns") -> None:
    shutil.copy(TINY_SPM, dest)


def build_hub(dest: Path, standins: "StandIns") -> None:
    """`hub/albert_base` (TF2 encoder SavedModel with mlm) and `hub/albert_base_preprocess`, by export_tfhub."""
    from albert_tf.export import tfhub
    release = standins.path("albert_base")
    tfhub.export_from_checkpoint(str(dest / "albert_base"), str(release / "albert_config.json"),
                                 str(release / "model.ckpt-best"), spm_model_file=str(release / "30k-clean.model"),
                                 do_lower_case=True, preprocessing_export_path=str(dest / "albert_base_preprocess"))


def build_tf2_hub_encoder(dest: Path, standins: "StandIns") -> None:
    shutil.copytree(standins.path("hub/albert_base") / "albert_base", dest)


def build_transformers_copy(dest: Path, standins: "StandIns") -> None:
    shutil.copytree(standins.path("albert-base-v2"), dest)


def build_transformers(dest: Path, standins: "StandIns") -> None:
    """A Hugging Face `AlbertForPreTraining` folder of the release's weights."""
    import albert_tf
    release = standins.path("albert_base")
    pretrainer = albert_tf.AlbertPretrainer(tiny_config())
    albert_tf.load_original_checkpoint(pretrainer, str(release))
    albert_tf.save_transformers(pretrainer, str(dest), spm_model_file=str(release / "30k-clean.model"),
                                do_lower_case=True)


def build_transformers_classifier(dest: Path, standins: "StandIns") -> None:
    """A Hugging Face `AlbertForSequenceClassification` folder (a fine-tune with label names)."""
    import albert_tf
    release = standins.path("albert_base")
    classifier = albert_tf.AlbertClassifier(tiny_config(), 2, id2label={0: "negative", 1: "positive"})
    albert_tf.load_original_checkpoint(classifier.encoder, str(release))
    albert_tf.save_transformers(classifier, str(dest), spm_model_file=str(release / "30k-clean.model"),
                                do_lower_case=True)


def build_squad_finetuned(dest: Path, standins: "StandIns") -> None:
    """`out/model.ckpt-best` of a SQuAD v1.1 run: the release encoder plus the `cls/squad` head."""
    import albert_tf
    model = albert_tf.AlbertQuestionAnswering(tiny_config())
    albert_tf.load_original_checkpoint(model.encoder, str(standins.path("albert_base")))
    albert_tf.save_original_checkpoint(model, str(dest / "model.ckpt-best"))


def build_glue(dest: Path, standins: "StandIns") -> None:
    from test_run_classifier import write_glue  # the GLUE layout of the classifier tests, a few rows per split
    write_glue(str(dest))


def build_race(dest: Path, standins: "StandIns") -> None:
    from test_run_race import write_race  # dest/RACE/{train,dev,test}/{middle,high}/
    write_race(str(dest))


def _squad_document(version: str, num_articles: int) -> dict:
    from test_squad_task import squad_file
    scratch = Path(standins_root()) / f"squad-{version}.json"
    _, data = squad_file(scratch, version)
    articles = []
    for n in range(num_articles):
        article = json.loads(json.dumps(data["data"][0]))
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                qa["id"] = f"{qa['id']}-{n}"
        articles.append(article)
    return {"version": version, "data": articles}


def squad_builder(version: str, num_articles: int) -> Callable[[Path, "StandIns"], None]:
    def build(dest: Path, standins: "StandIns") -> None:
        dest.write_text(json.dumps(_squad_document(version, num_articles), ensure_ascii=False), encoding="utf-8")
    return build


def build_corpus(dest: Path, standins: "StandIns") -> None:
    """Two small books: paragraphs of the demo's bundled book, a blank line between documents."""
    from albert_tf.demo import BUNDLED_CORPUS
    dest.mkdir(parents=True)
    text = Path(BUNDLED_CORPUS).read_text(encoding="utf-8")
    (dest / "book1.txt").write_text(text[:30000], encoding="utf-8")
    (dest / "book2.txt").write_text(text[30000:60000], encoding="utf-8")


def build_demo_output(dest: Path, standins: "StandIns") -> None:
    """What `python run_demo.py` writes, made by that command with the demo overrides (so a doc's rerun
    of it resumes with nothing left to do)."""
    work = dest.parent / "demo-run"
    run_bash(doc_blocks.rewrite_bash("python run_demo.py", OVERRIDES), work, {})
    shutil.move(str(work / "albert_demo_output"), dest)


def build_mrpc_run(dest: Path, standins: "StandIns") -> None:
    """`out/mrpc`: an MRPC fine-tuning run from the release (TF1 checkpoints and TF2 state)."""
    work = dest.parent / "mrpc-run"
    shutil.copytree(standins.path("albert_base"), work / "albert_base")
    command = (f"python run_classifier.py --task_name=MRPC --data_dir={standins.path('../shared/data/glue')} "
               "--output_dir=out/mrpc --albert_config_file=albert_base/albert_config.json --init_checkpoint=albert_base "
               "--spm_model_file=albert_base/30k-clean.model --do_lower_case --do_train --do_eval")
    run_bash(doc_blocks.rewrite_bash(command, OVERRIDES), work, {})
    shutil.move(str(work / "out" / "mrpc"), dest)


@dataclasses.dataclass(frozen=True)
class StandIn:
    placeholder: str  # a block whose text contains this gets the stand-in
    build: Callable[[Path, "StandIns"], None]
    dest: Optional[str] = None  # where the block sees it, relative to its folder (default: the placeholder)
    env: Optional[str] = None  # an environment variable set to the stand-in's path in the block
    unless: Optional[str] = None  # a regex: not given to blocks it matches (they write that path themselves)


# To document a new placeholder path: add a StandIn (placeholder text, a builder that writes a tiny
# thing of the same layout at `dest`). Keep builders tiny; reuse the tests' data writers.
STAND_INS = [
    StandIn("albert_base", build_release, dest="albert_base"),
    StandIn("albert_config.json", build_config, dest="albert_config.json"),
    StandIn("30k-clean.model", build_spm, dest="30k-clean.model"),
    StandIn("hub/albert_base", build_hub, dest="hub", unless=r'export_tfhub\.py|export_encoder\(\w+, "hub/'),
    StandIn("albert_en_base_3", build_tf2_hub_encoder),  # an unpacked TF2 Hub encoder (Model Garden's layout)
    StandIn("albert-base-v2", build_transformers),  # a Hugging Face ALBERT folder
    StandIn("hf/albert-base-v2", build_transformers_copy),
    StandIn("any-albert/", build_transformers_copy, dest="any-albert"),
    StandIn("my-sst2-finetune/", build_transformers_classifier, dest="my-sst2-finetune"),
    StandIn("out/model.ckpt-best", build_squad_finetuned, dest="out"),
    StandIn("out/mrpc", build_mrpc_run, unless="--output_dir=out/mrpc"),
    StandIn("../shared/data/glue", build_glue),
    StandIn("$GLUE_DIR", build_glue, dest="glue", env="GLUE_DIR"),
    StandIn("RACE_PARENT", build_race),
    StandIn("../shared/data/squad/dev-v1.1.json", squad_builder("v1.1", 3)),
    StandIn("train-v1.1.json", squad_builder("v1.1", 1)),
    StandIn("dev-v1.1.json", squad_builder("v1.1", 1)),
    StandIn("dev-v2.0.json", squad_builder("v2.0", 1)),
    StandIn("corpus/", build_corpus, dest="corpus"),
    StandIn("../shared/data/corpus/gutenberg", build_corpus),
    StandIn("albert_demo_output", build_demo_output),
]


def standins_root() -> str:
    """One folder for the whole session: shared by the xdist workers (their base temps' parent)."""
    return os.environ["DOC_TEST_STANDINS"]


class StandIns:
    """Builds each stand-in once per session under a file lock (xdist workers share the folder)."""

    def __init__(self, root: Path):
        self.root = root
        self.by_name = {s.placeholder: s for s in STAND_INS}

    def path(self, placeholder: str) -> Path:
        standin = self.by_name[placeholder]
        where = self.root / re.sub(r"[^A-Za-z0-9_.-]", "_", standin.placeholder)
        built = where / "built"
        with open(f"{where}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (where / "done").exists():
                shutil.rmtree(where, ignore_errors=True)
                where.mkdir(parents=True)
                standin.build(built, self)
                (where / "done").touch()
        return built

    def install(self, block_text: str, cwd: Path) -> dict[str, str]:
        """Copies into `cwd` every stand-in the block mentions; returns the environment variables to set."""
        env = {}
        for standin in STAND_INS:
            if standin.placeholder not in block_text or (standin.unless and re.search(standin.unless, block_text)):
                continue
            source = self.path(standin.placeholder)
            target = cwd / (standin.dest or standin.placeholder)
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True)
            elif not target.exists():
                shutil.copy(source, target)
            if standin.env:
                env[standin.env] = str(target)
        return env


# ---------------------------------------------------------------------------------------------------
# Running a block
# ---------------------------------------------------------------------------------------------------
def _bin_dir() -> Path:
    """`python` = this interpreter and `albert-<name>` = `python <root>/<name>.py` for every root script."""
    where = Path(standins_root()) / "bin"
    with open(f"{where}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not where.exists():
            where.mkdir()
            (where / "python").symlink_to(sys.executable)
            for script in Path(ROOT).glob("*.py"):
                wrapper = where / ("albert-" + script.stem.replace("_", "-"))
                wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{script}" "$@"\n')
                wrapper.chmod(0o755)
    return where


def block_env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env["PATH"] = f"{_bin_dir()}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def prepare_folder(cwd: Path) -> None:
    """A folder standing for the checkout: the root scripts linked in, so `python run_demo.py` works."""
    cwd.mkdir(parents=True, exist_ok=True)
    for entry in Path(ROOT).iterdir():
        if entry.suffix in (".py", ".sh") and not (cwd / entry.name).exists():
            (cwd / entry.name).symlink_to(entry)


def _run(argv: list[str], cwd: Path, env: dict[str, str], shown: str) -> None:
    result = subprocess.run(argv, cwd=cwd, env=block_env(env), capture_output=True, text=True,
                            timeout=BLOCK_TIMEOUT_S)
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-6000:]
        pytest.fail(f"exit status {result.returncode} in {cwd}\n--- ran ---\n{shown}\n--- output (end) ---\n{output}",
                    pytrace=False)


def run_bash(commands: list[str], cwd: Path, env: dict[str, str]) -> None:
    prepare_folder(cwd)
    script = "\n".join(commands) + "\n"
    (cwd / "doc_block.sh").write_text(script)
    _run(["bash", "-ex", "doc_block.sh"], cwd, env, script)


def run_block(block: doc_blocks.Block, cwd: Path, standins: StandIns) -> None:
    env = standins.install(block.text, cwd)
    if block.lang == "bash":
        run_bash(doc_blocks.rewrite_bash(block.text, OVERRIDES), cwd, env)
    else:
        prepare_folder(cwd)
        (cwd / "doc_block.py").write_text(block.text)
        _run([sys.executable, "doc_block.py"], cwd, env, block.text)


def _find(path: str, text: str) -> doc_blocks.Block:
    found = [b for b in BLOCKS if b.path == path and text in b.text]
    assert len(found) == 1, f"RUN_FIRST names {path!r} / {text!r}, which matches {len(found)} blocks; fix the table"
    return found[0]


def blocks_before(block: doc_blocks.Block) -> list[doc_blocks.Block]:
    """The blocks `RUN_FIRST` says must run before `block`, earliest first."""
    for (path, text), (first_path, first_text) in RUN_FIRST.items():
        if block.path == path and text in block.text:
            first = _find(first_path, first_text)
            return blocks_before(first) + [first]
    return []


BLOCKS = doc_blocks.read_blocks(ROOT, DOCS)


@pytest.fixture(scope="session")
def standins(tmp_path_factory, worker_id):
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if worker_id != "master" else base) / "doc_standins"
    root.mkdir(exist_ok=True)
    os.environ["DOC_TEST_STANDINS"] = str(root)
    return StandIns(root)


def test_run_first_table_names_existing_blocks():
    for (path, text), first in RUN_FIRST.items():
        _find(path, text)
        _find(*first)


@pytest.mark.parametrize("block", BLOCKS, ids=[b.name for b in BLOCKS])
def test_doc_block_runs(block, standins, tmp_path):
    if block.skip_reason:
        pytest.skip(f"{block.name}: {block.skip_reason}")
    for module in block.requires:
        pytest.importorskip(module, reason=f"{block.name} needs the optional extra providing {module}")
    chain = blocks_before(block) + [block]
    # A python block continuing a python block uses its names: they run as one script.
    while len(chain) > 1 and chain[-2].lang == chain[-1].lang == "python":
        chain[-2:] = [dataclasses.replace(chain[-1], text=chain[-2].text + chain[-1].text)]
    for part in chain:
        run_block(part, tmp_path, standins)


def test_rewriting_rules():
    overrides = [(re.compile(r"run_demo\.py"), "--num_train_steps=4")]
    script = ("pip install -r requirements.txt && python run_demo.py   # writes albert_demo_output/\n"
              "# a comment line\n"
              "python run_demo.py --corpus='a b/#1.txt' \\\n  --x=1 [--num_workers=N] [--a=T | --b]\n")
    assert doc_blocks.rewrite_bash(script, overrides) == [
        "python run_demo.py --num_train_steps=4",
        "python run_demo.py --corpus='a b/#1.txt'    --x=1 --num_train_steps=4"]


def test_skip_marker_is_read_and_a_malformed_one_refused(tmp_path):
    (tmp_path / "a.md").write_text("<!-- doc-test: skip: needs a TPU -->\n\n```bash\nls\n```\n\n"
                                   "  ```python\n  print(1)\n  ```\n```\nnot run\n```\n")
    first, second = doc_blocks.read_blocks(str(tmp_path), ["a.md"])
    assert (first.name, first.skip_reason) == ("a.md:3", "needs a TPU")
    assert (second.lang, second.text, second.skip_reason) == ("python", "print(1)\n", None)
    (tmp_path / "c.md").write_text("<!-- doc-test: requires: onnx, apache_beam -->\n```python\nimport onnx\n```\n")
    assert doc_blocks.read_blocks(str(tmp_path), ["c.md"])[0].requires == ("onnx", "apache_beam")
    (tmp_path / "b.md").write_text("<!-- doc-test: skipped -->\n```bash\nls\n```\n")
    with pytest.raises(ValueError, match="b.md:2: malformed marker"):
        doc_blocks.read_blocks(str(tmp_path), ["b.md"])
