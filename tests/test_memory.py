"""The up-front GPU memory estimate: conservative against measured peaks, and a clear refusal."""

import pytest

from vgpnn.errors import ResourceError
from vgpnn.memory import check_fits, estimate_gpu_bytes

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
