"""`python -m albert_tf.squad_eval`: the official SQuAD v1.1 / v2.0 evaluation, which lives in `albert_tf.tasks.squad.evaluate`.

This module keeps the documented command line and import path; the code is in the SQuAD task package.
"""
import sys

from albert_tf.tasks.squad.evaluate import *  # noqa: F401,F403  (the public names of the moved module)
from albert_tf.tasks.squad.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
