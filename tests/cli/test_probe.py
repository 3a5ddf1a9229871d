"""`safewatch probe` (cli/probe.py) against the sample clip, bad sources and an RTSP stream."""

from __future__ import annotations

import json
import pathlib

import pytest

from cli.main import main
from tests.fixtures.rtsp import RtspServer

KEYS = {"width", "height", "codec", "fps", "frames_decoded", "frames_kept", "frames_dropped", "reconnects", "state"}


def test_probe_json_on_sample_clip(sample_clip: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", str(sample_clip), "--seconds", "4", "--fps", "5", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert KEYS | {"states"} <= set(report)
    assert (report["width"], report["height"], report["codec"]) == (768, 576, "h264")
    assert report["fps"] == pytest.approx(10.0)
    assert report["frames_kept"] == 21 and report["frames_decoded"] >= 41 and report["frames_dropped"] == 0
    assert [s["state"] for s in report["states"]][:2] == ["connecting", "streaming"]
    assert all(isinstance(s["at"], float) for s in report["states"])


def test_probe_text_on_sample_clip(sample_clip: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", str(sample_clip), "--seconds", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:4] == [
        f"source      {sample_clip}",
        "video       h264 768x576, 10.0 fps nominal, 10.0 measured",
        "frames      decoded 21, kept 11, dropped 0",
        "state       streaming (0 reconnects)",
    ]
    assert [line.split()[2:] for line in lines[4:]] == [["connecting"], ["streaming"], ["stopped", "closed"]]


def test_probe_bad_setting_exit_2(sample_clip: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", str(sample_clip), "--fps", "500"]) == 2
    assert capsys.readouterr().err == "safewatch probe: error: Input should be less than or equal to 120\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "file not found"), (b"\x00garbage" * 1000, "not a readable video file")],
)
def test_probe_bad_file_is_one_line_exit_1(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], content: bytes | None, message: str
) -> None:
    path = tmp_path / "bad.mp4"
    if content is not None:
        path.write_bytes(content)
    assert main(["probe", str(path), "--json"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.mp4" in err and message in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [["probe"], ["probe", "x.mp4", "--fps", "0"], ["probe", "x.mp4", "--seconds", "abc"]])
def test_probe_usage_errors_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2


@pytest.mark.rtsp
@pytest.mark.timeout(30)
def test_probe_rtsp(rtsp_server: RtspServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", rtsp_server.url("cam4"), "--seconds", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["width"], report["codec"], report["state"]) == (768, "h264", "streaming")
    assert report["frames_decoded"] >= 10 and 7 <= report["fps"] <= 13
