"""Camera configs as YAML files in the config directory, the source of truth (operators also edit them by hand).

A file is found by the camera `id` written inside it, not by its name, so `PUT /v1/cameras/gate-3` replaces a
hand-written `gate3-east.yml` holding `id: gate-3` (the API's own file is always `<id>.yaml`). A file whose YAML is
broken claims the id of its file stem. Validation is the YAML loader's own
(`pipelines.config.camera.load_camera_config`),
run on the file about to be installed, so the API accepts exactly what `safewatch config validate` and the workers
accept, with the same dotted field paths in its problems, plus the stream policy of the caller
(`pipelines.config.streams.StreamPolicy`: which files and URL schemes an API key may point a camera at). The
camera's current stream values are kept as they are, so editing zones never needs more rights than the streams took.

Writes are atomic: the new YAML goes to a hidden temp file in the config directory (`.<id>.<random>.tmp`, which
the loader and the workers' directory watch ignore: hidden, not `*.yaml`), is validated there and then renamed over
the target, so a worker polling the directory never sees a half-written file. The file is created owner-only (0600,
whatever it was before): it may hold stream passwords. One lock per store serialises writes within a process;
across processes the last rename wins (`If-Match` with the ETag detects lost updates).

Reads are cached per file (`pipelines.config.source.FileCache`): a file is parsed again only when its inode, mtime or
size changed, so listing cameras costs a `stat` per file, not a YAML parse and a validation per request.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipelines.config.camera import CameraConfig, ConfigError, ConfigProblem, StreamPolicy, load_camera_config
from pipelines.config.source import FileCache
from pipelines.config.yaml_io import read_yaml
from vision.redact import redact_url

log = logging.getLogger(__name__)

CONFIG_SUFFIXES = frozenset({".yaml", ".yml"})
#: Extra validation run on a candidate config before it is installed (e.g. label coverage); problems → ConfigError.
Check = Callable[[CameraConfig], list[ConfigProblem]]


class CameraNotFound(LookupError):
    """No config file claims this camera id."""


class CameraFileInvalid(Exception):
    """The file holding this camera id does not validate (edited by hand); `problems` says why."""

    def __init__(self, path: Path, problems: list[ConfigProblem]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path.name}: {len(problems)} problem(s)")


class PreconditionFailed(Exception):
    """`If-Match` did not match the current file (someone else changed it)."""


class FileTaken(Exception):
    """`<id>.yaml` exists but holds another camera; writing it would destroy that camera."""


@dataclass(frozen=True, slots=True)
class StoredCamera:
    config: CameraConfig
    path: Path
    etag: str


@dataclass(frozen=True, slots=True)
class _Parsed:
    """What one read of a config file says: its camera (or its problems), its ETag and the id it claims."""

    stored: StoredCamera | None
    problems: list[ConfigProblem]
    claimed_id: str


def _parse(path: Path) -> _Parsed:
    """Read and validate one file (stream files need not exist); the raw YAML is parsed only for an invalid file."""
    data = path.read_bytes()
    try:
        config = load_camera_config(path, check_files=False)
    except ConfigError as exc:
        try:
            raw, _node = read_yaml(path)
        except ConfigError:
            raw = {}
        claimed = raw.get("id")
        return _Parsed(None, exc.problems, claimed if isinstance(claimed, str) else path.stem)
    return _Parsed(StoredCamera(config, path, etag_of(data)), [], config.id)


def etag_of(data: bytes) -> str:
    """A strong ETag of a file's bytes (quoted, as HTTP wants it)."""
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


class _Dumper(yaml.SafeDumper):
    """Block style for mappings, flow style for short lists (`zones: [a, b]`, `polygon: [[0.1, 0.2], …]`).

    Never anchors and aliases (a value used twice is written twice): the loader refuses them.
    """

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    def scalar(x: object) -> bool:
        return not isinstance(x, dict | list)

    flow = all(scalar(x) for x in data) or all(isinstance(x, list) and all(scalar(y) for y in x) for x in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def dump_yaml(camera_id: str, data: Mapping[str, Any]) -> str:
    """The YAML text the API writes for a camera: a short header, then the fields in the order given."""
    header = (
        f"# Camera {camera_id}: written by PUT /v1/cameras/{camera_id}. Hand edits are fine; the next PUT rewrites\n"
        "# the whole file (comments are not kept). Validate with: safewatch config validate\n"
    )
    body = yaml.dump(dict(data), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)
    return header + body


def restore_credentials(body: dict[str, Any], stored: Mapping[str, Any] | None) -> dict[str, Any]:
    """Stream URLs sent back exactly as GET showed them (`rtsp://***@host/…`) keep the stored credentials.

    So GET → edit zones → PUT does not replace a camera's password with `***`. Any other value is stored as given.
    """
    streams, old = body.get("streams"), (stored or {}).get("streams")
    if not isinstance(streams, dict) or not isinstance(old, dict):
        return body
    fixed = dict(streams)
    for key, value in streams.items():
        previous = old.get(key)
        if isinstance(value, str) and isinstance(previous, str) and value != previous and value == redact_url(previous):
            fixed[key] = previous
    return {**body, "streams": fixed}


class CameraStore:
    """Read, write and delete camera configs in `config_dir` (see the module docs)."""

    def __init__(self, config_dir: Path) -> None:
        self.config_dir = config_dir
        self._lock = threading.Lock()
        self._parsed = FileCache(_parse)  # each file is parsed once per change, not once per request

    def files(self) -> list[Path]:
        """Config files, sorted, as the loader picks them (`*.yaml`/`*.yml`, not hidden, not recursive)."""
        if not self.config_dir.is_dir():
            return []
        files = sorted(
            p for p in self.config_dir.iterdir() if p.suffix in CONFIG_SUFFIXES and p.name[0] != "." and p.is_file()
        )
        self._parsed.keep_only(files)
        return files

    def _raw(self, path: Path) -> dict[str, Any] | None:
        try:
            data, _node = read_yaml(path)
        except ConfigError:
            return None
        return data

    def _claimed_id(self, path: Path) -> str:
        try:
            return self._parsed.get(path)[0].claimed_id
        except OSError:  # vanished since it was listed
            return path.stem

    def files_of(self, camera_id: str) -> list[Path]:
        """Every file claiming `camera_id` (normally one; more when an operator duplicated an id)."""
        return [p for p in self.files() if self._claimed_id(p) == camera_id]

    def _load(self, path: Path) -> StoredCamera:
        parsed, _changed = self._parsed.get(path)
        if parsed.stored is None:
            raise CameraFileInvalid(path, parsed.problems)
        return parsed.stored

    def scan(self) -> tuple[list[StoredCamera], list[ConfigProblem]]:
        """Valid cameras, and the problems of the files that are not (invalid, duplicate id), as the loader sees them.

        Stream files are not required to exist here (PUT checks them; a missing clip should not hide a camera).
        """
        cameras: list[StoredCamera] = []
        problems: list[ConfigProblem] = []
        owners: dict[str, Path] = {}
        for path in self.files():
            try:
                stored = self._load(path)
            except CameraFileInvalid as exc:
                problems += exc.problems
                continue
            except OSError as exc:  # vanished or unreadable between listing and reading
                problems.append(ConfigProblem(str(path), "", f"cannot read: {exc.strerror or exc}"))
                continue
            owner = owners.setdefault(stored.config.id, path)
            if owner != path:
                problems.append(
                    ConfigProblem(str(path), "id", f"camera id '{stored.config.id}' is already used by {owner.name}")
                )
                continue
            cameras.append(stored)
        return cameras, problems

    def get(self, camera_id: str) -> StoredCamera:
        """The camera's config (first file claiming the id). Raises CameraNotFound, CameraFileInvalid."""
        for path in self.files_of(camera_id):
            try:
                return self._load(path)
            except FileNotFoundError:  # replaced or deleted since it was listed
                continue
        raise CameraNotFound(camera_id)

    def _check_precondition(self, paths: list[Path], if_match: str | None) -> None:
        if if_match is None:
            return
        current = {etag_of(p.read_bytes()) for p in paths[:1]}
        wanted = {t.strip() for t in if_match.split(",")}
        if not (current & wanted or ("*" in wanted and current)):
            raise PreconditionFailed(if_match)

    def put(
        self,
        camera_id: str,
        body: Mapping[str, Any],
        *,
        policy: StreamPolicy,
        check: Check | None = None,
        if_match: str | None = None,
    ) -> tuple[StoredCamera, bool]:
        """Create or replace the camera from `body` (the config as in the YAML; `id` absent or equal to `camera_id`).

        `policy`: the streams the caller may set (its current ones are kept whatever the policy). Returns (stored
        camera, created). Raises ConfigError (problems with dotted field paths, `file` = the target file),
        PreconditionFailed, FileTaken.
        """
        target = self.config_dir / f"{camera_id}.yaml"
        if "id" in body and body["id"] != camera_id:
            msg = f"id {body['id']!r} in the body does not match the camera id in the URL ({camera_id!r})"
            raise ConfigError([ConfigProblem(str(target), "id", msg)])
        with self._lock:
            paths = self.files_of(camera_id)
            self._check_precondition(paths, if_match)
            if target.exists() and target not in paths:
                raise FileTaken(f"{target.name} holds another camera ('{self._claimed_id(target)}'); rename it first")
            data = {"id": camera_id, **{k: v for k, v in body.items() if k != "id"}}
            current = self._raw(paths[0]) if paths else None
            data = restore_credentials(data, current)
            policy = policy.keeping(_stream_values(current))
            stored = self._install(target, dump_yaml(camera_id, data), check, policy)
            for other in paths:
                if other != target:
                    other.unlink(missing_ok=True)
                    log.info("camera %s: removed %s (replaced by %s)", camera_id, other.name, target.name)
        log.info("camera %s: %s %s", camera_id, "replaced" if paths else "created", target)
        return stored, not paths

    def _install(self, target: Path, text: str, check: Check | None, policy: StreamPolicy) -> StoredCamera:
        """Write `text` to a temp file beside `target`, validate it like the loader does, rename it over `target`.

        mkstemp creates the temp file 0600 whatever the umask, and the rename keeps that mode.
        """
        self.config_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".tmp", dir=self.config_dir)
        tmp = Path(tmp_name)
        try:
            raw = text.encode("utf-8")
            with os.fdopen(fd, "wb") as handle:
                handle.write(raw)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                config = load_camera_config(tmp, check_files=True, policy=policy)
            except ConfigError as exc:
                raise ConfigError([_renamed(p, target) for p in exc.problems]) from None
            problems = check(config) if check is not None else []
            if problems:
                raise ConfigError([_renamed(p, target) for p in problems])
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return StoredCamera(config.with_base_dir(self.config_dir.resolve()), target, etag_of(raw))

    def delete(self, camera_id: str, *, if_match: str | None = None) -> list[Path]:
        """Remove every file claiming `camera_id`; returns them. Raises CameraNotFound, PreconditionFailed."""
        with self._lock:
            paths = self.files_of(camera_id)
            if not paths:
                raise CameraNotFound(camera_id)
            self._check_precondition(paths, if_match)
            for path in paths:
                path.unlink(missing_ok=True)
        log.info("camera %s: deleted %s", camera_id, ", ".join(p.name for p in paths))
        return paths


def _stream_values(raw: Mapping[str, Any] | None) -> list[str]:
    """The stream values of a stored config's raw YAML (none when it has no valid `streams` mapping)."""
    streams = (raw or {}).get("streams")
    return [v for v in streams.values() if isinstance(v, str)] if isinstance(streams, dict) else []


def _renamed(problem: ConfigProblem, target: Path) -> ConfigProblem:
    return ConfigProblem(str(target), problem.path, problem.message, problem.line, problem.column)
