"""The RTSP cameras: tests/fixtures/rtsp.py's GStreamer server, one mount per camera, each mount with its own file
(busy, or one of the quiet variants, so quiet cameras' crossings do not line up), and CPU readings from /proc."""

from __future__ import annotations

import os
import pathlib
import subprocess

from bench.capacity.footage import STREAM_FPS, Footage
from tests.fixtures.rtsp import SERVER_SCRIPT, SYSTEM_PYTHON, RtspServer

MIX_EVERY = 4  # mix: camera i is busy when i % 4 == 0 (1 busy : 3 quiet)


class MountedRtspServer(RtspServer):
    """`RtspServer` with a file per mount (the fixture serves one file on every mount)."""

    def __init__(self, files: dict[str, pathlib.Path], fps: int = STREAM_FPS) -> None:
        super().__init__(next(iter(files.values())), list(files), fps)
        self.files = files

    def start(self) -> MountedRtspServer:
        cmd = [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port), "--fps", str(self.fps)]
        cmd += ["--parent-pid", str(os.getpid())]
        for name, path in self.files.items():
            cmd += ["--mount", f"/{name}={path}"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._wait_ready()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


def mounts(busy: Footage, quiet: Footage, most: int) -> dict[str, pathlib.Path]:
    """busy0.., quiet0.. (quiet i on variant i), mix0.. (every 4th busy, the others quiet variants)."""
    files = {f"busy{i}": busy.file_for(i) for i in range(most)}
    files |= {f"quiet{i}": quiet.file_for(i) for i in range(most)}
    files |= {f"mix{i}": busy.file_for(i) if i % MIX_EVERY == 0 else quiet.file_for(i) for i in range(most)}
    return files


def mount_names(kind: str, cameras: int) -> list[str]:
    return [f"{kind}{i}" for i in range(cameras)]


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` (all its threads), 0 when it is gone."""
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """CPU seconds all cores spent busy since boot (everything but idle and iowait), from /proc/stat."""
    values = [int(v) for v in pathlib.Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")
