"""vgpnn: new videos from one short video by space-time patch nearest neighbours (VGPNN).

Python API::

    from vgpnn import read_clip, write_video, generate, GenerateOptions, SynthesisConfig
    clip = read_clip("input.mp4", short_side=144, max_frames=30)
    clips = generate(clip.frames, SynthesisConfig(), GenerateOptions(variations=3, seed=7))
    write_video("out.mp4", clips[0], clip.fps)

    shape = plan_target_shape(clip.frames.shape[:3], clip.fps, TargetRequest(aspect=(9, 16), time_scale=2))
    looped = retarget(clip.frames, shape, options=RetargetOptions(loop=True))[0]
"""

__version__ = "0.1.0"

from .apps.generate import GenerateOptions, generate  # noqa: E402
from .apps.retarget import RetargetOptions, TargetRequest, plan_target_shape, retarget  # noqa: E402
from .config import SynthesisConfig  # noqa: E402
from .errors import ConfigError, InputError, OutputError, ResourceError, VgpnnError  # noqa: E402
from .synthesis import synthesize  # noqa: E402
from .video import Clip, probe_clip, read_clip, write_video  # noqa: E402

__all__ = ["__version__", "generate", "GenerateOptions", "retarget", "RetargetOptions", "TargetRequest",
           "plan_target_shape", "SynthesisConfig", "synthesize",
           "read_clip", "write_video", "probe_clip", "Clip", "VgpnnError", "InputError",
           "OutputError", "ConfigError", "ResourceError"]
