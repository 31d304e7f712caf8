"""Where outputs go: ``-o`` as a file, a folder, or a name template.

Template fields: {name} (input file name without extension), {seed}, {index} (0-based),
{ext} (output extension without the dot), {file} (input file name with its extension) and
{parent} (name of the input's folder); the last two tell apart inputs of a batch that share a
name. Fields are plain: ``{name:>8}``, ``{seed!r}`` or ``{name[0]}`` are refused. Rules:
- ``-o`` with a writable extension (.mp4, .gif, .png, ...) is a file name (fields allowed);
  with several outputs and no {seed} or {index} in it, ``_{seed}`` goes before the extension;
- anything else is a folder that receives ``{name}_{seed}.{ext}`` (each command may name
  its outputs differently there);
- ``--format frames`` writes folders of PNG frames instead of files.
"""

from __future__ import annotations

import os
import string
from pathlib import Path

from .errors import ConfigError, OutputError
from .video import GIF_EXTENSION, IMAGE_EXTENSIONS, VIDEO_OUTPUT_EXTENSIONS

FIELDS = ("name", "seed", "index", "ext", "file", "parent")
FORMATS = ("mp4", "gif", "png", "frames")
_FILE_EXTENSIONS = (*VIDEO_OUTPUT_EXTENSIONS, GIF_EXTENSION, *IMAGE_EXTENSIONS)


def default_format(input_kind: str, input_path: Path) -> str:
    """Images stay images (same extension); videos and frame folders become mp4."""
    if input_kind == "image":
        return input_path.suffix.lower().lstrip(".")
    return "mp4"


def template_fields(template: str, allowed: tuple[str, ...], what: str) -> set[str]:
    """The fields of ``template`` (described as ``what`` in errors), each one of ``allowed``.
    Only plain ``{field}``: a format spec, a conversion, an index or an attribute would let a
    name run format() on our values (``{name:d}`` fails only once an output is due, ``{seed!r}``
    or ``{name:>300}`` silently change names)."""
    expected = ", ".join("{" + f + "}" for f in allowed)
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise ConfigError(f"bad {what} '{template}': {error}; expected plain fields such as "
                          f"{expected}") from error
    names = set()
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if spec or conversion or (field and not field.isidentifier()):
            written = "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            raise ConfigError(f"field '{written}' in {what} '{template}': only plain fields are allowed, "
                              f"without format spec, conversion, index or attribute; expected {expected}")
        names.add(field)
    unknown = names - set(allowed)
    if unknown:
        raise ConfigError(f"unknown field(s) {', '.join('{' + n + '}' for n in sorted(unknown))} in "
                          f"{what} '{template}'; expected {expected}")
    return names


def _check_template(template: str) -> None:
    template_fields(template, FIELDS, "output template")


def plan_outputs(output: str | None, input_path: Path, seeds: list[int], output_format: str,
                 default_stem: str = "{name}_{seed}") -> list[Path]:
    """One output path per seed, following the rules in this module's docstring;
    ``default_stem`` names the outputs when ``-o`` is a folder."""
    if output_format not in FORMATS and ("." + output_format) not in _FILE_EXTENSIONS:
        raise OutputError(f"unknown output format '{output_format}'; expected one of {', '.join(FORMATS)}")
    name = input_path.stem if input_path.suffix else input_path.name
    ext = "" if output_format == "frames" else output_format
    text = output if output is not None else "."
    as_file = Path(text.replace("{ext}", ext or "mp4")).suffix.lower() in _FILE_EXTENSIONS
    if as_file:
        template = text
        if len(seeds) > 1 and "{seed}" not in template and "{index}" not in template:
            stem, dot, suffix = template.rpartition(".")
            template = f"{stem}_{{seed}}{dot}{suffix}"
    else:
        template = str(Path(text) / (f"{default_stem}.{{ext}}" if ext else default_stem))
    _check_template(template)
    paths = [Path(template.format(name=name, seed=seed, index=index, ext=ext, file=input_path.name,
                                  parent=_real_parent_name(input_path)))
             for index, seed in enumerate(seeds)]
    if len(set(paths)) != len(paths):
        raise OutputError(f"output template '{template}' gives the same name to several outputs; "
                          "add {seed} or {index}")
    return paths


def _real_parent_name(path: Path) -> str:
    """The name of the folder ``path`` really is in, links followed. ``os.path.realpath`` rather
    than ``Path.resolve``: on a loop of symbolic links it stops where it is instead of raising."""
    return Path(os.path.realpath(path)).parent.name
