"""Test setup: quiet TensorFlow and make the repository importable without installation."""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

FIXTURES = os.path.join(ROOT, "tests", "fixtures")


def bound(task_cls, run):
    """A task bound to the context its driver run would build (model source, config, tokenizer), for tests
    that call task methods without running the driver."""
    from albert_tf.core import context

    return task_cls(run, context.build(run))
