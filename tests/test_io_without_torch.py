"""The video I/O layer works where torch, numba and faiss are missing: reading, writing,
probing and naming outputs must not import them (the CI leg on the newest Python relies on it)."""

import subprocess
import sys
import textwrap
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import sys
    for name in ("torch", "numba", "faiss", "triton"):
        sys.modules[name] = None  # any import of them now fails
    from fractions import Fraction
    import numpy as np
    import vgpnn
    from vgpnn.video import probe_clip, read_clip, write_video
    from vgpnn.naming import plan_outputs
    from vgpnn.inputs import expand_inputs

    folder = sys.argv[1]
    frames = np.random.default_rng(0).integers(0, 256, (5, 24, 32, 3), dtype=np.uint8)
    path = write_video(folder + "/clip.mp4", frames, Fraction(12))
    clip = read_clip(path)
    assert clip.frames.shape == (5, 24, 32, 3), clip.frames.shape
    assert clip.fps == 12, clip.fps
    assert probe_clip(path)["frames"] == 5
    assert vgpnn.read_clip is read_clip
    assert [p.name for p in expand_inputs([folder]).inputs] == ["clip.mp4"]
    assert plan_outputs(None, path, [3], "mp4")[0].name == "clip_3.mp4"
    print("ok")
""")


def test_video_io_imports_and_runs_without_torch(tmp_path):
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=REPOSITORY,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
