"""`python -m albert_tf.data.squad_split`: splitting a SQuAD file by article, which lives in `albert_tf.tasks.squad.split`.

This module keeps the documented command line and import path; the code is in the SQuAD task package.
"""
import sys

from albert_tf.tasks.squad.split import *  # noqa: F401,F403  (the public names of the moved module)
from albert_tf.tasks.squad.split import main

if __name__ == "__main__":
    sys.exit(main())
