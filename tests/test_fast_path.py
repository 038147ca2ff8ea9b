"""The default XLA choice per device kind and job (albert_tf.modeling.fast_path)."""
import pytest

from albert_tf.modeling import fast_path


def test_accelerators_default_to_xla():
    for device in ("GPU", "gpu", "TPU"):
        for training in (True, False):
            assert fast_path.default_jit_compile(device, training=training) is True


def test_cpus_train_without_xla_and_predict_with_it_only_without_avx512():
    for avx512 in (True, False):
        assert fast_path.default_jit_compile("CPU", training=True, cpu_avx512=avx512) is False
    assert fast_path.default_jit_compile("cpu", training=False, cpu_avx512=False) is True
    assert fast_path.default_jit_compile("CPU", training=False, cpu_avx512=True) is False


def test_this_machines_avx512_is_read_from_cpuinfo():
    with open("/proc/cpuinfo") as f:
        flags = next((line for line in f if line.startswith("flags")), "")
    assert fast_path.cpu_has_avx512() is (" avx512f " in flags.replace("\n", " ") + " ")
    assert fast_path.default_jit_compile("CPU", training=False) is (not fast_path.cpu_has_avx512())


def test_unknown_device_is_an_error():
    with pytest.raises(ValueError, match="Unknown device type 'NPU'"):
        fast_path.default_jit_compile("NPU", training=True)
