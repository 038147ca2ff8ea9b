"""Which path (XLA or plain `tf.function`) is the faster default, per device kind and per job (training, or
evaluation and prediction).

Measured with `benchmarks/bench_encoder.py` (ALBERT-base, fp32, medians of interleaved rounds; see
docs/performance.md):

* Training on CPUs: without XLA at every length measured. AVX2 + FMA (EPYC, 2 vCPUs, quiet): batch 8 x
  seq 128 4.41 s vs 7.26 s with XLA, batch 4 x seq 384 6.96 s vs 12.36 s, batch 4 x seq 512 9.98 s vs
  14.14 s; AVX-512 (Zen 5), batch 8 x seq 128: 2.66 s vs 2.89 s. The training graph runs oneDNN's fused
  MatMul + BiasAdd kernels and XLA-compiles only the element-wise backward chains
  (`layers._fused_gelu_backward`, `layers.softmax_fused_backward`); XLA's CPU dot emitter is slower on the
  matmuls, which are most of a training step.
* Evaluation / prediction (the forward pass) on CPUs: with XLA on AVX2-only CPUs (seq 128: 1.19 s vs 1.29 s,
  seq 384: 1.88 s vs 2.10 s, seq 512: 2.52 s vs 3.13 s), without it on AVX-512 CPUs (seq 128: 0.74 s vs
  0.85 s with XLA): oneDNN's AVX-512 matmuls beat XLA's there, while on AVX2 XLA's fused attention and
  LayerNorm win.
* GPU / TPU: XLA (fused element-wise kernels; the usual choice there; not measured in this project: no
  accelerator was lent).
"""
from __future__ import annotations

import functools
from typing import Optional

_DEVICE_TYPES = ("CPU", "GPU", "TPU")


def default_jit_compile(device_type: str, *, training: bool, cpu_avx512: Optional[bool] = None) -> bool:
    """Whether to XLA-compile by default (the user's --jit_compile always wins).

    Args:
      device_type: "CPU", "GPU" or "TPU" (case-insensitive), the kind of device the model runs on.
      training: the training step (True) or the evaluation / prediction forward pass (False).
      cpu_avx512: whether the CPU has AVX-512; None: this machine's (`cpu_has_avx512`).

    Raises:
      ValueError: an unknown device type.
    """
    kind = device_type.upper()
    if kind not in _DEVICE_TYPES:
        raise ValueError(f"Unknown device type {device_type!r}; use one of {', '.join(_DEVICE_TYPES)}.")
    if kind != "CPU":
        return True
    if training:
        return False
    return not (cpu_has_avx512() if cpu_avx512 is None else cpu_avx512)


@functools.lru_cache(maxsize=None)
def cpu_has_avx512() -> bool:
    """True when this machine's CPU reports AVX-512 Foundation (`avx512f` in /proc/cpuinfo); False where
    /proc/cpuinfo is not readable (the AVX2 choice)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return "avx512f" in line.split(":", 1)[1].split()
    except OSError:
        pass
    return False
