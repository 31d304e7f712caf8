"""Exception types for mistakes a user can make.

Messages speak the library's language: a remedy is named as the Python argument that gives it
(:data:`OVERWRITE`). The CLI prints each as one line, with its own flags in their place, and
exits non-zero; anything that is not a ``VgpnnError`` is a bug and keeps its traceback.
"""

# How messages name a remedy, as the Python arguments that give it; the CLI says its flags instead.
OVERWRITE = "overwrite=True"
SMALLER_JOB = "a smaller short_side, fewer max_frames or a smaller batch_size"
CPU_DEVICE = "device='cpu' or 'auto'"
COARSEST_SIZE = "a larger coarsest_short_side"


class VgpnnError(Exception):
    """Base of every error caused by the user's input, options or environment."""


class InputError(VgpnnError):
    """An input file, folder or image is missing, unreadable or unusable."""


class OutputError(VgpnnError):
    """An output path cannot be written (exists, unwritable, unknown format)."""


class ConfigError(VgpnnError):
    """A parameter is out of range or parameters contradict each other."""


class ResourceError(VgpnnError):
    """The job would not fit in the memory of the chosen device."""
