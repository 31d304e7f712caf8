"""Fuzz: random bytes and damaged copies of a real clip and image, as one batch, end in clean
one-line errors (or, where the damage spared enough, an output); never a crash or a traceback."""

import json
import random

from conftest import error_lines, files_under, smooth_frames
from PIL import Image

from vgpnn.video import write_video

CASES = 60


def damaged(data: bytes, rng: random.Random) -> bytes:
    """One of: bytes overwritten, cut short, or junk inserted."""
    data = bytearray(data)
    kind = rng.randrange(3)
    if kind == 0:
        for _ in range(rng.randrange(1, 40)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 1:
        data = data[:rng.randrange(len(data))]
    else:
        at = rng.randrange(len(data))
        data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
    return bytes(data)


def test_random_and_damaged_inputs_fail_cleanly(tmp_path, cli, capfd):
    rng = random.Random(20240611)
    real = {".mp4": write_video(tmp_path / "real.mp4", smooth_frames(6, 24, 32), 25).read_bytes()}
    Image.fromarray(smooth_frames(1, 24, 32)[0]).save(tmp_path / "real.png")
    real[".png"] = (tmp_path / "real.png").read_bytes()
    fuzz = tmp_path / "fuzz"
    fuzz.mkdir()
    for index in range(CASES):
        extension = (".mp4", ".png")[index % 2]
        (fuzz / f"damaged{index}{extension}").write_bytes(damaged(real[extension], rng))
    for index, extension in enumerate((".mp4", ".mov", ".gif", ".png", ".jpg", ".mkv")):
        (fuzz / f"random{index}{extension}").write_bytes(rng.randbytes(rng.randrange(1, 4000)))

    out, report = tmp_path / "out", tmp_path / "r.json"
    result = cli("generate", fuzz, "--seed", 0, "-o", out, "-q", "--report", report,
                 "--iterations", "1", "--size", "16", "--max-frames", "4")
    assert result.exit_code in (0, 1) and "Traceback" not in result.output
    records = json.loads(report.read_text())["records"]
    failed = [r for r in records if r["status"] == "failed"]
    lines = error_lines(result)
    assert len(lines) == len(failed) + 1  # one line per failed input, then the summary
    for line, record in zip(lines, failed):
        assert line.startswith("error: cannot read") and record["input"] in line
        assert "internal error" not in line
    written = [r["output"] for r in records if r["status"] == "written"]
    assert sorted(files_under(out)) == sorted(path.rsplit("/", 1)[1] for path in written)
    assert len(failed) > CASES // 2  # the damage does damage
    assert capfd.readouterr().err == ""  # nothing from ffmpeg's own logging, beside our lines
