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


def _option_group(options: list, command=None):
    """Apply ``options`` (click decorators, in the order --help lists them) to ``command``, or
    return the decorator that does, so a group works both as ``@group`` and as ``@group(...)``."""
    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command
    return decorate if command is None else decorate(command)


def working_size_options(command=None, *, size_alias: bool = True,
                         default_short_side: int | str | None = DEFAULT_SHORT_SIDE,
                         default_max_frames: int = DEFAULT_MAX_FRAMES, automatic: bool = False):
    """How much of the input the engine sees: resolution and frame range. ``size_alias``: also
    accept --size for --working-size (commands whose --size means the output's size say False).
    ``default_short_side`` (None: native; AUTO_SIZE: 'auto') and ``default_max_frames`` (0: all):
    the command's defaults. ``automatic``: the default size is 'auto' (commands that synthesise;
    the same as ``default_short_side=AUTO_SIZE``), else ``default_short_side`` (evaluate: outputs
    are compared at one fixed size, 144)."""
    if automatic:
        default_short_side = AUTO_SIZE
    names = ("--working-size", "--size") if size_alias else ("--working-size",)
    automatic = default_short_side == AUTO_SIZE
    automatic_help = (" 'auto': the largest size, up to the input's own (1080 at most), whose estimated time "
                      "on this device stays within about a minute per output, at least 144 (on a small CPU "
                      "144; on a GPU usually the input's own).") if automatic else ""
    options = [
        click.option(*names, "short_side", default="native" if default_short_side is None else str(default_short_side),
                     show_default=True, callback=parse_size,
                     metavar="PIXELS|auto|native" if automatic else "PIXELS|native",
                     help="Working size: the input is downscaled so its shorter side is this many "
                          "pixels (never upscaled); 'native' keeps the input's resolution." + automatic_help),
        click.option("--max-frames", type=click.IntRange(min=0), default=default_max_frames,
                     show_default=True, help="Use at most this many frames of the input (0: all)."),
        click.option("--start-frame", type=click.IntRange(min=0), default=0, show_default=True,
                     help="First input frame to use."),
    ]
    return _option_group(options, command)


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
    return _option_group(options, command)


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
    return _option_group(options, command)


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
    return _option_group(options, command)


EXECUTORS = ("local", "ray")


def parse_ray_address(ctx, param, value):
    if value is not None and not value.strip():
        raise click.BadParameter("expected a Ray address such as 'auto', 'HOST:PORT' or 'ray://HOST:10001', got ''")
    return value


def executor_options(command=None):
    """Where the batch runs: here, one input after another, or as tasks on a Ray cluster."""
    options = [
        click.option("--executor", type=click.Choice(EXECUTORS), default="local", show_default=True,
                     help="local: run here, one input after another. ray: run each input's outputs as Ray "
                          "tasks on a cluster (pip install \"vgpnn[ray]\"); outputs, report and exit status "
                          "are the same as a local run's."),
        click.option("--ray-address", default=None, callback=parse_ray_address, metavar="ADDRESS",
                     help="The Ray cluster for --executor ray: 'auto', HOST:PORT or ray://HOST:PORT "
                          "[default: Ray's own rule: RAY_ADDRESS, else a new Ray instance on this machine]."),
        click.option("--gpus-per-task", type=FiniteFloat(min=0), default=0.0, show_default=True,
                     help="GPUs each Ray task reserves; a fraction lets tasks share one (0.25: four per GPU)."),
        click.option("--cpus-per-task", type=FiniteFloat(min=0), default=1.0, show_default=True,
                     help="CPUs each Ray task reserves."),
    ]
    return _option_group(options, command)


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
    executor: str  # --executor: local or ray
    ray_address: str | None  # --ray-address; None: Ray's own rule
    gpus_per_task: float  # --gpus-per-task
    cpus_per_task: float  # --cpus-per-task
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

    @property
    def execution(self) -> "Execution":
        from .batch import Execution
        return Execution(self.executor, self.ray_address, self.gpus_per_task, self.cpus_per_task, self.batch_size)


_SHARED_FIELDS = tuple(name for name in SharedOptions.__dataclass_fields__ if name != "variation_noise")


def _check_executor_options(options: dict) -> None:
    """Ray options without --executor ray would be ignored without a word; --device cuda on Ray
    needs a GPU per task, since Ray hides the GPUs from a task that reserves none."""
    context = click.get_current_context()
    if options["executor"] != "ray":
        for name in ("ray_address", "gpus_per_task", "cpus_per_task"):
            if context.get_parameter_source(name) != click.core.ParameterSource.DEFAULT:
                raise click.UsageError(f"--{name.replace('_', '-')} applies to --executor ray only; add "
                                       "--executor ray or leave it out")
    elif options["device"] == "cuda" and options["gpus_per_task"] == 0:
        raise click.UsageError("--device cuda with --executor ray needs --gpus-per-task (e.g. 1, or 0.25 for four "
                               "tasks per GPU): Ray shows no GPU to a task that reserves none")


def synthesis_command_options(size_alias: bool = True, *, default_name: str = "{name}_{seed}.{ext}",
                              variation_noise: float | None = None,
                              default_short_side: int | str | None = AUTO_SIZE,
                              default_max_frames: int = DEFAULT_MAX_FRAMES):
    """Everything a synthesising command shares, in one decorator: variations and seeds, working
    size, method knobs, outputs, --skip-existing, the executor, and one-line errors with exit codes. The
    command receives them as one ``shared`` argument, a :class:`SharedOptions`.
    ``default_name``: the command's output names in a folder, for the help. ``variation_noise``:
    None for a command that always adds the default noise (a random seed when none is given);
    a number for one that makes one faithful output, without noise, unless --seed or -n above 1
    asks for variations, which get this noise. ``default_short_side`` (AUTO_SIZE, the default:
    'auto', chosen per input from the device and the job; None: native; or pixels) and
    ``default_max_frames`` (0: all): the command's working-size defaults."""
    from .batch import skip_existing_option
    from .common import fail_cleanly

    def decorate(command):
        @functools.wraps(command)
        def with_shared(**kwargs):
            _check_executor_options(kwargs)
            shared = SharedOptions(**{name: kwargs.pop(name) for name in _SHARED_FIELDS},
                                   variation_noise=variation_noise)
            return command(shared=shared, **kwargs)

        decorated = fail_cleanly(with_shared)
        for option in (executor_options, skip_existing_option, output_options(default_name=default_name),
                       method_options(variation_noise=variation_noise),
                       working_size_options(size_alias=size_alias, default_short_side=default_short_side,
                                            default_max_frames=default_max_frames),
                       variation_options(faithful=variation_noise is not None)):
            decorated = option(decorated)
        return decorated
    return decorate
