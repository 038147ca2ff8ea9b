"""The default XLA choice per device kind and job (albert_tf.modeling.fast_path)."""
import pytest

from albert_tf.modeling import fast_path

AVX2 = frozenset({"fma", "avx", "avx2"})
AVX512 = AVX2 | {"avx512f", "avx512bw"}


def test_accelerators_default_to_xla():
    for device in ("GPU", "gpu", "TPU"):
        for training in (True, False):
            assert fast_path.default_jit_compile(device, training=training) is True


def test_cpus_train_without_xla_and_predict_with_it_only_on_avx2_without_avx512():
    for cpu in (AVX2, AVX512, frozenset()):
        assert fast_path.default_jit_compile("CPU", training=True, cpu_flags=cpu) is False
    assert fast_path.default_jit_compile("cpu", training=False, cpu_flags=AVX2) is True
    assert fast_path.default_jit_compile("CPU", training=False, cpu_flags=AVX512) is False
    # Unmeasured kinds (ARM, flags not readable) keep the plain graph.
    assert fast_path.default_jit_compile("CPU", training=False, cpu_flags=frozenset()) is False


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx fma avx2\n\n"
                   "processor\t: 1\nflags\t\t: fpu sse2 avx fma avx2\n")
    assert fast_path.this_cpu_flags(str(x86)) == {"fpu", "sse2", "avx", "fma", "avx2"}
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd evtstrm aes sve\nCPU implementer\t: 0x41\n")
    assert fast_path.this_cpu_flags(str(arm)) == frozenset()
    assert fast_path.this_cpu_flags(str(tmp_path / "missing")) == frozenset()


def test_unknown_device_is_an_error():
    with pytest.raises(ValueError, match="Unknown device type 'NPU'"):
        fast_path.default_jit_compile("NPU", training=True)
