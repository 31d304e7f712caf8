"""What ``vgpnn --version`` reports: enough to reproduce a run or a bug report, one item a line."""

from __future__ import annotations

import importlib
import platform

from .. import __version__


def version_lines() -> list[str]:
    import av
    import torch

    from ..device import resolve_device

    cuda = torch.version.cuda
    device = resolve_device("auto")
    device_text = str(device)
    if device.type == "cuda":
        device_text += f" ({torch.cuda.get_device_name(device)})"
    return [
        f"vgpnn {__version__}",
        f"Python {platform.python_version()}",
        f"torch {torch.__version__} ({'CUDA ' + cuda if cuda else 'no CUDA'})",
        f"PyAV {av.__version__}",
        f"FFmpeg {_ffmpeg(av)}",
        f"numba {_optional('numba')}",
        f"faiss {_optional('faiss')}",
        f"triton {_optional('triton')}",
        f"device {device_text} (what --device auto uses)",
    ]


def _ffmpeg(av) -> str:
    """The FFmpeg release and libraries PyAV was built with, as far as this PyAV tells."""
    release = getattr(av, "ffmpeg_version_info", None)
    libraries = getattr(av, "library_versions", None) or {}
    wanted = [name for name in ("libavcodec", "libavformat", "libavutil") if name in libraries]
    parts = ", ".join(f"{name} {'.'.join(str(n) for n in libraries[name])}" for name in wanted)
    if release and parts:
        return f"{release} ({parts})"
    return str(release or parts or "version unknown")


def _optional(module: str) -> str:
    try:
        imported = importlib.import_module(module)
    except ImportError:
        return "not installed"
    except Exception as error:  # installed but broken (a missing driver): say so, still report the rest
        return f"installed but failed to import ({type(error).__name__}: {error})"
    return str(getattr(imported, "__version__", "installed, version unknown"))
