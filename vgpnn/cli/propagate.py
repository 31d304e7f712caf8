"""``vgpnn propagate``: carry an edit painted on one or a few keyframes through the whole clip."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..apps.keyframes import fit_keyframe, fit_mask
from ..device import DEVICES
from ..errors import InputError
from ..video import GIF_EXTENSION, read_clip
from . import main
from .batch import skip_existing_option
from .common import fail_cleanly
from .job import JobSettings, Plan, run_command
from .options import SharedOptions, output_options, working_size_options

SEARCH_NAME = "guided-window"  # the search backend named in reports
# vgpnn.apps.propagate.PropagateOptions' defaults, for the help: that module loads torch, which
# help must not (tests/test_startup.py checks both).
DEFAULT_PATCH_SIZE = 3
DEFAULT_TEMPORAL_WEIGHT = 0.02


def parse_keys(ctx, param, values):
    """``FRAME=IMAGE`` pairs -> {frame: Path}; a usage error for a malformed or repeated key."""
    keys: dict[int, Path] = {}
    for value in values:
        frame, equals, image = value.partition("=")
        try:
            index = int(frame)
        except ValueError:
            index = -1
        if not equals or not image or index < 0:
            raise click.BadParameter(f"expected FRAME=IMAGE with FRAME a frame number from 0, e.g. 0=painted.png; "
                                     f"got {value!r}", ctx=ctx, param=param)
        if index in keys:
            raise click.BadParameter(f"frame {index} is given twice ({keys[index]} and {image}); expected one "
                                     "image per keyframe", ctx=ctx, param=param)
        keys[index] = Path(image)
    return keys


@main.command()
@click.argument("clip_path", metavar="CLIP", type=click.Path(path_type=Path))
@click.option("--key", "keys", multiple=True, required=True, callback=parse_keys, metavar="FRAME=IMAGE",
              help="A keyframe: frame FRAME (counted from 0 after --start-frame) edited as IMAGE, at the "
                   "input's size or the working size. Repeat for several keyframes.")
@click.option("--mask", "mask_path", type=click.Path(path_type=Path), default=None, metavar="MASK",
              help="Edit only where MASK is white (non-zero; for a lossy video mask, brighter than half): an "
                   "image of the input's (or the working) size for every frame, or a video or frame folder with "
                   "one frame per input frame. Outside it the output is the input, pixel for pixel.")
@click.option("--patch-size", type=click.IntRange(min=1), default=DEFAULT_PATCH_SIZE, show_default=True,
              help="Rows and columns of a patch (odd).")
@click.option("--temporal-weight", type=click.FloatRange(min=0), default=DEFAULT_TEMPORAL_WEIGHT,
              show_default=True, help="How strongly each frame follows the previous output carried along the "
                                      "motion (higher: steadier, slower to take new content).")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True,
              help="Where to compute: auto uses a CUDA GPU when there is one.")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Recorded in the report; propagation has no randomness, so the output does not depend on it.")
@working_size_options(default_short_side=None, default_max_frames=0)
@output_options(default_name="{name}_propagated.{ext}, e.g. clip_propagated.mp4")
@skip_existing_option
@fail_cleanly
def propagate(clip_path, keys, mask_path, patch_size, temporal_weight, device, seed, short_side, max_frames,
              start_frame, output, output_format, overwrite, quiet, report, preview, skip_existing):
    """Carry the edit painted on one or a few keyframes of CLIP through every frame: the edit
    follows the motion (optical flow), parts that come into view are made of the keyframe's
    patches that look like them, and each frame follows the previous one (no flicker). Between
    two keyframes each frame mixes the results carried from both, by distance and by how well
    each explains the frame. Works at the input's resolution unless --working-size says otherwise.

    \b
    Examples:
      vgpnn propagate clip.mp4 --key 0=painted_0.png -o painted.mp4
      vgpnn propagate clip.mp4 --key 0=a.png --key 48=b.png --mask region.png -o out.mp4
    """
    from ..apps.propagate import PropagateOptions, propagate as propagate_clip  # torch: only with work
    from ..estimate import propagation_seconds
    from ..synthesis import LevelRecord

    shared = SharedOptions(variations=1, seed=seed, batch_size=1, short_side=short_side, max_frames=max_frames,
                           start_frame=start_frame, noise_sigma=None, patch_size=None, iterations=1,
                           pyramid_factor=0.5, coarsest_frames=1, coarsest_size=1, backend="auto", device=device,
                           output=output, output_format=output_format, overwrite=overwrite, quiet=quiet,
                           report=report, preview=preview, skip_existing=skip_existing, variation_noise=0.0,
                           executor="local", ray_address=None, gpus_per_task=0.0, cpus_per_task=1.0)
    options = PropagateOptions(patch_size=patch_size, temporal_weight=temporal_weight, device=device)
    images = {frame: _read_image(path, f"keyframe {frame} ('{path}')") for frame, path in keys.items()}
    mask_clip = None if mask_path is None else read_clip(mask_path)
    settings = JobSettings("propagate", (str(clip_path),), shared, parameters={
        "keys": {str(frame): str(path) for frame, path in sorted(keys.items())},
        "mask": None if mask_path is None else str(mask_path), "patch_size": patch_size,
        "temporal_weight": temporal_weight},
        other_inputs=(*keys.values(), *([mask_path] if mask_path is not None else [])),
        engine_memory=False,  # propagation holds a few copies of the clip, not the engine's pyramids
        estimate=False,  # nor does it cost what the engine's model says: it has its own
        own_cost=lambda shape, device_type: propagation_seconds(shape, keys, device_type))
    fitted = {}

    def plan(clip):
        count, height, width = clip.frames.shape[:3]
        fitted["keys"] = {}
        for frame, image in sorted(images.items()):
            if frame >= count:
                raise InputError(f"keyframe {frame} is out of range: '{clip_path}' has {count} frames to work on "
                                 f"(0..{count - 1}, counted from --start-frame {start_frame})")
            fitted["keys"][frame] = fit_keyframe(image, clip.original_size, (height, width),
                                                 f"keyframe {frame} ('{keys[frame]}')")
        fitted["mask"] = None
        notes = [f"{len(images)} keyframe{'s' * (len(images) > 1)}: {', '.join(map(str, sorted(images)))}"]
        if mask_clip is not None:
            lossy = mask_clip.kind == "video" and mask_path.suffix.lower() != GIF_EXTENSION
            fitted["mask"] = fit_mask(mask_clip.frames, clip.original_size, (count, height, width),
                                      clip.original_frame_count, start_frame, f"mask '{mask_path}'", lossy)
            notes.append(f"editing {fitted['mask'].mean():.1%} of the clip (the mask)")
        return Plan(target_shape=(count, height, width), keep_audio=True, notes=notes)

    def synthesise(clip, plan, seeds, on_variation, progress):
        started = time.perf_counter()
        frames = propagate_clip(clip.frames, fitted["keys"], fitted["mask"], options, progress)
        shape = tuple(frames.shape[:3])
        record = LevelRecord((1, *shape[1:]), shape, (1, patch_size, patch_size), 1, [SEARCH_NAME],
                             time.perf_counter() - started)
        on_variation(0, frames, [record])

    run_command(settings, shared.config(), "{name}_propagated", plan, synthesise)


def _read_image(path: Path, name: str):
    clip = read_clip(path)
    if clip.kind != "image":
        raise InputError(f"{name} is a {clip.kind}, not one image; expected a single picture (PNG, JPEG, ...)")
    return clip.frames[0]
