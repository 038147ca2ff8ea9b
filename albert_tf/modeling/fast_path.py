"""Which path (XLA or plain `tf.function`) is the faster default, per device kind and per job (training, or
evaluation and prediction).

Measured with `benchmarks/bench_encoder.py` (ALBERT-base, fp32, medians of interleaved rounds; see
docs/performance.md):

* Training on CPUs: without XLA at every length measured. AVX2 + FMA (EPYC, 2 vCPUs, quiet): batch 8 x
  seq 128 4.41 s vs 7.26 s with XLA, batch 4 x seq 384 6.96 s vs 12.36 s, batch 4 x seq 512 9.98 s vs
  14.14 s; AVX-512 (Zen 5), batch 8 x seq 128: 2.66 s vs 2.89 s. The training graph runs oneDNN's fused
  MatMul + BiasAdd kernels and XLA-compiles only the element-wise backward chains
  (`layers._fused_gelu_backward`, `_fused_softmax_backward`, `_fused_layer_norm_backward`).
* Evaluation / prediction (the forward pass) on CPUs: with XLA on the AVX2 EPYC (seq 128: 1.19 s vs
  1.29 s, seq 384: 1.88 s vs 2.10 s, seq 512: 2.52 s vs 3.13 s), without it on the AVX-512 Zen 5 (seq
  128: 0.74 s vs 0.85 s with XLA; earlier code, before the fused backward passes, which do not touch the
  forward pass). Why XLA wins on one and loses on the other was not profiled. Only these two CPUs were
  measured: XLA is chosen for x86 CPUs with AVX2 and without AVX-512; every other CPU (AVX-512 at other
  lengths, ARM, unreadable flags) keeps the plain graph, as training does (XLA there is unmeasured).
* GPU / TPU: XLA (fused element-wise kernels; the usual choice there; not measured in this project: no
  accelerator was lent).
"""
from __future__ import annotations

import functools
from typing import Optional

_DEVICE_TYPES = ("CPU", "GPU", "TPU")


def default_jit_compile(device_type: str, *, training: bool, cpu_flags: Optional[frozenset[str]] = None) -> bool:
    """Whether to XLA-compile by default (the user's --jit_compile always wins).

    Args:
      device_type: "CPU", "GPU" or "TPU" (case-insensitive), the kind of device the model runs on.
      training: the training step (True) or the evaluation / prediction forward pass (False).
      cpu_flags: the x86 CPU's feature flags (`avx2`, `avx512f`, ...); None: this machine's (`this_cpu_flags`).

    Returns:
      True on GPU/TPU. On CPUs: False for training; for evaluation / prediction True only on an x86 CPU
      with AVX2 and without AVX-512 (the kind measured faster with XLA); other CPUs (AVX-512, ARM, a CPU
      whose flags cannot be read) keep the plain graph.

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
    flags = this_cpu_flags() if cpu_flags is None else cpu_flags
    return "avx2" in flags and "avx512f" not in flags


@functools.lru_cache(maxsize=None)
def this_cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The feature flags of the first x86 `flags` line of `cpuinfo`; empty where there is none (ARM lists
    `Features` instead) or the file cannot be read (not Linux)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags") and ":" in line:
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()
