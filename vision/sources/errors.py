"""The video-source error hierarchy. Every message names the source (URLs pass through `redact_url`)."""

from __future__ import annotations


class SourceError(Exception):
    """Base class: anything a video source raises on purpose."""


class SourceOpenError(SourceError):
    """The source could not be opened (missing file, refused connection, bad URL, no video stream)."""


class SourceTimeoutError(SourceOpenError):
    """Opening or reading took longer than the configured timeout (a hung or silent server)."""


class CorruptMediaError(SourceError):
    """The file is not readable video, or ends early (truncated)."""


class EndOfStream(SourceError):
    """The source has ended (end of file, or the source was stopped); iteration ends on it."""
