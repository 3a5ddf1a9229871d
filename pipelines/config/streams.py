"""Which video sources a camera config may name, depending on who wrote it: the stream policy.

A camera's streams are opened by FFmpeg inside the service, so whoever sets them decides which files the server
reads and where it connects. Who may set what:

- YAML files on disk are the administrator's (`StreamPolicy.on_disk()`): every supported scheme, local files
  anywhere.
- `PUT /v1/cameras/{id}` (`StreamPolicy.api(...)`): local files (plain paths and `file:` URLs) must lie under the
  media roots (`SAFEWATCH_MEDIA_ROOTS`), tested on the path with symlinks resolved, and `..` is refused; without
  an admin key the only URLs are `rtsp://` and `rtsps://` (other schemes: http(s) MJPEG/HLS, rtmp, srt, tcp, udp,
  rtp, file, need an admin key or a YAML file on disk).
- A stream value the camera already had is kept as it is (`StreamPolicy.keeping`): an operator may edit the zones of
  a camera the administrator pointed at an HLS URL, not point a camera somewhere new.

A path outside the roots is refused with one message, the same whether or not the file exists and without the path,
so the API answers no question about the host's files. Whatever the policy, FFmpeg is opened with a protocol
whitelist matching the scheme (`vision.sources.media`), so a stream cannot reach another protocol either.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePath

from vision.sources.media import PROTOCOLS, scheme_of

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Every scheme a source can open: those the sources have an FFmpeg protocol whitelist for.
STREAM_SCHEMES = frozenset(PROTOCOLS)
#: Schemes any key that may edit cameras may set: cameras speak RTSP, and RTSP reaches nothing but RTSP servers.
OPERATOR_SCHEMES = frozenset({"rtsp", "rtsps"})


url_scheme = scheme_of  # the lower-case scheme of a `scheme://…` URL, None for a file path


def is_url(source: str) -> bool:
    """`source` is a URL (`scheme://…`, `file://` included) rather than a file path."""
    return scheme_of(source) is not None


def check_stream_text(value: str) -> str:
    """The checks every stream value passes, whoever wrote it. Raises ValueError saying what is wrong.

    Control characters are refused because FFmpeg writes the URL into protocol requests (an RTSP `OPTIONS` line): a
    CR/LF in it would let the value speak another protocol to whatever listens on the port.
    """
    if _CONTROL.search(value):
        raise ValueError("control characters (CR, LF, TAB, ...) are not allowed in a stream")
    if value != value.strip():
        raise ValueError("leading or trailing whitespace")
    scheme = url_scheme(value)
    if scheme is not None and scheme not in STREAM_SCHEMES:
        original = value.split("://", 1)[0]
        raise ValueError(f"unsupported URL scheme '{original}'; use one of {', '.join(sorted(STREAM_SCHEMES))}")
    return value


@dataclass(frozen=True, slots=True)
class StreamPolicy:
    """What a config may name as its streams (module docs).

    `media_roots`: directories local files must lie under (None: anywhere, the administrator's YAML on disk).
    `allow_any_scheme`: every supported URL scheme (admin), else `rtsp`/`rtsps` only.
    `kept`: stream values the camera already has, accepted as they are.
    """

    media_roots: tuple[Path, ...] | None = None
    allow_any_scheme: bool = True
    kept: frozenset[str] = frozenset()

    @classmethod
    def on_disk(cls) -> StreamPolicy:
        """YAML written on disk by the administrator: any scheme, files anywhere."""
        return cls()

    @classmethod
    def api(cls, media_roots: Iterable[Path], *, admin: bool) -> StreamPolicy:
        """A config set through the HTTP API: files under `media_roots`; other schemes than rtsp(s) need `admin`."""
        return cls(tuple(Path(os.path.abspath(root)) for root in media_roots), allow_any_scheme=admin)

    def keeping(self, values: Iterable[str | None]) -> StreamPolicy:
        """This policy, also accepting `values` as they are (the camera's current streams)."""
        return replace(self, kept=self.kept | {v for v in values if v})

    def problem(self, source: str, candidates: Sequence[Path]) -> str | None:
        """Why `source` may not be set under this policy; None when it may.

        `candidates`: for a file path, the absolute paths it is looked for at, in order (the first that exists is
        opened; `CameraConfig.stream_candidates`). A `file://` URL names the path after `file:`, as FFmpeg reads it.
        """
        if source in self.kept:
            return None
        scheme = url_scheme(source)
        if scheme is not None and not self.allow_any_scheme and scheme not in OPERATOR_SCHEMES:
            return (
                f"{scheme}:// streams need an admin key (or a YAML file on disk); other keys may set rtsp:// and "
                "rtsps:// URLs and video files under the media roots"
            )
        if scheme not in (None, "file") or self.media_roots is None:
            return None
        if scheme == "file":
            candidates = [Path(os.path.abspath(source[len("file:") :]))]
        if ".." not in PurePath(source).parts and self._opens_inside(candidates):
            return None
        roots = ", ".join(str(root) for root in self.media_roots) or "none configured"
        return (
            f"local video files must be under the media roots ({roots}; SAFEWATCH_MEDIA_ROOTS), with symlinks "
            "resolved and no '..'"
        )

    def _opens_inside(self, candidates: Sequence[Path]) -> bool:
        """The file that would be opened is inside a root. Before it exists, any candidate inside a root will do
        (the caller then reports it missing)."""
        if len(candidates) > 1:
            existing = [c for c in candidates if _exists(c)]
            candidates = existing[:1] or candidates
        return any(self._inside(c) for c in candidates)

    def _inside(self, path: Path) -> bool:
        """`path` names a place under a root, and is still under one with every symlink resolved.

        The first test needs no file system access, so a path outside every root is refused the same way whether
        or not it exists.
        """
        assert self.media_roots is not None
        lexical = Path(os.path.abspath(path))
        real_roots = [_real(root) for root in self.media_roots]
        named = [*self.media_roots, *(r for r in real_roots if r is not None)]
        if not any(lexical.is_relative_to(root) for root in named):
            return False
        real = _real(lexical)
        return real is not None and any(r is not None and real.is_relative_to(r) for r in real_roots)


def _real(path: Path) -> Path | None:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop (RuntimeError before Python 3.13)
        return None


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:
        return False
