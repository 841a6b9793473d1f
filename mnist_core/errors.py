"""Errors a user can cause and fix. Each carries one sentence that says what is wrong and what to do.

The CLI prints it on stderr and exits 2; the app shows it with `st.error`. Anything else is a bug.
"""

MB = 1_000_000  # file sizes in messages and limits are decimal megabytes, as the app's upload widget shows them


class StudioError(Exception):
    """A problem with the user's input or environment, explained in a message meant for people."""


class DataError(StudioError):
    """The MNIST files are missing, unreadable or corrupt."""


class CheckpointError(StudioError):
    """A model file cannot be loaded (or saved) safely."""


class ImageError(StudioError):
    """An image cannot be read or is unreasonable (too large, not an image...)."""


class ConfigError(StudioError):
    """Training settings that cannot work, refused before training starts."""


class TrainingDiverged(StudioError):
    """The loss became NaN/inf or exploded (`train.DivergenceWatch`). `result` holds the model with the last good
    weights."""

    def __init__(self, message: str, result: object = None) -> None:
        super().__init__(message)
        self.result = result
