"""Conversion between decoded frames (T, H, W, 3) uint8 and the engine's (C, T, H, W) floats."""

from __future__ import annotations

import numpy as np
import torch


def frames_to_tensor(frames: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (3, T, H, W) float32 in [0, 1]."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected frames (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    tensor = torch.from_numpy(np.array(frames, copy=True)).to(device)  # decoded arrays may be read-only
    return tensor.permute(3, 0, 1, 2).float().div_(255.0)


def tensor_to_frames(video: torch.Tensor) -> np.ndarray:
    """(3, T, H, W) float in [0, 1] -> (T, H, W, 3) uint8, rounded."""
    if video.dim() != 4 or video.shape[0] != 3:
        raise ValueError(f"expected a video (3, T, H, W), got {tuple(video.shape)}")
    scaled = video.detach().clamp(0, 1).mul(255.0).round_().to(torch.uint8)
    return scaled.permute(1, 2, 3, 0).contiguous().cpu().numpy()
