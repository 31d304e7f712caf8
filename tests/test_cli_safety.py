"""The command line against hostile option values, environments and file systems: each case is
refused with one line before any work, or survived without a traceback."""

import pytest

from conftest import FAST, error_lines, files_under

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
