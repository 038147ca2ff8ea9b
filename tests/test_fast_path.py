"""The default XLA choice per device kind and sequence length (albert_tf.modeling.fast_path)."""
import pytest

from albert_tf.modeling import fast_path


def test_accelerators_default_to_xla():
    for device in ("GPU", "gpu", "TPU"):
        assert fast_path.default_jit_compile(device, 128) is True
        assert fast_path.default_jit_compile(device) is True


def test_cpu_uses_xla_only_for_long_sequences():
    assert fast_path.default_jit_compile("CPU", 128) is False
    assert fast_path.default_jit_compile("cpu", 384) is False
    assert fast_path.default_jit_compile("CPU", 512) is True
    assert fast_path.default_jit_compile("CPU", 1024) is True
    assert fast_path.default_jit_compile("CPU", None) is False  # unknown length: the short-sequence choice


def test_unknown_device_is_an_error():
    with pytest.raises(ValueError, match="Unknown device type 'NPU'"):
        fast_path.default_jit_compile("NPU", 128)
