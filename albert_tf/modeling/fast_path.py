"""Which path (XLA or plain `tf.function`) is the faster default for a device kind and sequence length.

Measured with `benchmarks/bench_encoder.py` (ALBERT-base, fp32, medians of interleaved rounds; see
docs/performance.md):

* CPU with AVX-512 (Zen 5, 2 vCPUs), batch 8 x seq 128: without XLA inference 1.13x and training 1.20x
  the best peer, with XLA 0.99x / 1.10x: oneDNN's fused MatMul + BiasAdd (+ GELU) kernels, which XLA's
  CPU dot emitter does not use, beat XLA's fusions there.
* CPU with AVX2 + FMA only (EPYC, 2 vCPUs, under load), batch 4 x seq 512: with XLA inference 0.98x the
  best peer vs 0.89x without (XLA 1.10x faster), training 0.88x vs 0.87x (a tie). At long sequences the
  attention's element-wise work (mask, softmax, transposes over [B,N,S,S]) grows with S^2, and that is
  what XLA fuses; the matmuls, where oneDNN wins, grow only with S.
* GPU / TPU: XLA (fused element-wise kernels; the usual choice there; not measured in this project:
  no accelerator was lent).

Hence: XLA on accelerators; on CPUs, XLA from `CPU_XLA_MIN_SEQ_LENGTH` tokens on, plain graphs below.
"""
from __future__ import annotations

from typing import Optional

# Shortest sequence from which XLA was measured faster on CPUs (seq 512 above); 128 measured slower,
# 384 was not measured (it keeps the short-sequence choice).
CPU_XLA_MIN_SEQ_LENGTH = 512

_DEVICE_TYPES = ("CPU", "GPU", "TPU")


def default_jit_compile(device_type: str, seq_length: Optional[int] = None) -> bool:
    """Whether to XLA-compile the steps by default (the user's --jit_compile always wins).

    Args:
      device_type: "CPU", "GPU" or "TPU" (case-insensitive), the kind of device the model runs on.
      seq_length: the task's --max_seq_length, or None when unknown (then the shorter-sequence choice).

    Raises:
      ValueError: an unknown device type.
    """
    kind = device_type.upper()
    if kind not in _DEVICE_TYPES:
        raise ValueError(f"Unknown device type {device_type!r}; use one of {', '.join(_DEVICE_TYPES)}.")
    if kind != "CPU":
        return True
    return seq_length is not None and seq_length >= CPU_XLA_MIN_SEQ_LENGTH
