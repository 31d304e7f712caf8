"""tqdm progress bars on stderr for the CLI (the library only calls callbacks)."""

from __future__ import annotations

from tqdm import tqdm


class ProgressBars:
    """One bar over outputs and one over the pyramid levels of the output in progress."""

    def __init__(self, enabled: bool, total: int, unit: str = "clip"):
        self.enabled = enabled
        self.outputs = tqdm(total=total, unit=unit, position=0, disable=not enabled, leave=True,
                            desc="variations")
        self.levels: tqdm | None = None

    def level_done(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.levels is None or self.levels.total != total or done == 1:
            if self.levels is not None:
                self.levels.close()
            self.levels = tqdm(total=total, unit="level", position=1, leave=False, desc="levels")
        self.levels.update(done - self.levels.n)

    def variation_done(self) -> None:
        self.outputs.update(1)

    def close(self) -> None:
        if self.levels is not None:
            self.levels.close()
        self.outputs.close()
