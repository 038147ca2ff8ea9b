"""Distribution strategies and numeric precision for the TF2 training scripts.

The original release ran on ``TPUEstimator`` (TPU, or CPU/GPU fallback). Here every script builds a
``tf.distribute.Strategy`` with :func:`get_strategy` and sets the tf_keras precision policy with
:func:`configure_precision`, both before creating any model.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Optional

import tensorflow as tf
import tf_keras as keras

from albert_tf.core.settings import STRATEGY_TYPES


# User-facing precision names (the ``--mixed_precision`` flag) -> tf_keras policy names.
_PRECISION_POLICIES = {
    None: "float32",
    "none": "float32",
    "float32": "float32",
    "float16": "mixed_float16",
    "mixed_float16": "mixed_float16",
    "bfloat16": "mixed_bfloat16",
    "mixed_bfloat16": "mixed_bfloat16",
}

_MIRRORED_ALL_REDUCE = ("nccl", "hierarchical_copy")
_MULTI_WORKER_ALL_REDUCE = ("auto", "ring", "nccl")


def get_strategy(
    strategy_type: str = "one_device",
    tpu: Optional[str] = None,
    num_gpus: Optional[int] = None,
    all_reduce_alg: Optional[str] = None,
    tpu_zone: Optional[str] = None,
    gcp_project: Optional[str] = None,
) -> tf.distribute.Strategy:
    """Builds a distribution strategy.

    Args:
      strategy_type: one of ``STRATEGY_TYPES``.
        - ``one_device``: ``GPU:0`` when a GPU is visible, else ``CPU:0``.
        - ``mirrored``: the first ``num_gpus`` GPUs (all GPUs when None); without GPUs, every logical CPU
          device (see :func:`split_cpu_devices`).
        - ``multi_worker_mirrored``: ``MultiWorkerMirroredStrategy``; the cluster comes from ``TF_CONFIG``.
        - ``tpu``: resolves ``tpu`` (name, grpc address or ``local``; None lets the resolver auto-detect),
          connects to it, initialises the TPU system and returns a ``TPUStrategy``.
      tpu: TPU name or address, for ``tpu`` only.
      num_gpus: GPUs to mirror over, for ``mirrored`` only.
      all_reduce_alg: ``nccl`` or ``hierarchical_copy`` for ``mirrored``; ``auto``, ``ring`` or ``nccl``
        for ``multi_worker_mirrored``; None for the strategy's default.
      tpu_zone, gcp_project: passed to ``TPUClusterResolver`` for ``tpu``.

    Returns:
      The strategy. Create models and optimizers under ``strategy.scope()``.

    Raises:
      ValueError: unknown ``strategy_type`` or ``all_reduce_alg``, or more GPUs requested than visible.
    """
    if strategy_type not in STRATEGY_TYPES:
        raise ValueError(
            f"Unknown --strategy_type={strategy_type!r}; use one of {', '.join(STRATEGY_TYPES)}."
        )
    if strategy_type == "one_device":
        device = "/gpu:0" if tf.config.list_logical_devices("GPU") else "/cpu:0"
        return tf.distribute.OneDeviceStrategy(device)
    if strategy_type == "mirrored":
        return _mirrored_strategy(num_gpus, all_reduce_alg)
    if strategy_type == "multi_worker_mirrored":
        return _multi_worker_strategy(all_reduce_alg)
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
        tpu=tpu, zone=tpu_zone, project=gcp_project
    )
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def describe(strategy: tf.distribute.Strategy) -> str:
    """One line naming the strategy, its replicas and the devices of this worker, e.g. to check that
    the GPUs or TPU cores were found: `MirroredStrategy: 2 replicas in sync on /job:localhost/.../GPU:0, ...`."""
    devices = ", ".join(strategy.extended.worker_devices)
    return (f"{type(strategy).__name__}: {strategy.num_replicas_in_sync} replica(s) in sync; "
            f"this worker's devices: {devices}")


def _mirrored_strategy(
    num_gpus: Optional[int], all_reduce_alg: Optional[str]
) -> tf.distribute.MirroredStrategy:
    """MirroredStrategy over the requested GPUs, or over all logical CPUs when there are no GPUs."""
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    if num_gpus is not None and num_gpus > len(gpus):
        raise ValueError(
            f"--num_gpus={num_gpus} but only {len(gpus)} GPU(s) are visible; lower --num_gpus."
        )
    if gpus and num_gpus != 0:
        devices = gpus if num_gpus is None else gpus[:num_gpus]
    else:
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    if all_reduce_alg is None:
        cross_device_ops = None
    elif all_reduce_alg == "nccl":
        cross_device_ops = tf.distribute.NcclAllReduce()
    elif all_reduce_alg == "hierarchical_copy":
        cross_device_ops = tf.distribute.HierarchicalCopyAllReduce()
    else:
        raise ValueError(
            f"Unknown all_reduce_alg={all_reduce_alg!r} for the mirrored strategy; use one of "
            f"{', '.join(_MIRRORED_ALL_REDUCE)} or leave it unset."
        )
    return tf.distribute.MirroredStrategy(devices=devices, cross_device_ops=cross_device_ops)


def _multi_worker_strategy(
    all_reduce_alg: Optional[str],
) -> tf.distribute.MultiWorkerMirroredStrategy:
    """MultiWorkerMirroredStrategy configured from ``TF_CONFIG``."""
    implementations = {
        None: tf.distribute.experimental.CommunicationImplementation.AUTO,
        "auto": tf.distribute.experimental.CommunicationImplementation.AUTO,
        "ring": tf.distribute.experimental.CommunicationImplementation.RING,
        "nccl": tf.distribute.experimental.CommunicationImplementation.NCCL,
    }
    if all_reduce_alg not in implementations:
        raise ValueError(
            f"Unknown all_reduce_alg={all_reduce_alg!r} for the multi_worker_mirrored strategy; use one "
            f"of {', '.join(_MULTI_WORKER_ALL_REDUCE)} or leave it unset."
        )
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=implementations[all_reduce_alg]
    )
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the one worker that writes checkpoints and summaries (always True on a single worker)."""
    return bool(strategy.extended.should_checkpoint)


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    """True when replicas live in more than one process (multi-worker mirrored)."""
    return strategy.num_replicas_in_sync > len(strategy.extended.worker_devices)


class WorkerLostError(ConnectionError):
    """A worker of a multi-worker job stopped (killed, preempted, crashed) while the others ran."""


# The errors collectives raise on the surviving workers once the strategy's health check (every 30 s) finds
# a peer down, or a collective times out.
_PEER_FAILURES = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError)


@contextlib.contextmanager
def explain_lost_workers(strategy: tf.distribute.Strategy, output_dir: str) -> Iterator[None]:
    """Turns the error a surviving worker gets when another worker of a multi-worker job died into one
    `WorkerLostError` that says what to do: rerun every worker, which resumes from the last checkpoint."""
    try:
        yield
    except _PEER_FAILURES as e:
        if not is_multi_worker(strategy):
            raise
        raise WorkerLostError(
            f"a worker of the multi-worker job stopped ({e.message.splitlines()[0] if e.message else type(e).__name__}); "
            f"this worker stops too. Start every worker again with the same command: training resumes from the "
            f"last checkpoint in {output_dir}.") from e


def chief_value(strategy: tf.distribute.Strategy, value: int) -> int:
    """The chief's `value`, on every worker: decisions read from files (what is left to evaluate, whether a
    save must be completed) are taken by the chief alone, so every worker runs the same collective steps
    even while the chief is writing those files. Without several workers: `value` itself."""
    if not is_multi_worker(strategy):
        return value

    def chief_only() -> tf.Tensor:
        first = tf.distribute.get_replica_context().replica_id_in_sync_group == 0  # on the chief (task 0)
        return tf.where(first, tf.constant(value, tf.int64), tf.constant(0, tf.int64))

    return int(strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(chief_only), axis=None))


def barrier(strategy: tf.distribute.Strategy) -> None:
    """Returns once every worker has reached it, so files the chief wrote before it (the best checkpoint's
    copy after the last evaluation) are complete when the others read them. No-op on a single worker."""
    chief_value(strategy, 0)


def split_cpu_devices(num_devices: int) -> None:
    """Splits the physical CPU into ``num_devices`` logical devices (``CPU:0`` ... ``CPU:n-1``).

    Lets the ``mirrored`` strategy run several replicas on a CPU-only machine (tests, debugging). Must run
    before TensorFlow initialises its devices, i.e. before any op or strategy is created.

    Raises:
      ValueError: ``num_devices`` < 1.
      RuntimeError: TensorFlow already initialised its devices with a different split.
    """
    if num_devices < 1:
        raise ValueError(f"num_devices must be >= 1, got {num_devices}.")
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)]
        )
    except RuntimeError as e:
        if len(tf.config.list_logical_devices("CPU")) == num_devices:
            return
        raise RuntimeError(
            f"Cannot split the CPU into {num_devices} logical devices: TensorFlow is already "
            "initialised. Call split_cpu_devices at program start, before creating any tensor or "
            "strategy."
        ) from e


def configure_precision(mixed_precision: Optional[str]) -> str:
    """Sets the tf_keras global dtype policy.

    Args:
      mixed_precision: None, ``none`` or ``float32`` (full precision); ``float16`` or ``mixed_float16``
        (float16 compute, float32 variables; the trainer then adds dynamic loss scaling); ``bfloat16`` or
        ``mixed_bfloat16`` (bfloat16 compute, float32 variables; for TPUs and recent GPUs/CPUs).

    Returns:
      The tf_keras policy name now in force.

    Raises:
      ValueError: an unknown value (the message names ``--mixed_precision`` and the valid values).
    """
    key = mixed_precision.lower() if isinstance(mixed_precision, str) else mixed_precision
    if key not in _PRECISION_POLICIES:
        valid = ", ".join(k for k in _PRECISION_POLICIES if k is not None)
        raise ValueError(f"Unknown --mixed_precision={mixed_precision!r}; use one of {valid}.")
    policy = _PRECISION_POLICIES[key]
    keras.mixed_precision.set_global_policy(policy)
    return policy
