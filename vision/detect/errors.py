"""Errors of the detection stage. Each message names the file (or image) and what is wrong with it."""

from __future__ import annotations


class DetectError(Exception):
    """Base class of every error raised by vision.detect."""


class ModelError(DetectError):
    """A model file is missing, unreadable, or not a detector this runtime understands."""


class CardError(DetectError):
    """A model card is missing, malformed or inconsistent. `lines` holds `FILE: field: message` entries."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


class ImageError(DetectError, ValueError):
    """An input image is unreadable, too large, or of the wrong dtype/shape."""


class BuildError(DetectError):
    """Building a model from its recipe failed."""


class EvalError(DetectError):
    """Bad evaluation input: annotations file, image directory, video. The message names the file and field."""
