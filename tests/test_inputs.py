"""How INPUT arguments become inputs: files, folders of clips, frame folders, globs."""

from pathlib import Path

from vgpnn.inputs import expand_inputs, input_kind


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def names(paths):
    return [p.name for p in paths]


def test_a_folder_with_videos_is_a_batch_in_natural_order_and_other_files_are_ignored(tmp_path):
    for name in ("clip10.mp4", "clip2.MOV", "still.png", "notes.txt", ".hidden.mp4"):
        touch(tmp_path / "batch" / name)
    (tmp_path / "batch" / "sub").mkdir()
    expansion = expand_inputs([str(tmp_path / "batch")])
    assert names(expansion.inputs) == ["clip2.MOV", "clip10.mp4", "still.png"]
    assert sorted(names(expansion.ignored)) == ["notes.txt", "sub"]


def test_a_folder_of_images_only_is_one_clip(tmp_path):
    for index in (1, 2, 10):
        touch(tmp_path / "frames" / f"{index}.png")
    expansion = expand_inputs([str(tmp_path / "frames")])
    assert expansion.inputs == [tmp_path / "frames"] and input_kind(expansion.inputs[0]) == "frames"


def test_globs_are_expanded_recursively_and_each_match_like_an_argument(tmp_path):
    touch(tmp_path / "a" / "x.mp4")
    touch(tmp_path / "a" / "deep" / "y.mp4")
    touch(tmp_path / "b" / "z.gif")
    assert names(expand_inputs([str(tmp_path / "**" / "*.mp4")]).inputs) == ["y.mp4", "x.mp4"]  # a/deep/ < a/x
    # Matched folders are batches in turn; their subfolders are not entered.
    expansion = expand_inputs([str(tmp_path / "[ab]")])
    assert names(expansion.inputs) == ["x.mp4", "z.gif"] and names(expansion.ignored) == ["deep"]


def test_an_existing_name_with_glob_characters_is_taken_as_it_is(tmp_path):
    odd = touch(tmp_path / "take[1].mp4")
    touch(tmp_path / "take1.mp4")
    assert expand_inputs([str(odd)]).inputs == [odd]


def test_missing_names_and_empty_patterns_are_kept_to_fail_in_their_turn(tmp_path):
    specs = [str(tmp_path / "gone.mp4"), str(tmp_path / "*.webm")]
    assert [str(p) for p in expand_inputs(specs).inputs] == specs


def test_the_same_file_twice_is_one_input(tmp_path):
    clip = touch(tmp_path / "c.mp4")
    assert expand_inputs([str(clip), str(tmp_path / "." / "c.mp4"), str(tmp_path / "*.mp4")]).inputs == [clip]


def test_kinds_from_the_path():
    assert input_kind(Path("a.MP4")) == "video" and input_kind(Path("a.JPG")) == "image"
