"""The GLUE task names, importable without TensorFlow so that scripts reject an unknown
``--task_name`` at once (`albert_tf.core.cli.check_choice`), before any heavy import.

`albert_tf.tasks.glue.data` defines one processor per name here (a test keeps the two in step).
"""
GLUE_TASKS = ("cola", "sst-2", "mrpc", "sts-b", "qqp", "mnli", "mismnli", "qnli", "rte", "wnli", "ax",
              "xnli")
# Common spellings of the canonical keys.
TASK_ALIASES = {"sst2": "sst-2", "stsb": "sts-b", "mnli-mm": "mismnli", "diagnostic": "ax"}
