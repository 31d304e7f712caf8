"""Fixed-seed outputs of every application on tiny clips, to guard the synthesis loop against
unintended changes when it is restructured.

    python tests/regression_cases.py    # record tests/data/regression.npz (only when a change is intended)

``test_regression.py`` recomputes each case and asks for bit-identical frames. Floating-point
results can differ across CPUs, BLAS builds and library versions, so the file also records
where it was made; the test compares only on a matching platform.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import numpy as np

RECORD = Path(__file__).resolve().parent / "data" / "regression.npz"
# Run as a script, this checkout's vgpnn must be the one recorded, not an installed copy.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _smooth(frames, height, width, seed):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from conftest import smooth_frames  # the tests' own clip, imported as they import it
    return smooth_frames(frames, height, width, seed)


def fingerprint() -> str:
    import torch
    return " ".join((platform.machine(), platform.processor() or "-", _cpu_model(), f"torch {torch.__version__}",
                     f"numpy {np.__version__}", f"threads {torch.get_num_threads()}"))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "-"


def cases() -> dict:
    """name -> function returning the output frames (T, H, W, 3) uint8."""
    from vgpnn import SynthesisConfig, generate, GenerateOptions, retarget, RetargetOptions
    from vgpnn.apps.analogy import AnalogyOptions, analogy
    from vgpnn.apps.inpaint import InpaintOptions, inpaint

    clip = _smooth(10, 32, 48, 0)
    quiet = SynthesisConfig(noise_sigma=0, iterations=2)
    noisy = SynthesisConfig(iterations=2)
    hole = np.zeros(clip.shape[:3], bool)
    hole[:, 10:20, 16:30] = True
    return {
        "generate": lambda: generate(clip, noisy, GenerateOptions(seed=3, device="cpu"))[0],
        "retarget_narrower": lambda: retarget(clip, (10, 32, 36), quiet, RetargetOptions(device="cpu"))[0],
        "retarget_wider": lambda: retarget(clip, (10, 32, 64), quiet, RetargetOptions(device="cpu"))[0],
        "retarget_longer": lambda: retarget(clip, (16, 32, 48), quiet, RetargetOptions(device="cpu"))[0],
        "retarget_loop": lambda: retarget(clip, (12, 32, 48), quiet, RetargetOptions(loop=True, device="cpu"))[0],
        "inpaint": lambda: inpaint(clip, hole, quiet, InpaintOptions(device="cpu"))[0],
        "analogy": lambda: analogy(_smooth(10, 32, 48, 1), clip, quiet, AnalogyOptions(device="cpu"))[0],
    }


def main() -> None:
    import vgpnn
    assert Path(vgpnn.__file__).resolve().parents[1] == Path(__file__).resolve().parents[1], vgpnn.__file__
    outputs = {name: make() for name, make in cases().items()}
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(RECORD, fingerprint=np.array(fingerprint()), **outputs)
    print(f"recorded {len(outputs)} cases in {RECORD} ({fingerprint()})")


if __name__ == "__main__":
    main()
