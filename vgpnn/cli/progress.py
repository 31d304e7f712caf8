"""tqdm progress bars on stderr for the CLI (the library only calls callbacks)."""

from __future__ import annotations

from tqdm import tqdm

# The levels bar counts modelled seconds, not levels (finer levels cost far more: at 256x144x15
# the finest of 15 levels is about half the work), so its ETA is the model's; the level
# number is shown beside it.
_LEVELS_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {postfix} [{elapsed}<{remaining}]"


class ProgressBars:
    """One bar over outputs and one over the pyramid levels of the output in progress.
    ``level_weights``: the modelled cost of each level, coarsest first (vgpnn.estimate); the
    levels bar advances by them when the synthesis reports as many levels, else by one a level."""

    def __init__(self, enabled: bool, total: int, unit: str = "clip", level_weights: list[float] | None = None):
        self.enabled = enabled
        self.outputs = tqdm(total=total, unit=unit, position=0, disable=not enabled, leave=True,
                            desc="variations")
        self.levels: tqdm | None = None
        self._level_count = 0
        self.level_weights = level_weights

    def level_done(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        weights = self.level_weights if self.level_weights and len(self.level_weights) == total else [1.0] * total
        # The loop may start below the coarsest level (inpainting): levels it skips are not counted.
        if self.levels is None or self._level_count != total or done == 1:
            if self.levels is not None:
                self.levels.close()
            self.levels = tqdm(total=sum(weights), position=1, leave=False, desc="levels", bar_format=_LEVELS_FORMAT)
            self._level_count = total
        self.levels.set_postfix_str(f"level {done}/{total}", refresh=False)
        self.levels.update(sum(weights[:done]) - self.levels.n)

    def variation_done(self) -> None:
        self.outputs.update(1)

    def close(self) -> None:
        if self.levels is not None:
            self.levels.close()
        self.outputs.close()
