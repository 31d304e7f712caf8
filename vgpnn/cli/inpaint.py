"""``vgpnn inpaint``: remove what a mask marks and fill it from the rest of the clip."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import SynthesisConfig
from ..video import GIF_EXTENSION, read_clip
from . import main
from .batch import inputs_argument
from .job import JobSettings, Plan, run_command
from .options import synthesis_command_options


@main.command()
@inputs_argument
@click.option("--mask", "mask_path", required=True, type=click.Path(path_type=Path), metavar="MASK",
              help="What to remove: an image of the input's size (used for every frame), or a video or "
                   "frame folder with one frame per input frame. White (non-zero) marks the hole; for a "
                   "lossy video mask, pixels brighter than half.")
@synthesis_command_options(variation_noise=SynthesisConfig.noise_sigma,
                           default_name="{name}_inpainted.{ext}, e.g. clip_inpainted.mp4, and "
                                        "{name}_inpainted_{seed}.{ext} with --seed or -n above 1")
def inpaint(inputs, mask_path, shared):
    """Remove what MASK marks from INPUT and fill the hole, in space and time, with the clip's own
    patches (never from the masked area itself). Pixels outside the mask stay exactly as they
    are at the working size; the hole is the mask grown by at most one working pixel (a
    working pixel the mask touches at all is filled). Without --variations or --seed there is
    no noise: one fill; with them, each output fills the hole differently.

    \b
    Examples:
      vgpnn inpaint clip.mp4 --mask person.png
      vgpnn inpaint clip.mp4 --mask person_mask.mp4 -n 3 --seed 0 --preview fills.png
    """
    config = shared.config()
    settings = JobSettings("inpaint", tuple(inputs), shared, parameters={"mask": str(mask_path)})
    holes = {}
    default_stem = "{name}_inpainted" + ("_{seed}" if shared.varied else "")

    def plan(clip):
        from ..apps.inpaint import hole_from_mask  # torch: only once there is work

        mask = read_clip(mask_path, short_side=None, max_frames=None)
        lossy = mask.kind == "video" and mask_path.suffix.lower() != GIF_EXTENSION
        original_shape = (clip.original_frame_count, *clip.original_size)
        holes["hole"] = hole = hole_from_mask(mask.frames, original_shape, clip.frames.shape[:3],
                                              shared.start_frame, lossy)
        notes = [f"filling {hole.mean():.1%} of the clip"]
        return Plan(target_shape=tuple(clip.frames.shape[:3]), keep_audio=True, notes=notes)

    def synthesise(clip, plan, seeds, on_variation, progress):
        from ..apps.inpaint import InpaintOptions, inpaint as inpaint_clip

        options = InpaintOptions(variations=len(seeds), seed=seeds[0], device=shared.device, batch_size=shared.batch_size)
        inpaint_clip(clip.frames, holes["hole"], config, options, on_variation=on_variation, progress=progress)

    run_command(settings, config, default_stem, plan, synthesise)
