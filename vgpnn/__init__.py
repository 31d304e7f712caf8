"""vgpnn: new videos from one short video by space-time patch nearest neighbours (VGPNN).

Python API::

    from vgpnn import read_clip, write_video, generate, GenerateOptions, SynthesisConfig
    clip = read_clip("input.mp4", short_side=144, max_frames=30)
    clips = generate(clip.frames, SynthesisConfig(), GenerateOptions(variations=3, seed=7))
    write_video("out.mp4", clips[0], clip.fps)

    shape = plan_target_shape(clip.frames.shape[:3], clip.fps, TargetRequest(aspect=(9, 16), time_scale=2))
    looped = retarget(clip.frames, shape, options=RetargetOptions(loop=True))[0]

    painted = propagate(clip.frames, {0: edited_first_frame})  # (T, H, W, 3) uint8, the edit carried through
    smooth = interpolate(clip.frames, factor=2)  # .frames: 2 * T - 1 frames, for 2 * clip.fps
    longer = extend(clip.frames, 3 * len(clip.frames))[0]  # the clip, then twice as much more

The names are imported when first used, so ``import vgpnn`` and the video I/O layer
(``vgpnn.video``: read_clip, write_video, probe_clip) work without torch, numba or faiss;
only synthesis needs them.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "generate": "apps.generate", "GenerateOptions": "apps.generate",
    "retarget": "apps.retarget", "RetargetOptions": "apps.retarget", "TargetRequest": "apps.retarget",
    "plan_target_shape": "apps.retarget",
    "propagate": "apps.propagate", "PropagateOptions": "apps.propagate",
    "interpolate": "apps.interpolate", "InterpolateOptions": "apps.interpolate", "Interpolation": "apps.interpolate",
    "extend": "apps.extend", "ExtendOptions": "apps.extend",
    "SynthesisConfig": "config", "synthesize": "synthesis",
    "read_clip": "video", "write_video": "video", "probe_clip": "video", "Clip": "video",
    "VgpnnError": "errors", "InputError": "errors", "OutputError": "errors", "ConfigError": "errors",
    "ResourceError": "errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vgpnn' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
