"""Option groups shared by the commands that synthesise, and their parsers."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import click

from ..config import SynthesisConfig
from ..device import DEVICES
from ..naming import FORMATS
from ..nn import BACKENDS

DEFAULT_SHORT_SIDE = 144
AUTO_SIZE = "auto"  # --working-size auto: chosen per input from the device and the job (vgpnn.estimate)
DEFAULT_MAX_FRAMES = 30
# torch.Generator.manual_seed takes an unsigned 64-bit number; output i uses seed + i, so the
# last output's seed has to fit as well.
MAX_SEED = 2**64 - 1


class FiniteFloat(click.FloatRange):
    """A float option that refuses nan and inf: float('nan') parses, passes every range
    comparison (they are all False) and would reach the synthesis as a silent nan."""

    name = "float"

    def convert(self, value, param, ctx):
        if isinstance(value, float) and math.isfinite(value):
            return super().convert(value, param, ctx)
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number; expected {self._expected()}", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number; expected {self._expected()}", param, ctx)
        return super().convert(number, param, ctx)

    def _expected(self) -> str:
        bounds = self._describe_range() if (self.min is not None or self.max is not None) else ""
        return f"a finite number{' (' + bounds + ')' if bounds else ''}"


def finite_float(text: str) -> float:
    """A finite number out of part of an option's text (options parsed by hand, such as W:H);
    ValueError for anything else, nan and inf included."""
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text!r} is not a finite number")
    return number


def parse_patch_size(ctx, param, value):
    if value is None:
        return None
    parts = value.lower().split("x")
    try:
        numbers = tuple(int(p) for p in parts)
    except ValueError:
        numbers = ()
    if len(numbers) == 1:
        numbers = (3, numbers[0], numbers[0])
    if len(numbers) != 3 or min(numbers) < 1:
        raise click.BadParameter(f"expected FRAMESxROWSxCOLUMNS such as 3x7x7 (or one number for "
                                 f"square patches of 3 frames), got {value!r}")
    return numbers


def parse_size(ctx, param, value):
    if value is None or value.lower() == "native":
        return None
    if value.lower() == AUTO_SIZE:
        return AUTO_SIZE
    try:
        size = int(value)
    except ValueError:
        raise click.BadParameter(f"expected a number of pixels, 'auto' or 'native', got {value!r}") from None
    if size < 1:
        raise click.BadParameter(f"expected a positive number of pixels or 'native', got {value!r}")
    return size


def working_size_options(command=None, *, size_alias: bool = True, automatic: bool = False):
    """How much of the input the engine sees: resolution and frame range. ``size_alias``: also
    accept --size for --working-size (commands whose --size means the output's size say False).
    ``automatic``: the default size is 'auto' (commands that synthesise), else 144 (evaluate:
    outputs are compared at one fixed size)."""
    names = ("--working-size", "--size") if size_alias else ("--working-size",)
    automatic_help = (" 'auto': the largest size, up to the input's own (1080 at most), whose estimated time "
                      "on this device stays within about a minute per output, at least 144 (on a small CPU "
                      "144; on a GPU usually the input's own).") if automatic else ""
    options = [
        click.option(*names, "short_side", default=AUTO_SIZE if automatic else str(DEFAULT_SHORT_SIDE),
                     show_default=True, callback=parse_size, metavar="PIXELS|auto|native",
                     help="Working size: the input is downscaled so its shorter side is this many "
                          "pixels (never upscaled); 'native' keeps the input's resolution." + automatic_help),
        click.option("--max-frames", type=click.IntRange(min=0), default=DEFAULT_MAX_FRAMES,
                     show_default=True, help="Use at most this many frames of the input (0: all)."),
        click.option("--start-frame", type=click.IntRange(min=0), default=0, show_default=True,
                     help="First input frame to use."),
    ]

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command
    return decorate if command is None else decorate(command)


def method_options(command=None, *, variation_noise: float | None = None):
    """The VGPNN method's knobs, shared by every command that synthesises. ``variation_noise``:
    see :func:`synthesis_command_options`."""
    defaults = SynthesisConfig()
    if variation_noise is None:
        noise_default = f"{defaults.noise_sigma}"
    else:
        noise_default = f"{variation_noise} with --seed or -n above 1, else 0: one faithful output"
    options = [
        click.option("--noise", "noise_sigma", type=FiniteFloat(min=0), default=None,
                     help=f"Std of the noise added to the coarsest level, on a 0..1 pixel scale "
                          f"[default: {noise_default}]. Larger: more different from the input."),
        click.option("--patch-size", callback=parse_patch_size, default=None, metavar="TxHxW",
                     help="Patch frames x rows x columns [default: 3x7x7]."),
        click.option("--iterations", type=click.IntRange(min=1), default=defaults.iterations,
                     show_default=True, help="EM iterations per pyramid level."),
        click.option("--pyramid-factor", type=FiniteFloat(0.3, 0.99), default=defaults.pyramid_factor,
                     show_default=True, help="Each pyramid level is this fraction of the next finer one."),
        click.option("--coarsest-frames", type=click.IntRange(min=1), default=defaults.coarsest_frames,
                     show_default=True, help="The pyramid stops shrinking time at this many frames."),
        click.option("--coarsest-size", type=click.IntRange(min=1), default=defaults.coarsest_short_side,
                     show_default=True, help="The pyramid stops shrinking space when the shorter side has this many pixels."),
        click.option("--backend", type=click.Choice(BACKENDS), default="auto", show_default=True,
                     help="Nearest-neighbour search: exact, patchmatch, faiss, or auto (exact on small "
                          "levels, patchmatch on larger ones; faiss on a CPU without numba)."),
        click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True,
                     help="Where to compute: auto uses a CUDA GPU when there is one."),
    ]
    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command
    return decorate if command is None else decorate(command)


def output_options(command=None, *, default_name: str = "{name}_{seed}.{ext}"):
    """``default_name``: how the command names its outputs in a folder, for the -o help."""
    options = [
        click.option("-o", "--output", default=None, metavar="FILE|DIR|TEMPLATE",
                     help="Output file, folder, or name template with {name}, {seed}, {index}, {ext}, "
                          "{file} (input file name) and {parent} (input folder name) "
                          f"[default: the current folder, named {default_name}]."),
        click.option("--format", "output_format", type=click.Choice(FORMATS), default=None,
                     help="Output format when -o is a folder [default: mp4 for videos, the input's "
                          "format for images]; 'frames' writes folders of PNG frames."),
        click.option("-y", "--overwrite", is_flag=True, help="Replace existing outputs."),
        click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors; no progress bars."),
        click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="Write a JSON report: one record per output with its input, every parameter, "
                          "seed, device, backends, timings, status and error (also when the run fails or is "
                          "interrupted). An existing report is replaced only with -y or --skip-existing (a resumed "
                          "batch rewrites its report); a symbolic link, device or pipe is refused."),
        click.option("--preview", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="Write a contact sheet (PNG): source frames in the first row, each output below; "
                          "one per input in a batch (fields {name}, {file}, {parent}; without them _{name} "
                          "is added)."),
    ]

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command
    return decorate if command is None else decorate(command)


def _check_last_seed(ctx, param, value):
    """Whichever of --seed and --variations comes second checks that seed + i fits for every output."""
    given = {**ctx.params, param.name: value}
    seed, variations = given.get("seed"), given.get("variations")
    if seed is not None and variations is not None and seed + variations - 1 > MAX_SEED:
        raise click.BadParameter(
            f"--seed {seed} with --variations {variations} gives seeds up to {seed + variations - 1}; "
            f"expected seed + variations - 1 to be at most {MAX_SEED} (2**64 - 1)", ctx=ctx, param=param)
    return value


def variation_options(command=None, *, faithful: bool = False):
    """How many outputs, from which seeds, synthesised how many at a time. ``faithful``: see
    :func:`synthesis_command_options`."""
    seed_default = ("none: no noise, one faithful output; giving a seed or -n above 1 adds noise"
                    if faithful else "random, printed")
    options = [
        click.option("-n", "--variations", type=click.IntRange(min=1), default=1, show_default=True,
                     callback=_check_last_seed, help="How many different clips to make."),
        click.option("--seed", type=click.IntRange(0, MAX_SEED), default=None, callback=_check_last_seed,
                     help=f"Seed of the first output; output i uses seed + i [default: {seed_default}]."),
        click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Outputs synthesised together; on a GPU, 8 together took about a quarter less "
                          "time each than one by one (144p, H100), for more memory. Results do not depend on it."),
    ]

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command
    return decorate if command is None else decorate(command)


@dataclass(frozen=True)
class SharedOptions:
    """What the options every synthesising command shares asked for, one field per option (the
    field's name is the option's parameter name). A new shared option is its click option in
    the groups above plus its field here."""

    variations: int  # -n
    seed: int | None  # --seed; None: random (generate) or none at all (faithful commands)
    batch_size: int  # --batch-size
    short_side: int | str | None  # --working-size; None: native; AUTO_SIZE: chosen per input
    max_frames: int  # --max-frames; 0: all
    start_frame: int  # --start-frame
    noise_sigma: float | None  # --noise; None: the command's default
    patch_size: tuple[int, int, int] | None  # --patch-size; None: the default
    iterations: int  # --iterations
    pyramid_factor: float  # --pyramid-factor
    coarsest_frames: int  # --coarsest-frames
    coarsest_size: int  # --coarsest-size
    backend: str  # --backend
    device: str  # --device
    output: str | None  # -o
    output_format: str | None  # --format
    overwrite: bool  # -y
    quiet: bool  # -q
    report: Path | None  # --report
    preview: Path | None  # --preview
    skip_existing: bool  # --skip-existing
    variation_noise: float | None = None  # the command's rule: see synthesis_command_options

    @property
    def varied(self) -> bool:
        """Outputs get noise: always for generate; for a faithful command, with --seed or -n above 1."""
        return self.variation_noise is None or self.variations > 1 or self.seed is not None

    @property
    def first_seed(self) -> int | None:
        """The first output's seed; None: choose one at random (and say it)."""
        if self.seed is None and not self.varied:
            return 0  # no noise, so no seed matters; 0 keeps names and reports stable
        return self.seed

    def config(self, **overrides) -> SynthesisConfig:
        """The synthesis configuration these options ask for (``overrides``: fields a command sets)."""
        default_noise = SynthesisConfig.noise_sigma if self.variation_noise is None else self.variation_noise
        fields = dict(patch_size=self.patch_size or SynthesisConfig.patch_size, iterations=self.iterations,
                      pyramid_factor=self.pyramid_factor, coarsest_frames=self.coarsest_frames,
                      coarsest_short_side=self.coarsest_size, backend=self.backend,
                      noise_sigma=self.noise_sigma if self.noise_sigma is not None
                      else default_noise if self.varied else 0.0)
        return SynthesisConfig(**(fields | overrides))


_SHARED_FIELDS = tuple(name for name in SharedOptions.__dataclass_fields__ if name != "variation_noise")


def synthesis_command_options(size_alias: bool = True, *, default_name: str = "{name}_{seed}.{ext}",
                              variation_noise: float | None = None):
    """Everything a synthesising command shares, in one decorator: variations and seeds, working
    size, method knobs, outputs, --skip-existing, and one-line errors with exit codes. The
    command receives them as one ``shared`` argument, a :class:`SharedOptions`.
    ``default_name``: the command's output names in a folder, for the help. ``variation_noise``:
    None for a command that always adds the default noise (a random seed when none is given);
    a number for one that makes one faithful output, without noise, unless --seed or -n above 1
    asks for variations, which get this noise."""
    from .batch import skip_existing_option
    from .common import fail_cleanly

    def decorate(command):
        @functools.wraps(command)
        def with_shared(**kwargs):
            shared = SharedOptions(**{name: kwargs.pop(name) for name in _SHARED_FIELDS},
                                   variation_noise=variation_noise)
            return command(shared=shared, **kwargs)

        decorated = fail_cleanly(with_shared)
        for option in (skip_existing_option, output_options(default_name=default_name),
                       method_options(variation_noise=variation_noise),
                       working_size_options(size_alias=size_alias, automatic=True),
                       variation_options(faithful=variation_noise is not None)):
            decorated = option(decorated)
        return decorated
    return decorate
