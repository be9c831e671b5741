"""One error type for everything a user can fix: the message names the problem and the way out."""

from __future__ import annotations


class EdgeZooError(Exception):
    """A user-facing failure. `str(err)` is one line: what went wrong, then how to fix it."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem} -> {fix}")
        self.problem = problem
        self.fix = fix


class CheckpointError(EdgeZooError):
    pass


class ArtifactError(EdgeZooError):
    pass


class CompressionSpecError(EdgeZooError):
    pass


class ConversionError(EdgeZooError):
    pass


class RecipeError(EdgeZooError):
    pass
