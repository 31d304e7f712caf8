"""Choosing the torch device a job runs on."""

from __future__ import annotations

from .errors import CPU_DEVICE, ConfigError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """'auto' is CUDA when a GPU is usable, else the CPU; 'cuda' without a GPU is an error."""
    import torch  # here, not at the top: the command line reads DEVICES before it needs torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} asked for, but this torch build sees no CUDA GPU "
                              f"(torch {torch.__version__}); use {CPU_DEVICE}")
        return torch.device(name)
    raise ConfigError(f"unknown device {name!r}; expected one of {', '.join(DEVICES)}")
