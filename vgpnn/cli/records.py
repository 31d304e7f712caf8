"""What ``--skip-existing`` compares before it keeps an output: the parameters it was made with.

A name says little: ``clip_0.mp4`` may come from another working size, noise or command. The
``--report`` of the run being resumed says what each output was made from, so with
``--skip-existing --report FILE`` and FILE there from the earlier run, an existing output is kept
only when that report lists it as written (or kept) by the same command, from the same input,
with the same seed and every parameter that shapes an output equal (not where outputs go, how
many were made or how they were batched: a variation depends only on its own seed). Anything
else that exists is made again. Without an earlier report there is nothing to compare, and the
runner says once that outputs are then kept by name only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

# Parameters that do not change what an output holds: where outputs and side files go, what
# happens to existing files, how many outputs a run makes and in what batches.
_NOT_SHAPING = frozenset({"output", "format", "overwrite", "skip_existing", "preview", "report", "quiet",
                          "variations", "batch_size", "seed"})


def fingerprint(command: str, source, parameters: dict, seed) -> str:
    """What an output of ``source`` is made from, as one comparable string."""
    shaping = {name: value for name, value in parameters.items() if name not in _NOT_SHAPING}
    return json.dumps({"command": command, "input": os.path.abspath(source), "seed": seed,
                       "parameters": shaping}, sort_keys=True, default=str)


class EarlierReport:
    """The outputs an earlier run's report says it wrote or kept, by absolute path."""

    def __init__(self, path: Path | None):
        self.found = False
        self._made: dict[str, str] = {}
        if path is None:
            return
        try:
            report = json.loads(Path(path).read_text())
            records = report["records"]
        except (OSError, ValueError, KeyError, TypeError):
            return
        self.found = True
        for record in records:
            try:
                if record["status"] in ("written", "skipped") and record["output"]:
                    self._made[os.path.abspath(record["output"])] = fingerprint(
                        record["command"], record["input"], record["parameters"], record.get("seed"))
            except (KeyError, TypeError):
                continue

    def made_alike(self, output: Path, expected: str) -> bool:
        """Whether the earlier run made ``output`` from what ``expected`` says."""
        return self._made.get(os.path.abspath(output)) == expected
