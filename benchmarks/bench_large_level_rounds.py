"""What the large levels' single PatchMatch round costs and saves: seconds per variation and
coherence, with the default (one round from the coarser level's field on levels above
``large_level_voxels``) and with those levels' searches forced back to two rounds.

    python benchmarks/bench_large_level_rounds.py --device cuda --sizes 1280x720x15,1920x1080x30

Sources are the shipped clip resized to each WIDTHxHEIGHTxFRAMES (as bench_speed.py does); one
warm-up run per size, then seeds 1 to 3 per setting; coherence from 4000 sampled patches
(vgpnn/metrics.py). On a CPU the numba kernel makes one round on every level already, so both
settings are the same there.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vgpnn import SynthesisConfig, read_clip  # noqa: E402
from vgpnn.clip_tensor import frames_to_tensor  # noqa: E402
from vgpnn.device import resolve_device  # noqa: E402
from vgpnn.metrics import coherence  # noqa: E402
from vgpnn.nn.patchmatch import PatchMatch  # noqa: E402
from vgpnn.plan import SynthesisPlan  # noqa: E402
from vgpnn.resize import resize_video  # noqa: E402
from vgpnn.synthesis import synthesize  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", default=str(ROOT / "examples" / "airballoons.mp4"))
    parser.add_argument("--sizes", default="1280x720x15,1920x1080x30")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    full = frames_to_tensor(read_clip(args.clip).frames, device)
    default_search = PatchMatch.search

    def two_rounds(self, request):
        request.quick = False  # as before the rule: a large level searched like any other
        return default_search(self, request)

    print("| size (WxHxT) | large levels | s / variation (median, seeds 1-3) | coherence (mean) |")
    print("|---|---|---|---|")
    for size in args.sizes.split(","):
        width, height, frames = (int(part) for part in size.lower().split("x"))
        source = resize_video(full, (frames, height, width)).clamp(0, 1)
        shape = (frames, height, width)
        synthesize(SynthesisPlan.single(source, shape, SynthesisConfig(), [99]))  # warm-up
        for label, search in (("one round (default)", default_search), ("two rounds", two_rounds)):
            PatchMatch.search = search
            seconds, scores = [], []
            for seed in (1, 2, 3):
                sync()
                started = time.perf_counter()
                video = synthesize(SynthesisPlan.single(source, shape, SynthesisConfig(), [seed])).videos[0]
                sync()
                seconds.append(time.perf_counter() - started)
                scores.append(coherence(video, source, sample=4000, seed=0))
            print(f"| {size} | {label} | {statistics.median(seconds):.2f} | {statistics.mean(scores):.3e} |", flush=True)
        PatchMatch.search = default_search


if __name__ == "__main__":
    main()
