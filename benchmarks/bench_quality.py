"""Quality on every shared clip: variations, inpainting (and retargeting, when filled in); prints tables.

    python benchmarks/bench_quality.py                       # 144p on the CPU, every frame
    python benchmarks/bench_quality.py --size 360 --device cuda --sheets docs/quality

For each clip (``--clips``, default ../shared/clips/*.mp4), read at ``--size`` (shorter side,
never upscaled) with up to ``--frames`` frames (0: all):

- Variations: ``--variations`` clips (seeds 0, 1, ...) with the default settings; their mean
  coherence (lower: every part looks like the source), diversity across them and NNFDIV
  (higher: they differ / re-compose the source), and the dominant-offset share (lower: the
  largest share of an output's patches whose nearest source patch sits at one offset from
  them; a shifted copy scores near 1), the mean and the worst over the variations.
- Inpainting: a fixed box (30% of the height, 20% of the width, a patch away from the frame's
  edges) placed where the clip moves most (the sum of frame-to-frame gray-level changes in it
  is largest), filled with the default settings. Border step (1: no seam; a fill brighter or
  darker than its surroundings scores well above 1) and fill detail (1: as detailed as the
  pixels around it; a soft fill scores well below 1), vgpnn/metrics.py; in brackets, the input's
  own figures for the same box.
- Retargeting: the clip retargeted (default settings, seed 0) to each aspect ratio of
  ``RATIOS`` other than its own, keeping the height and keeping the width (one of the two
  makes the frame smaller, the other larger; ``--keep auto`` only the smaller, as the CLI's
  default does). For each: coherence over the variations' mean coherence (the bar: at most 2),
  and "subject kept", the share of the clip's subject (vgpnn/apps/saliency.py: saliency from
  motion and contrast, above its median) that the output shows (vgpnn.metrics.kept_share: under
  the nearest source patch of some output patch; 1 for a larger frame that keeps everything, the
  subject's share inside the crop for a crop). The variations part runs first when it is not
  asked for, for its coherence.

With ``--sheets DIR``, one contact sheet per clip (``DIR/quality_<clip>_<size>p.png``): the
source, each variation, the inpainting box (magenta) and its fill; with the retarget part, a
second one (``DIR/retarget_<clip>_<size>p.png``): the source, its subject mass (white: subject),
then each retarget. ``--json FILE`` writes every figure. ``--parts inpaint`` (or ``variations``,
``retarget``, or a comma-separated list) runs only those parts; ``--only a,b`` only those clips.
``--set FIELD=VALUE`` (repeatable) changes one of the variations' ``SynthesisConfig`` fields, for
comparing settings: ``--set max_copy_share=0.45 --set recompose_tries=1``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vgpnn import GenerateOptions, SynthesisConfig, generate  # noqa: E402
from vgpnn.apps.inpaint import InpaintOptions, inpaint  # noqa: E402
from vgpnn.apps.retarget import RetargetOptions, TargetRequest, plan_target_shape, retarget  # noqa: E402
from vgpnn.apps.saliency import subject_mass  # noqa: E402
from vgpnn.clip_tensor import frames_to_tensor  # noqa: E402
from vgpnn.device import resolve_device  # noqa: E402
from vgpnn.metrics import (border_step, coherence, diversity, dominant_offset_share, fill_detail,  # noqa: E402
                           kept_share, nearest_offsets, nnf_div)
from vgpnn.preview import contact_sheet  # noqa: E402

BOX = (0.3, 0.2)  # the inpainting box's height and width, as fractions of the frame's
EDGE = 7  # pixels between the box and the frame's edges: a whole patch of clean keys beside it
# The aspect ratios (width, height) every clip is retargeted to: phone, square, portrait feed, TV, cinema.
RATIOS = {"9:16": (9, 16), "1:1": (1, 1), "4:5": (4, 5), "16:9": (16, 9), "21:9": (21, 9)}
RETARGET_BAR = 2.0  # a retarget's coherence over a plain variation's, at most


def moving_box(frames: np.ndarray, box: tuple[float, float] = BOX, edge: int = EDGE) -> np.ndarray:
    """(T, H, W) bool: a box of ``box`` (height, width) fractions of the frame, the same in every
    frame, where the sum of frame-to-frame gray-level changes is largest; ``frames`` (T, H, W, 3)."""
    gray = frames.astype(np.float32).mean(-1)
    motion = np.abs(np.diff(gray, axis=0)).sum(0) if len(gray) > 1 else np.ones(gray.shape[1:], np.float32)
    height, width = motion.shape
    box_h, box_w = max(1, round(height * box[0])), max(1, round(width * box[1]))
    # Sums over every box at once from the summed-area table: sums[y, x] is the box at (y, x).
    table = np.pad(motion, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    sums = table[box_h:, box_w:] - table[:-box_h, box_w:] - table[box_h:, :-box_w] + table[:-box_h, :-box_w]
    allowed = np.full(sums.shape, -np.inf)
    allowed[edge:height - box_h - edge + 1, edge:width - box_w - edge + 1] = 0
    top, left = np.unravel_index(np.argmax(sums + allowed), sums.shape)
    hole = np.zeros(gray.shape, bool)
    hole[:, top:top + box_h, left:left + box_w] = True
    return hole


def synthesis_config(settings: list[str]) -> SynthesisConfig:
    """The default settings with each ``FIELD=VALUE`` of ``settings`` applied (numbers and words)."""
    defaults = SynthesisConfig()
    kinds = {field.name: type(getattr(defaults, field.name)) for field in fields(defaults)}
    changes = {}
    for setting in settings:
        name, _, value = setting.partition("=")
        if kinds.get(name) not in (int, float, str) or not value:
            raise SystemExit(f"--set takes FIELD=VALUE for a number or word field of SynthesisConfig, got {setting!r}")
        try:
            changes[name] = kinds[name](value)
        except ValueError:
            raise SystemExit(f"--set {name} takes a {kinds[name].__name__}, got {value!r}") from None
    return replace(defaults, **changes)


def variation_figures(frames: np.ndarray, variations: int, device: str,
                      config: SynthesisConfig = SynthesisConfig()) -> tuple[dict, list[np.ndarray]]:
    started = time.perf_counter()
    outputs = generate(frames, config, GenerateOptions(variations=variations, seed=0, device=device))
    seconds = (time.perf_counter() - started) / variations
    # The figures run where the synthesis did: exact searches over a long clip take minutes on a CPU.
    source = frames_to_tensor(frames, resolve_device(device))
    videos = [frames_to_tensor(video, source.device) for video in outputs]
    coherences, shares, divs = [], [], []
    for video in videos:
        offsets = nearest_offsets(video, source)
        coherences.append(coherence(video, source))
        shares.append(dominant_offset_share(video, source, offsets=offsets))
        divs.append(nnf_div(video, source, offsets=offsets))
    figures = {"seconds": seconds, "coherence": float(np.mean(coherences)),
               "diversity": diversity(torch.stack(videos), source) if len(videos) > 1 else None,
               "nnf_div": float(np.mean(divs)), "dominant_offset": float(np.mean(shares)),
               "dominant_offset_worst": float(np.max(shares))}
    return figures, outputs


def inpaint_figures(frames: np.ndarray, device: str) -> tuple[dict, np.ndarray, np.ndarray]:
    hole = moving_box(frames)
    started = time.perf_counter()
    filled = inpaint(frames, hole, options=InpaintOptions(device=device))[0]
    seconds = time.perf_counter() - started
    region = torch.from_numpy(hole)
    output, source = frames_to_tensor(filled, torch.device("cpu")), frames_to_tensor(frames, torch.device("cpu"))
    figures = {"seconds": seconds, "filled": float(hole.mean()),
               "border_step": border_step(output, region), "fill_detail": fill_detail(output, region),
               "input_border_step": border_step(source, region), "input_fill_detail": fill_detail(source, region)}
    return figures, hole, filled


def retarget_jobs(shape: tuple[int, int, int], keeps: tuple[str, ...]) -> list[tuple[str, tuple[int, int, int]]]:
    """(label, target shape) for each ratio of ``RATIOS`` and side kept of ``keeps``, leaving
    out targets of the clip's own shape (its own ratio, after rounding to even sizes)."""
    jobs = []
    for name, aspect in RATIOS.items():
        for keep in keeps:
            target = plan_target_shape(shape, None, TargetRequest(aspect=aspect, keep=keep))
            if abs(target[1] - shape[1]) <= 1 and abs(target[2] - shape[2]) <= 1:
                continue
            grows = target[1] * target[2] > shape[1] * shape[2]
            label = f"{name} {'larger' if grows else 'smaller'}"
            if all(label != known for known, _ in jobs):
                jobs.append((label, target))
    return jobs


def retarget_figures(frames: np.ndarray, variation_coherence: float, device: str,
                     keeps: tuple[str, ...] = ("height", "width")) -> tuple[dict, list[np.ndarray]]:
    """Per retarget of :func:`retarget_jobs`: its shape, seconds, coherence, coherence over
    ``variation_coherence`` and subject kept; plus the worst ratio and the least subject kept;
    and the outputs, for the contact sheet."""
    source = frames_to_tensor(frames, resolve_device(device))
    mass = subject_mass(source)
    figures, outputs = {"jobs": {}}, []
    for label, shape in retarget_jobs(frames.shape[:3], keeps):
        started = time.perf_counter()
        out = retarget(frames, shape, options=RetargetOptions(device=device))[0]
        seconds = time.perf_counter() - started
        video = frames_to_tensor(out, source.device)
        out_coherence = coherence(video, source)
        figures["jobs"][label] = {"shape": list(shape), "seconds": seconds, "coherence": out_coherence,
                                  "over_variation": out_coherence / variation_coherence,
                                  "subject_kept": kept_share(video, source, mass)}
        outputs.append(out)
        print(f"  retarget {label} {shape[2]}x{shape[1]}: {figures['jobs'][label]['over_variation']:.2f}x, "
              f"subject kept {figures['jobs'][label]['subject_kept']:.3f}, {seconds:.0f} s", file=sys.stderr, flush=True)
    jobs = figures["jobs"].values()
    figures["worst"] = max((job["over_variation"] for job in jobs), default=None)
    figures["least_kept"] = min((job["subject_kept"] for job in jobs), default=None)
    figures["mass_frames"] = (255 * mass / max(float(mass.max()), 1e-12)).round().byte()[..., None].expand(
        -1, -1, -1, 3).cpu().numpy()
    return figures, outputs


def tinted(frames: np.ndarray, hole: np.ndarray) -> np.ndarray:
    shown = frames.copy()
    shown[hole] = (shown[hole] * 0.4 + np.array([255, 0, 255]) * 0.6).astype(np.uint8)
    return shown


def measure(name: str, frames: np.ndarray, args) -> dict:
    row = {"clip": name, "shape": list(frames.shape[:3]), "variations": None, "inpaint": None,
           "retarget": None, "retarget_over_variation": None}
    outputs, shown = [], [frames]
    if "variations" in args.parts or "retarget" in args.parts:
        row["variations"], outputs = variation_figures(frames, args.variations, args.device, args.config)
        shown += outputs
        print(f"{name}: variations done", file=sys.stderr, flush=True)
    retargets = []
    if "retarget" in args.parts:
        keeps = ("height", "width") if args.keep == "both" else ("auto",)
        figures, retargets = retarget_figures(frames, row["variations"]["coherence"], args.device, keeps)
        mass_frames = figures.pop("mass_frames")
        row["retarget"] = figures
        row["retarget_over_variation"] = figures["worst"]
        print(f"{name}: retargets done", file=sys.stderr, flush=True)
    if "inpaint" in args.parts:
        row["inpaint"], hole, filled = inpaint_figures(frames, args.device)
        shown += [tinted(frames, hole), filled]
        print(f"{name}: inpainting done", file=sys.stderr, flush=True)
    if args.sheets is not None:
        from vgpnn import write_video

        args.sheets.mkdir(parents=True, exist_ok=True)
        if "variations" in args.parts or "inpaint" in args.parts:
            write_video(args.sheets / f"quality_{name}_{args.size}p.png", contact_sheet(shown), None, overwrite=True)
        if "retarget" in args.parts:
            sheet = contact_sheet([frames, mass_frames, *retargets], frames_per_row=4)
            write_video(args.sheets / f"retarget_{name}_{args.size}p.png", sheet, None, overwrite=True)
    return row


def print_tables(rows: list[dict], args) -> None:
    if "variations" in args.parts:
        print_variations(rows, args)
    if "inpaint" in args.parts:
        print_inpainting(rows)
    if "retarget" in args.parts:
        print_retargets(rows, args)


def print_variations(rows: list[dict], args) -> None:
    print(f"\nVariations ({args.variations}, seeds 0..{args.variations - 1}), shorter side {args.size}, "
          f"device {args.device}:\n")
    print("| clip | working size (WxHxT) | s / variation | coherence | diversity | NNFDIV | "
          "dominant offset (worst) | retarget / variation coherence |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        v, (frames, height, width) = row["variations"], row["shape"]
        ratio = row["retarget_over_variation"]
        diversity_cell = "-" if v["diversity"] is None else f"{v['diversity']:.3f}"
        print(f"| {row['clip']} | {width}x{height}x{frames} | {v['seconds']:.1f} | {v['coherence']:.2e} | "
              f"{diversity_cell} | {v['nnf_div']:.3f} | {v['dominant_offset']:.3f} "
              f"({v['dominant_offset_worst']:.3f}) | {'-' if ratio is None else f'{ratio:.2f}'} |")


def print_retargets(rows: list[dict], args) -> None:
    labels = [f"{name} {grows}" for name in RATIOS for grows in ("smaller", "larger")]
    labels = [label for label in labels if any(label in row["retarget"]["jobs"] for row in rows)]
    print(f"\nRetargets (seed 0, default settings): coherence over the variations' mean (bar: at most "
          f"{RETARGET_BAR:g}); subject kept in brackets:\n")
    print("| clip | " + " | ".join(labels) + " | worst | least kept |")
    print("|---|" + "---|" * (len(labels) + 2))
    for row in rows:
        jobs = row["retarget"]["jobs"]
        cells = [f"{jobs[label]['over_variation']:.2f} ({jobs[label]['subject_kept']:.2f})" if label in jobs else "-"
                 for label in labels]
        print(f"| {row['clip']} | " + " | ".join(cells) +
              f" | {row['retarget']['worst']:.2f} | {row['retarget']['least_kept']:.2f} |")


def print_inpainting(rows: list[dict]) -> None:
    print("\nInpainting a fixed box over the most motion:\n")
    print("| clip | filled | seconds | border step (input) | fill detail (input) |")
    print("|---|---|---|---|---|")
    for row in rows:
        f = row["inpaint"]
        print(f"| {row['clip']} | {f['filled']:.1%} | {f['seconds']:.1f} | {f['border_step']:.2f} "
              f"({f['input_border_step']:.2f}) | {f['fill_detail']:.2f} ({f['input_fill_detail']:.2f}) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=Path, default=ROOT.parent / "shared" / "clips")
    parser.add_argument("--size", type=int, default=144, help="shorter side in pixels (never upscaled)")
    parser.add_argument("--frames", type=int, default=0, help="at most this many frames (0: all)")
    parser.add_argument("--variations", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--only", default=None, help="comma-separated clip names (default: every clip)")
    parser.add_argument("--parts", default="variations,inpaint",
                        help="comma-separated parts to run: variations, inpaint, retarget (default: variations,inpaint)")
    parser.add_argument("--keep", choices=("both", "auto"), default="both",
                        help="retargets keeping the height and the width (both), or only the CLI's default side (auto)")
    parser.add_argument("--sheets", type=Path, default=None, help="folder for one contact sheet per clip")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="change a SynthesisConfig field of the variations (repeatable)")
    args = parser.parse_args()
    args.config = synthesis_config(args.set)
    args.parts = set(args.parts.split(","))
    if not args.parts or not args.parts <= {"variations", "inpaint", "retarget"}:
        parser.error("--parts takes a comma-separated list of variations, inpaint, retarget")
    from vgpnn import read_clip

    paths = sorted(args.clips.glob("*.mp4"))
    if args.only:
        paths = [path for path in paths if path.stem in args.only.split(",")]
    rows = []
    for path in paths:
        frames = read_clip(path, short_side=args.size, max_frames=args.frames or None).frames
        rows.append(measure(path.stem, frames, args))
    print_tables(rows, args)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
