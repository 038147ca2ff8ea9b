"""The package as a user installs it: the wheel built from a copy of the checkout, installed into a fresh
virtualenv outside the checkout, imported and run from another directory.

The virtualenv sees this interpreter's site-packages (`--system-site-packages`), so the install needs no
network: the wheel goes in with `--no-index`, and its declared requirements are checked against what is
installed. Every console command of pyproject.toml answers `--help`, and `albert-run-demo` runs a tiny
job on the bundled book, which must travel in the wheel.
"""
from __future__ import annotations

import concurrent.futures
import glob
import os
import shutil
import subprocess
import sys
import tomllib

from conftest import ROOT

with open(os.path.join(ROOT, "pyproject.toml"), "rb") as _f:
    PYPROJECT = tomllib.load(_f)
COMMANDS = sorted(PYPROJECT["project"]["scripts"])
ROOT_SCRIPTS = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "*.py")))


def _run(args: list[str], cwd: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH="", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _install_wheel_in_fresh_venv(work) -> dict[str, str]:
    source = work / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", "tests", "benchmarks", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
        "albert_demo_output", "out", "runs"))
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                  str(work / "wheels"), str(source)], cwd=str(work))
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = glob.glob(str(work / "wheels" / "albert_tf-*.whl"))
    env_dir = work / "venv"
    made = _run([sys.executable, "-m", "venv", "--system-site-packages", str(env_dir)], cwd=str(work))
    assert made.returncode == 0, made.stderr
    python = str(env_dir / "bin" / "python")
    # --force-reinstall --no-deps: a development install of albert-tf may be visible through the system
    # site-packages; the wheel must still land in the virtualenv.
    installed = _run([python, "-m", "pip", "install", "--no-index", "--no-deps", "--force-reinstall", wheel],
                     cwd=str(work))
    assert installed.returncode == 0, installed.stdout + installed.stderr
    run_dir = work / "elsewhere"
    run_dir.mkdir()
    return {"python": python, "bin": str(env_dir / "bin"), "cwd": str(run_dir), "venv": str(env_dir),
            "wheel": wheel}


def test_every_root_script_has_a_console_command():
    """`run_classifier.py` -> `albert-run-classifier`, ... (interfaces.md), each pointing at its module."""
    assert COMMANDS == sorted("albert-" + name.replace("_", "-") for name in ROOT_SCRIPTS)
    for command, target in PYPROJECT["project"]["scripts"].items():
        assert target == f"albert_tf.scripts.{command[len('albert-'):].replace('-', '_')}:entry"


def test_wheel_in_a_fresh_virtualenv(tmp_path):
    """One test (one wheel, one virtualenv, also under pytest-xdist): import, commands, a tiny run."""
    venv = _install_wheel_in_fresh_venv(tmp_path)
    _check_import_version_and_requirements(venv)
    _check_every_console_command_answers_help(venv)
    _check_demo_command_runs_a_tiny_job(venv)


def _check_import_version_and_requirements(venv: dict[str, str]) -> None:
    probe = ("import importlib.metadata as m, albert_tf\n"
             "from packaging.requirements import Requirement\n"
             "print(albert_tf.__version__, m.version('albert-tf'), albert_tf.__file__)\n"
             "for text in m.requires('albert-tf'):\n"
             "    r = Requirement(text)\n"
             "    if r.marker is None:\n"
             "        assert m.version(r.name) in r.specifier, (text, m.version(r.name))\n"
             "import albert_tf.demo, os\n"
             "print(os.path.exists(albert_tf.demo.BUNDLED_CORPUS))\n")
    proc = _run([venv["python"], "-c", probe], cwd=venv["cwd"])
    assert proc.returncode == 0, proc.stderr
    version, dist_version, location = proc.stdout.splitlines()[0].split()
    assert version == dist_version and location.startswith(venv["venv"]), proc.stdout
    assert proc.stdout.splitlines()[-1] == "True"  # package data travels in the wheel
    assert any(name.endswith("resources/chesterton-thursday.txt") for name in _wheel_names(venv["wheel"]))


def _wheel_names(wheel: str) -> list[str]:
    import zipfile

    with zipfile.ZipFile(wheel) as z:
        return z.namelist()


def _check_every_console_command_answers_help(venv: dict[str, str]) -> None:
    """Each prints its own flags and exits 0 (absl alone would exit 1 after the help)."""

    def help_of(command: str) -> tuple[str, subprocess.CompletedProcess]:
        return command, _run([os.path.join(venv["bin"], command), "--help"], cwd=venv["cwd"])

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        for command, proc in pool.map(help_of, COMMANDS):
            assert proc.returncode == 0, (command, proc.stdout[-2000:], proc.stderr[-2000:])
            # The program's own flags are listed (absl lists those of the started file by default).
            listed = [line for line in proc.stdout.splitlines() if line.startswith(("  --", "  -"))]
            assert len(listed) >= 3, (command, proc.stdout[-800:])


def _check_demo_command_runs_a_tiny_job(venv: dict[str, str]) -> None:
    out = os.path.join(venv["cwd"], "demo")
    proc = _run([os.path.join(venv["bin"], "albert-run-demo"), f"--output_dir={out}", "--vocab_size=400",
                 "--max_seq_length=32", "--max_predictions_per_seq=5", "--dupe_factor=1", "--train_batch_size=8",
                 "--num_train_steps=2", "--num_evals=1"], cwd=venv["cwd"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.startswith("ALBERT demo: loading TensorFlow")  # printed before TensorFlow loads
    assert os.path.exists(os.path.join(out, "model", "model.ckpt-best.index"))
    assert os.path.exists(os.path.join(out, "spm.model"))
