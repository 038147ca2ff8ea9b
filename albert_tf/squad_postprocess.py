"""`python -m albert_tf.squad_postprocess`: SQuAD post-processing of raw results, which lives in `albert_tf.tasks.squad.postprocess`.

This module keeps the documented command line and import path; the code is in the SQuAD task package.
"""
import sys

from albert_tf.tasks.squad.postprocess import *  # noqa: F401,F403  (the public names of the moved module)
from albert_tf.tasks.squad.postprocess import main

if __name__ == "__main__":
    sys.exit(main())
