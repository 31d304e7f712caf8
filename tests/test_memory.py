"""The up-front memory estimates (GPU and CPU): conservative against measured peaks, and a clear refusal."""

import pytest
import torch

from vgpnn import memory
from vgpnn.errors import ResourceError
from vgpnn.memory import available_cpu_bytes, check_fits, check_memory, estimate_cpu_bytes, estimate_gpu_bytes

GIB = 2**30

# Peaks measured on an H100 with benchmarks/bench_speed.py: (frames, height, width), batch, GiB.
MEASURED = [((15, 144, 256), 1, 1.51), ((15, 360, 640), 1, 1.72), ((15, 720, 1280), 1, 4.37),
            ((30, 1080, 1920), 1, 14.39), ((15, 144, 256), 8, 6.32), ((15, 360, 640), 8, 8.36)]


@pytest.mark.parametrize("shape, batch, peak", MEASURED)
def test_estimate_is_at_or_above_the_measured_peak_and_not_far_above(shape, batch, peak):
    estimate = estimate_gpu_bytes(shape, shape, batch) / GIB
    assert peak <= estimate <= 1.5 * peak


def test_estimate_grows_with_size_and_batch():
    assert estimate_gpu_bytes((30, 1080, 1920), (30, 1080, 1920), 1) > estimate_gpu_bytes((15, 720, 1280), (15, 720, 1280), 1)
    assert estimate_gpu_bytes((15, 144, 256), (15, 144, 256), 4) > estimate_gpu_bytes((15, 144, 256), (15, 144, 256), 1)
    assert estimate_gpu_bytes((15, 144, 256), (30, 288, 512), 1) > estimate_gpu_bytes((15, 144, 256), (15, 144, 256), 1)


def test_a_job_that_does_not_fit_is_refused_with_both_figures():
    with pytest.raises(ResourceError, match=r"needs about 15\.4 GiB on cuda:0 but 8\.0 GiB is free"):
        check_fits(estimate_gpu_bytes((30, 1080, 1920), (30, 1080, 1920), 1), 8 * GIB, "cuda:0")
    check_fits(GIB, 2 * GIB, "cuda:0")  # fits: no error


# Peak resident memory measured on the 2-core development CPU: (frames, height, width), batch,
# PatchMatch used, GiB (vgpnn/memory.py's docstring).
MEASURED_CPU = [((15, 72, 128), 1, False, 0.48), ((15, 144, 256), 1, False, 0.66), ((30, 144, 256), 1, False, 0.91),
                ((20, 216, 384), 1, False, 1.22), ((15, 144, 256), 3, False, 0.82), ((15, 72, 128), 1, True, 1.08),
                ((15, 144, 256), 1, True, 2.22)]


@pytest.mark.parametrize("shape, batch, patchmatch, peak", MEASURED_CPU)
def test_cpu_estimate_is_at_or_above_the_measured_peak_and_not_far_above(shape, batch, patchmatch, peak):
    estimate = estimate_cpu_bytes(shape, shape, batch, patchmatch) / GIB
    assert peak <= estimate <= 1.7 * peak


def test_cpu_job_that_does_not_fit_the_available_memory_is_refused(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(memory, "available_cpu_bytes", lambda: 1 * GIB)
    with pytest.raises(ResourceError, match=r"needs about 1\.1 GiB on this machine \(RAM\) but 1\.0 GiB is free"):
        check_memory(cpu, (30, 144, 256), (30, 144, 256), 1)
    check_memory(cpu, (15, 72, 128), (15, 72, 128), 1)  # 0.6 GiB: fits
    monkeypatch.setattr(memory, "available_cpu_bytes", lambda: None)
    check_memory(cpu, (300, 1080, 1920), (300, 1080, 1920), 1)  # unknown: no refusal


def test_available_cpu_memory_is_read_on_linux():
    available = available_cpu_bytes()
    assert available is None or available > 0


def test_the_library_names_its_own_arguments_and_the_command_line_its_flags():
    from vgpnn.cli.common import cli_message
    with pytest.raises(ResourceError) as caught:
        check_fits(2 * GIB, GIB, "cpu")
    assert "short_side" in str(caught.value) and "--" not in str(caught.value)
    assert "--working-size" in cli_message(caught.value) and "short_side" not in cli_message(caught.value)
