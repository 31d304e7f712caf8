"""``vgpnn analogy``: the layout and motion of one clip in the look of another."""

from __future__ import annotations

from pathlib import Path

import click

from . import main
from .job import JobSettings, Plan, run_pair_command
from .options import synthesis_command_options

# AnalogyOptions' defaults, repeated here so `--help` needs no torch (a test checks they agree).
DEFAULT_BINS = 3

# Noise for --variations: enough to vary the details, little enough that the coarsest level
# still shows STRUCTURE's layout (the default 2.5 of generate would bury it).
VARIATION_NOISE = 0.3


@main.command()
@click.argument("structure_path", metavar="STRUCTURE", type=click.Path(path_type=Path))
@click.argument("appearance_path", metavar="APPEARANCE", type=click.Path(path_type=Path))
@click.option("--structure-bins", type=click.IntRange(min=1), default=DEFAULT_BINS,
              show_default=True, help="Levels of motion (optical-flow speed) and of brightness that STRUCTURE "
                                      "is sorted into; for a sketch, at least its number of colours.")
@click.option("--appearance-bins", type=click.IntRange(min=1), default=DEFAULT_BINS,
              show_default=True, help="Levels of motion and of brightness that APPEARANCE is sorted into.")
@synthesis_command_options(variation_noise=VARIATION_NOISE,
                           default_name="STRUCTURE_as_APPEARANCE.{ext} after the inputs' names, e.g. "
                                        "a_as_b.mp4, and a_as_b_{seed}.mp4 with --seed or -n above 1")
def analogy(structure_path, appearance_path, structure_bins, appearance_bins, shared):
    """Make a clip with the space-time layout and motion of STRUCTURE and the look of APPEARANCE:
    every pixel comes from APPEARANCE's patches, placed where STRUCTURE's regions of similar
    motion and brightness are (slow with slow, fast with fast, dark with dark). STRUCTURE may be
    a sketch or label video of flat colours; either may be a still image (then no motion is
    used). The output has STRUCTURE's working size, length and frame rate.

    \b
    Examples:
      vgpnn analogy waterfall.mp4 lava.mp4
      vgpnn analogy sketch.mp4 foliage.mp4 --structure-bins 4 -o filled.mp4
      vgpnn analogy layout.png texture.jpg -n 3 --seed 0
    """
    config = shared.config()
    settings = JobSettings("analogy", (str(structure_path),), shared, parameters={
        "structure_bins": structure_bins, "appearance_bins": appearance_bins})
    appearance_name = appearance_path.stem if appearance_path.suffix else appearance_path.name
    default_stem = "{name}_as_" + appearance_name.replace("{", "").replace("}", "") + ("_{seed}" if shared.varied else "")

    def plan(structure, appearance):
        from ..apps.analogy import analogy_patch_size  # torch: only once there is work

        shape = tuple(structure.frames.shape[:3])
        analogy_patch_size(shape, tuple(appearance.frames.shape[:3]), config)
        motion = shape[0] > 1 and appearance.frames.shape[0] > 1
        notes = [] if motion else ["a still image is involved: matching on brightness only, no motion"]
        return Plan(target_shape=shape, keep_audio=True, notes=notes)

    def synthesise(structure, appearance, plan, seeds, on_variation, progress):
        from ..apps.analogy import AnalogyOptions, analogy as analogy_clips

        options = AnalogyOptions(structure_bins=structure_bins, appearance_bins=appearance_bins,
                                 variations=len(seeds), seed=seeds[0], device=shared.device,
                                 batch_size=shared.batch_size)
        analogy_clips(structure.frames, appearance.frames, config, options, on_variation=on_variation,
                      progress=progress)

    run_pair_command(settings, appearance_path, "appearance", config, default_stem, plan, synthesise)
