"""Which clips a command line names: files, folders and glob patterns, expanded to a list.

Rules (the CLI's batch runner relies on them):
1. An existing path is taken as it is, even when its name holds glob characters.
2. A folder holding at least one video file is a *batch*: each video and image file directly in
   it is one input (natural order); other files and subfolders are listed as ignored.
   A folder holding no video file is one clip: its numbered image frames (or an error later
   when it has none).
3. A name that does not exist but holds ``*``, ``?`` or ``[`` is a glob pattern (``**``
   recurses), expanded here so that shells that do not expand globs (Windows) behave alike;
   each match is expanded by rules 1 and 2. A pattern that matches nothing stays as it is, so
   it fails like a missing file, in its turn.
4. Anything else (a missing file) is kept, to fail in its turn with a clear message; so is a
   symbolic link that loops (``ln -s a b; ln -s b a``), named directly, matched by a pattern or
   with a video or image extension in a batch folder (see :func:`link_loop`).
The same file named twice is processed once.
"""

from __future__ import annotations

import errno
import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .video import IMAGE_EXTENSIONS, is_animated_image

# What ffmpeg commonly decodes; used only to tell a folder of clips from a folder of frames.
VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".gif", ".mpg", ".mpeg",
                    ".ts", ".mts", ".m2ts", ".wmv", ".flv", ".3gp", ".ogv")
_GLOB_CHARACTERS = re.compile(r"[*?\[]")


@dataclass
class Expansion:
    inputs: list[Path] = field(default_factory=list)  # in the order given, folders in natural order
    ignored: list[Path] = field(default_factory=list)  # files and subfolders of batch folders left out


def input_kind(path: Path) -> str:
    """'frames', 'image' or 'video', from the path (and an image's header: an animated PNG or
    WebP is a video), as ``read_clip`` will treat it."""
    if path.is_dir():
        return "frames"
    if path.suffix.lower() in IMAGE_EXTENSIONS and not is_animated_image(path):
        return "image"
    return "video"


def link_loop(path: Path) -> bool:
    """True when following ``path`` goes round a loop of symbolic links. Such a path is neither
    a file nor a folder to pathlib (and ``Path.resolve`` raises on it), so it is asked for by
    name: it is an input that fails with "too many levels of symbolic links"."""
    try:
        os.stat(path)
    except OSError as error:
        return error.errno == errno.ELOOP
    return False


def is_batch_folder(folder: Path) -> bool:
    return any(_is_video_file(entry) for entry in _entries(folder))


def expand_inputs(specs: list[str]) -> Expansion:
    """The inputs named by ``specs`` (paths or patterns), following the module's rules."""
    expansion = Expansion()
    seen = set()
    for spec in specs:
        for path in _expand(str(spec), expansion.ignored):
            key = os.path.realpath(path)
            if key not in seen:
                seen.add(key)
                expansion.inputs.append(path)
    return expansion


def _expand(spec: str, ignored: list[Path]) -> list[Path]:
    path = Path(spec)
    if not (path.exists() or path.is_symlink()) and _GLOB_CHARACTERS.search(spec):
        matches = sorted(glob.glob(spec, recursive=True), key=_natural_key)
        if matches:
            return [member for match in matches for member in _expand_existing(Path(match), ignored)]
    return _expand_existing(path, ignored)


def _expand_existing(path: Path, ignored: list[Path]) -> list[Path]:
    if not path.is_dir() or not is_batch_folder(path):
        return [path]
    members = []
    for entry in sorted(_entries(path), key=_natural_key):
        suffix = entry.suffix.lower()
        if _is_video_file(entry) or (entry.is_file() and suffix in IMAGE_EXTENSIONS):
            members.append(entry)
        elif suffix in (*VIDEO_EXTENSIONS, *IMAGE_EXTENSIONS) and link_loop(entry):
            members.append(entry)  # meant as an input: it fails as one, in its turn
        else:
            ignored.append(entry)
    return members


def _entries(folder: Path) -> list[Path]:
    try:
        # Hidden entries are never inputs: '._clip.mp4' resource forks, our own partial files.
        return [entry for entry in folder.iterdir() if not entry.name.startswith(".")]
    except OSError:
        return []  # read_clip reports the folder as unreadable, in its turn


def _is_video_file(entry: Path) -> bool:
    return entry.suffix.lower() in VIDEO_EXTENSIONS and entry.is_file()


def _natural_key(path) -> list:
    parts = re.split(r"(\d+)", str(path).lower())
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in parts]
