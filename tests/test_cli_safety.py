"""The command line against hostile option values, environments and file systems: each case is
refused with one line before any work, or survived without a traceback."""

import os
import stat
from fractions import Fraction

import pytest

from conftest import FAST, error_lines, files_under, smooth_frames

@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path, monkeypatch):
    """Outputs that a wrongly accepted option would write land here, not in the repository."""
    monkeypatch.chdir(tmp_path)


FLOAT_OPTIONS = [
    ("generate", "--noise"), ("generate", "--pyramid-factor"), ("retarget", "--width-scale"),
    ("retarget", "--height-scale"), ("retarget", "--time-scale"), ("retarget", "--duration"),
    ("inpaint", "--noise"), ("analogy", "--noise"),
]


def _command_line(command, tmp_path, source):
    """The arguments before the option under test: each command's required ones."""
    if command == "inpaint":
        return [command, source, "--mask", source]
    if command == "analogy":
        return [command, source, source]
    return [command, source]


def _assert_usage_error(result, tmp_path, *words):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    error = [line for line in error_lines(result) if line.startswith("Error:")]
    assert len(error) == 1, result.output
    for word in words:
        assert word in error[0], error[0]
    assert files_under(tmp_path) == ["clip.mp4"]  # nothing read, nothing written
    return error[0]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "1e400"])
@pytest.mark.parametrize("command,option", FLOAT_OPTIONS)
def test_nan_and_inf_are_refused_by_every_float_option(tmp_path, make_video, cli, command, option, value):
    source = make_video(tmp_path / "clip.mp4")
    result = cli(*_command_line(command, tmp_path, source), option, value, "--seed", 0)
    _assert_usage_error(result, tmp_path, option, "not a finite number")


@pytest.mark.parametrize("aspect", ["nan:1", "inf:1", "1:nan", "1:inf"])
def test_nan_and_inf_are_refused_in_an_aspect_ratio(tmp_path, make_video, cli, aspect):
    source = make_video(tmp_path / "clip.mp4")
    result = cli("retarget", source, "--aspect", aspect)
    _assert_usage_error(result, tmp_path, "--aspect", "expected two positive numbers W:H", aspect)


@pytest.mark.parametrize("args", [
    ["--seed", "99999999999999999999999"], ["--seed", str(2**64)],
    ["--seed", str(2**64 - 1), "-n", "2"], ["-n", "3", "--seed", str(2**64 - 2)],
])
def test_seeds_beyond_64_bits_are_refused_with_the_allowed_range(tmp_path, make_video, cli, args):
    source = make_video(tmp_path / "clip.mp4")
    line = _assert_usage_error(cli("generate", source, *args, *FAST), tmp_path)
    assert str(2**64 - 1) in line


def test_the_largest_seed_is_usable(tmp_path, make_video, cli):
    source = make_video(tmp_path / "clip.mp4", frames=4, height=16, width=16)
    result = cli("generate", source, "--seed", 2**64 - 2, "-n", 2, "-o", tmp_path / "out", "-q", *FAST)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"clip_{2**64 - 2}.mp4", f"clip_{2**64 - 1}.mp4"]


@pytest.mark.parametrize("field", ["{name:d}", "{seed!r}", "{name[0]}", "{name.x}", "{seed:>300}", "{name!s:x}"])
def test_format_specs_and_conversions_in_an_output_template_are_refused(tmp_path, make_video, cli, field):
    source = make_video(tmp_path / "clip.mp4")
    result = cli("generate", source, "--seed", 0, "-o", tmp_path / f"{field}.mp4", *FAST)
    _assert_usage_error(result, tmp_path, f"'{field}'", "only plain fields are allowed")


@pytest.mark.parametrize("field", ["{name:d}", "{file!r}", "{parent[0]}", "{name.upper}"])
def test_format_specs_and_conversions_in_a_preview_template_are_refused(tmp_path, make_video, cli, field):
    source = make_video(tmp_path / "clip.mp4")
    result = cli("generate", source, "--seed", 0, "-o", tmp_path / "out.mp4", "--preview",
                 tmp_path / f"{field}.png", *FAST)
    _assert_usage_error(result, tmp_path, f"'{field}'", "only plain fields are allowed", "--preview")


# -- the report follows the rules outputs follow ------------------------------------------------

def _generate(cli, tmp_path, source, *args):
    return cli("generate", source, "--seed", 0, "-o", tmp_path / "out", "-q", *args, *FAST)


def test_an_existing_report_is_kept_without_y_and_replaced_with_y_or_when_resuming(tmp_path, make_video, cli):
    source = make_video(tmp_path / "clip.mp4", frames=4, height=16, width=16)
    report = tmp_path / "run.json"
    report.write_text("precious")
    result = _generate(cli, tmp_path, source, "--report", report)
    lines = error_lines(result)
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert f"--report '{report}' exists; pass -y/--overwrite to replace it" in lines[0]
    assert report.read_text() == "precious" and not (tmp_path / "out").exists()
    for flag in ("-y", "--skip-existing"):
        report.write_text("old")
        assert _generate(cli, tmp_path, source, "--report", report, flag).exit_code == 0
        assert '"status": "complete"' in report.read_text()


def test_a_report_that_is_a_symbolic_link_is_refused_even_with_y(tmp_path, make_video, cli):
    source = make_video(tmp_path / "clip.mp4", frames=4, height=16, width=16)
    target, link = tmp_path / "elsewhere.json", tmp_path / "run.json"
    target.write_text("precious")
    link.symlink_to(target.name)
    for args in ([], ["-y"]):
        result = _generate(cli, tmp_path, source, "--report", link, *args)
        lines = error_lines(result)
        assert result.exit_code == 1 and len(lines) == 1, result.output
        assert "is a symbolic link" in lines[0] and "expected the path of a regular file" in lines[0]
        assert link.is_symlink() and target.read_text() == "precious" and not (tmp_path / "out").exists()


def test_a_report_that_is_a_pipe_is_refused(tmp_path, make_video, cli):
    # A pipe stands for /dev/stdout and other devices (which a test must not risk replacing).
    source = make_video(tmp_path / "clip.mp4", frames=4, height=16, width=16)
    pipe = tmp_path / "run.json"
    os.mkfifo(pipe)
    result = _generate(cli, tmp_path, source, "--report", pipe, "-y")
    lines = error_lines(result)
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert "is a pipe, not a regular file" in lines[0]
    assert stat.S_ISFIFO(os.lstat(pipe).st_mode) and not (tmp_path / "out").exists()


def test_the_report_is_written_through_a_temporary_of_its_own(tmp_path, make_video, cli, monkeypatch):
    # Two runs with reports side by side once shared one temporary name ('.run.json.partial').
    import vgpnn.video
    seen = []
    replace = vgpnn.video.os.replace

    def spy(source, destination):
        seen.append((os.path.basename(source), os.path.basename(destination)))
        return replace(source, destination)

    monkeypatch.setattr(vgpnn.video.os, "replace", spy)
    source = make_video(tmp_path / "clip.mp4", frames=4, height=16, width=16)
    assert _generate(cli, tmp_path, source, "--report", tmp_path / "run.json").exit_code == 0
    temporaries = {name for name, final in seen if final == "run.json"}
    assert temporaries and all(name.startswith(".run.partial-") and name.endswith(".json") for name in temporaries)
    assert files_under(tmp_path) == ["clip.mp4", "out", "out/clip_0.mp4", "run.json"]


# -- symbolic link loops among the inputs -------------------------------------------------------

def _loop(folder, name="a.mp4", other="b.mp4"):
    (folder / name).symlink_to(other)
    (folder / other).symlink_to(name)
    return folder / name


@pytest.mark.parametrize("where", ["named", "in a folder", "matched by a pattern"])
def test_a_symbolic_link_loop_fails_as_one_input_and_the_others_run(tmp_path, make_video, cli, where):
    clips = tmp_path / "clips"
    good = make_video(clips / "good.mp4", frames=4, height=16, width=16)
    loop = _loop(clips)
    specs = {"named": [loop, good], "in a folder": [clips], "matched by a pattern": [clips / "*.mp4"]}[where]
    result = cli("generate", *specs, "--seed", 0, "-o", tmp_path / "out", "-q", *FAST)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    failures = [line for line in error_lines(result) if "too many levels of symbolic links" in line]
    assert len(failures) in (1, 2)  # a folder or pattern holds both links of the loop
    assert all(line.startswith("error: ") and "cannot read" in line for line in failures)
    assert (tmp_path / "out" / "good_0.mp4").is_file()


# -- names as long as the file system allows ----------------------------------------------------

def _name_max(folder):
    return os.pathconf(folder, "PC_NAME_MAX")


def _long_name(folder, suffix, spare=5):
    return "n" * (_name_max(folder) - spare - len(suffix)) + suffix


@pytest.mark.parametrize("suffix", [".mp4", ".gif", ".png", ""])
def test_write_video_takes_names_near_the_limit_and_cleans_up_their_stale_temporaries(tmp_path, suffix):
    from vgpnn.video import _partial_name, write_video
    target = tmp_path / _long_name(tmp_path, suffix)
    frames = smooth_frames(1 if suffix == ".png" else 3, 16, 16)
    stale = _partial_name(target, suffix).name.replace(f"-{os.getpid()}-", "-999999999-")
    (tmp_path / stale).write_bytes(b"left by a writer killed outright")
    write_video(target, frames, Fraction(25))
    write_video(target, frames, Fraction(25), overwrite=True)
    assert os.listdir(tmp_path) == [target.name]


def test_an_output_name_too_long_for_the_file_system_is_refused_before_any_work(tmp_path, make_video, cli,
                                                                               monkeypatch):
    source = make_video(tmp_path / "clip.mp4")

    def no_synthesis(*args, **kwargs):
        raise AssertionError("synthesis started")

    monkeypatch.setattr("vgpnn.apps.generate.generate", no_synthesis)
    limit = _name_max(tmp_path)
    for output in (tmp_path / ("x" * (limit + 1) + ".mp4"), tmp_path / ("d" * (limit + 1)) / "x.mp4"):
        result = cli("generate", source, "--seed", 0, "-o", output, "-q", *FAST)
        lines = error_lines(result)
        assert result.exit_code == 1 and len(lines) == 1, result.output
        assert f"longer than the {limit} bytes a file name may have" in lines[0] and "internal error" not in lines[0]
    assert files_under(tmp_path) == ["clip.mp4"]


def test_an_output_name_near_the_limit_is_written(tmp_path, make_video, cli):
    source = make_video(tmp_path / "clip.mp4", frames=4, height=16, width=16)
    output = tmp_path / _long_name(tmp_path, ".mp4")
    result = cli("generate", source, "--seed", 0, "-o", output, "-q", *FAST)
    assert result.exit_code == 0, result.output
    assert files_under(tmp_path) == sorted(["clip.mp4", output.name])


# -- help texts say what the tool does ----------------------------------------------------------

def _help(cli, command):
    result = cli(command, "--help")
    assert result.exit_code == 0
    # Unwrapped; the wrapper may also break a line after the hyphen of an option's name.
    return " ".join(result.output.split()).replace("- ", "-")


@pytest.mark.parametrize("command,named", [
    ("retarget", "clip_9x16.mp4"), ("inpaint", "{name}_inpainted.{ext}, e.g. clip_inpainted.mp4"),
    ("analogy", "STRUCTURE_as_APPEARANCE.{ext} after the inputs' names, e.g. a_as_b.mp4"),
])
def test_help_of_faithful_commands_states_their_own_names_seed_and_noise(cli, command, named):
    text = _help(cli, command)
    assert named in text
    assert "named {name}_{seed}.{ext}" not in text
    assert "[default: none: no noise, one faithful output; giving a seed or -n above 1 adds noise]" in text
    assert "random, printed" not in text
    noise = "0.3" if command == "analogy" else "2.5"
    assert f"[default: {noise} with --seed or -n above 1, else 0: one faithful output]" in text
    if command == "analogy":
        assert "2.5" not in text


def test_help_of_generate_keeps_its_random_seed_and_noise(cli):
    text = _help(cli, "generate")
    assert "named {name}_{seed}.{ext}" in text and "[default: random, printed]" in text
    assert "on a 0..1 pixel scale [default: 2.5]" in text


def test_help_of_evaluate_says_max_frames_applies_to_the_outputs(cli):
    text = _help(cli, "evaluate")
    assert "each OUTPUT with the same --size and --max-frames, from its first frame" in text
    assert "all its frames" not in text and "section 7" not in text  # no document outside the repository


# -- library errors in the library's words, CLI errors in the CLI's -----------------------------

def test_write_video_names_its_own_argument_for_an_existing_output(tmp_path):
    from vgpnn import OutputError, write_video
    target = tmp_path / "out.mp4"
    target.write_bytes(b"precious")
    with pytest.raises(OutputError) as caught:
        write_video(target, smooth_frames(2, 16, 16), Fraction(25))
    assert str(caught.value) == f"'{target}' exists; pass overwrite=True to replace it"
    assert "-y" not in str(caught.value) and "--overwrite" not in str(caught.value)
    assert target.read_bytes() == b"precious"


def test_the_command_line_says_its_flag_for_the_same_error(tmp_path, make_video, cli, monkeypatch):
    # An output that appears after the runner's own check (another process wrote it): the
    # library's refusal reaches the user in the command line's words.
    import vgpnn.cli.job
    real_write = vgpnn.cli.job.write_video

    def someone_wrote_it_first(path, *args, **kwargs):
        path.write_bytes(b"precious")
        return real_write(path, *args, **kwargs)

    monkeypatch.setattr(vgpnn.cli.job, "write_video", someone_wrote_it_first)
    source = make_video(tmp_path / "clip.mp4", frames=4, height=16, width=16)
    output = tmp_path / "out.mp4"
    result = cli("generate", source, "--seed", 0, "-o", output, "-q", *FAST)
    lines = error_lines(result)
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert f"'{output}' exists; pass -y/--overwrite to replace it" in lines[0]
    assert "overwrite=True" not in lines[0]
    assert output.read_bytes() == b"precious"


# -- --version ----------------------------------------------------------------------------------

def test_version_names_every_component_and_the_device_one_per_line(cli, monkeypatch):
    import builtins
    import platform

    import torch

    import vgpnn
    real_import = builtins.__import__

    def without_triton(name, *args, **kwargs):
        if name == "triton" or name.startswith("triton."):
            raise ImportError("No module named 'triton'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_triton)
    monkeypatch.delitem(__import__("sys").modules, "triton", raising=False)
    result = cli("--version")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    starts = ["vgpnn ", "Python ", "torch ", "PyAV ", "FFmpeg ", "numba ", "faiss ", "triton ", "device "]
    assert [line.split(" ")[0] + " " for line in lines] == starts, result.output
    assert lines[0] == f"vgpnn {vgpnn.__version__}"
    assert lines[1] == f"Python {platform.python_version()}"
    assert lines[2].startswith(f"torch {torch.__version__} (") and ("CUDA" in lines[2])
    assert lines[7] == "triton not installed"
    assert lines[8].startswith(f"device {'cuda' if torch.cuda.is_available() else 'cpu'}")
