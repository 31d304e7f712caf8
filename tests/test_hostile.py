"""Hostile inputs: each ends in one clear line, the right exit status, no traceback and no
partial output, and a batch that holds them still makes the good inputs' outputs."""

from fractions import Fraction

import av
import numpy as np
import pytest
from conftest import FAST, error_lines, files_under, smooth_frames
from PIL import Image

from vgpnn import memory, synthesis
from vgpnn.video import read_clip, write_video


def run_one(cli, tmp_path, source, *extra):
    """generate on one input into tmp_path/out, quietly."""
    return cli("generate", source, "--seed", 0, "-o", tmp_path / "out", "-q", *FAST, *extra)


def assert_clean_failure(result, tmp_path, *words, status=1):
    lines = error_lines(result)
    assert result.exit_code == status, result.output
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ") and "Traceback" not in result.output
    assert "internal error" not in lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    out = tmp_path / "out"
    assert not out.exists() or files_under(out) == []
    return lines[0]


# --- one builder per hostile input; each returns the path to give as INPUT ---------------------


def missing(tmp_path, make_video):
    return tmp_path / "missing.mp4"


def folder_without_frames(tmp_path, make_video):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "notes.txt").write_text("no frames here")
    return folder


def zero_bytes(tmp_path, make_video):
    path = tmp_path / "zero.mp4"
    path.write_bytes(b"")
    return path


def text_named_mp4(tmp_path, make_video):
    path = tmp_path / "text.mp4"
    path.write_text("this is not a video\n" * 20)
    return path


def truncated_mp4(tmp_path, make_video):
    whole = make_video(tmp_path / "whole.mp4").read_bytes()
    path = tmp_path / "truncated.mp4"
    path.write_bytes(whole[: len(whole) // 2])
    return path


def mixed_size_frames(tmp_path, make_video):
    folder = tmp_path / "mixed"
    write_video(folder, smooth_frames(4, 24, 32), None)
    Image.fromarray(smooth_frames(1, 32, 24)[0]).save(folder / "0005.png")
    return folder


def frames_smaller_than_a_patch(tmp_path, make_video):
    return make_video(tmp_path / "tiny.mp4", frames=8, height=4, width=4)


FAILURES = [
    (missing, ["missing.mp4", "no such file or folder"]),
    (folder_without_frames, ["empty", "has no image frames", "expected files ending in"]),
    (zero_bytes, ["zero.mp4", "the file is empty (0 bytes)", "expected a video file"]),
    (text_named_mp4, ["text.mp4", "not a video ffmpeg can decode", "expected a video file"]),
    (truncated_mp4, ["truncated.mp4", "truncated or damaged", "expected a complete video file"]),
    (mixed_size_frames, ["mixed", "0005.png' is 32x24", "all frames must have the same size"]),
    (frames_smaller_than_a_patch, ["tiny.mp4", "patch 7x7", "larger than the working frame 4x4"]),
]


@pytest.mark.parametrize("build, words", FAILURES, ids=[f.__name__ for f, _ in FAILURES])
def test_unusable_input_is_one_line_and_exit_1(tmp_path, make_video, cli, build, words):
    assert_clean_failure(run_one(cli, tmp_path, build(tmp_path, make_video)), tmp_path, *words)


def test_a_batch_of_every_unusable_input_still_makes_the_good_one(tmp_path, make_video, cli):
    bad = []
    for index, (build, _) in enumerate(FAILURES):
        folder = tmp_path / f"case{index}"  # each in its own folder, as the builders reuse names
        folder.mkdir()
        bad.append(build(folder, make_video))
    good = make_video(tmp_path / "good" / "good.mp4")
    result = cli("generate", *bad, good, "--seed", 0, "-o", tmp_path / "out" / "{parent}_{name}_{seed}.{ext}",
                 "-q", *FAST)
    assert result.exit_code == 1
    lines = error_lines(result)
    assert len(lines) == len(bad) + 1 and lines[-1].startswith(f"{len(bad) + 1} inputs: 1 done")
    for path, line in zip(bad, lines):
        assert line.startswith("error: ") and path.name in line and "internal error" not in line
    assert files_under(tmp_path / "out") == ["good_good_0.mp4"]


def test_one_frame_video_gives_a_one_frame_output(tmp_path, make_video, cli):
    source = make_video(tmp_path / "one.mp4", frames=1)
    assert run_one(cli, tmp_path, source).exit_code == 0
    assert read_clip(tmp_path / "out" / "one_0.mp4").frames.shape == (1, 24, 32, 3)


def test_odd_sizes_work_videos_lose_the_odd_row_images_keep_it(tmp_path, make_video, cli):
    video = make_video(tmp_path / "odd.mp4", height=25, width=33)  # stored padded to 26x34
    image = tmp_path / "odd.png"
    Image.fromarray(smooth_frames(1, 25, 33)[0]).save(image)
    folder = tmp_path / "oddframes"
    write_video(folder, smooth_frames(4, 25, 33), None)
    for source in (video, image, folder):
        assert run_one(cli, tmp_path, source).exit_code == 0
    assert read_clip(tmp_path / "out" / "odd_0.mp4").frames.shape == (8, 26, 34, 3)
    assert read_clip(tmp_path / "out" / "odd_0.png").frames.shape == (1, 25, 33, 3)
    assert read_clip(tmp_path / "out" / "oddframes_0.mp4").frames.shape == (4, 24, 32, 3)


@pytest.mark.parametrize("mode", ["L", "RGBA", "I;16"])
def test_grayscale_rgba_and_16_bit_png_frames(tmp_path, cli, mode):
    folder = tmp_path / mode.replace(";", "")
    folder.mkdir()
    frames = smooth_frames(4, 24, 32)
    for index, frame in enumerate(frames, start=1):
        if mode == "L":
            image = Image.fromarray(frame[..., 0])
        elif mode == "RGBA":
            image = Image.fromarray(np.dstack([frame, np.full(frame.shape[:2], 128, np.uint8)]))
        else:
            image = Image.fromarray(frame[..., 1].astype(np.uint16) * 257)  # full 16-bit range
        image.save(folder / f"{index}.png")
        assert Image.open(folder / f"{index}.png").mode == mode
    assert run_one(cli, tmp_path, folder).exit_code == 0
    out = read_clip(tmp_path / "out" / f"{folder.name}_0.mp4").frames
    assert out.shape == (4, 24, 32, 3) and out.std() > 10  # not crushed to black or white


def test_variable_frame_rate_file_is_read_with_a_notice(tmp_path, cli):
    path = tmp_path / "vfr.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        time_ms = 0
        for index, frame in enumerate(smooth_frames(8, 24, 32)):
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts, video_frame.time_base = time_ms, Fraction(1, 1000)
            time_ms += 33 if index % 2 else 100
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode(None))
    result = cli("generate", path, "--seed", 0, "-o", tmp_path / "out", *FAST)
    assert result.exit_code == 0, result.output
    assert "variable frame rate" in result.stderr
    assert len(read_clip(tmp_path / "out" / "vfr_0.mp4").frames) == 8


def test_a_job_too_big_for_memory_is_refused_before_any_work(tmp_path, make_video, cli, monkeypatch):
    source = make_video(tmp_path / "big.mp4")

    def no_synthesis(*args, **kwargs):
        raise AssertionError("synthesis started")

    monkeypatch.setattr(memory, "available_cpu_bytes", lambda: 100 * 2**20)
    monkeypatch.setattr(synthesis, "synthesize", no_synthesis)
    monkeypatch.setattr("vgpnn.apps.variations.synthesize", no_synthesis)
    line = assert_clean_failure(run_one(cli, tmp_path, source), tmp_path, "big.mp4")
    assert "needs about 0.5 GiB on this machine (RAM) but 0.1 GiB is free" in line and "--working-size" in line


def test_output_folder_that_cannot_be_a_folder(tmp_path, make_video, cli):
    source = make_video(tmp_path / "clip.mp4")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    result = cli("generate", source, "--seed", 0, "-o", blocker / "out", "-q", *FAST)
    lines = error_lines(result)
    assert result.exit_code == 1 and len(lines) == 1
    assert "is not a folder" in lines[0] and "expected -o to name a folder" in lines[0]
    assert blocker.read_text() == "a file where a folder should be"


def test_read_only_output_folder(tmp_path, make_video, cli):
    import os
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    source = make_video(tmp_path / "clip.mp4")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = cli("generate", source, "--seed", 0, "-o", locked, "-q", *FAST)
        assert result.exit_code == 1 and "is not writable" in error_lines(result)[0]
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


def test_existing_output_without_overwrite(tmp_path, make_video, cli):
    source = make_video(tmp_path / "clip.mp4")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "clip_0.mp4").write_bytes(b"precious")
    result = run_one(cli, tmp_path, source)
    lines = error_lines(result)
    assert result.exit_code == 1 and len(lines) == 1
    assert "clip_0.mp4' exists; pass -y/--overwrite to replace it or --skip-existing" in lines[0]
    assert (tmp_path / "out" / "clip_0.mp4").read_bytes() == b"precious"


def test_output_path_equal_to_the_input(tmp_path, make_video, cli):
    source = make_video(tmp_path / "clip.mp4")
    before = source.read_bytes()
    result = cli("generate", source, "--seed", 0, "-o", source, "-y", "-q", *FAST)
    lines = error_lines(result)
    assert result.exit_code == 1 and len(lines) == 1 and "is the input itself" in lines[0]
    assert source.read_bytes() == before


def test_usage_errors_exit_2_before_any_input_is_read(tmp_path, make_video, cli):
    source = make_video(tmp_path / "clip.mp4")
    for args in (["-o", tmp_path / "{nam}.mp4"], ["--preview", tmp_path / "{seed}.png"], ["--patch-size", "3x7"]):
        result = cli("generate", source, "--seed", 0, *args, "-q")
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert files_under(tmp_path) == ["clip.mp4"]


def test_truncated_mp4_whose_start_decodes_is_used_with_a_notice(tmp_path, cli):
    # moov first (as cameras and web encoders write): the frames before the cut still decode.
    whole = tmp_path / "whole.mp4"
    with av.open(str(whole), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
        stream.options = {"crf": "0"}  # large frames, so the cut falls between them
        for frame in smooth_frames(12, 24, 32):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    result = cli("generate", cut, "--seed", 0, "-o", tmp_path / "out", *FAST)
    assert result.exit_code == 0, result.output
    decoded = len(read_clip(tmp_path / "out" / "cut_0.mp4").frames)
    assert 0 < decoded < 12
    assert f"looks truncated or damaged: {decoded} of the 12 frames it lists could be decoded" in result.stderr


def test_a_whole_clip_too_big_to_hold_is_refused_from_its_headers_before_decoding(tmp_path, make_video, cli,
                                                                                 monkeypatch):
    source = make_video(tmp_path / "long.mp4")
    monkeypatch.setattr(memory, "available_cpu_bytes", lambda: 100 * 2**20)

    def no_decoding(*args, **kwargs):
        raise AssertionError("the clip was decoded")

    monkeypatch.setattr("vgpnn.cli.job.read_clip", no_decoding)
    line = assert_clean_failure(run_one(cli, tmp_path, source, "--max-frames", "0"), tmp_path, "long.mp4")
    assert "but 0.1 GiB is free" in line


def test_preview_that_would_overwrite_an_output_is_a_usage_error(tmp_path, make_video, cli):
    source = make_video(tmp_path / "clip.mp4")
    result = cli("generate", source, "--seed", 0, "-o", tmp_path / "x.gif", "--preview", tmp_path / "x.gif", "-q")
    assert result.exit_code == 2 and "the preview and an output" in result.output
    assert files_under(tmp_path) == ["clip.mp4"]
