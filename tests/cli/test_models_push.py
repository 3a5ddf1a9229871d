"""`safewatch models push`: bad input exits 2 before anything is sent, an unreachable API exits 1. The push itself
against a running API (accepted, and refused with exit 2) is in tests/pipelines/distributed/test_model_rollout.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.main import main
from tests.fixtures.redis import free_port

MODEL = Path("models") / "coco-yolov3-tiny.onnx"
CARD = Path("models") / "coco-yolov3-tiny.yaml"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([str(MODEL), "--card", str(CARD)], "no API key"),
        (["missing.onnx", "--card", str(CARD), "--key", "k"], "missing.onnx: no such file"),
        ([str(MODEL), "--card", "missing.yaml", "--key", "k"], "missing.yaml: cannot read"),
        ([str(MODEL), "--card", "{bad_card}", "--key", "k"], "invalid model card"),
    ],
)
def test_bad_input_exits_2(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SAFEWATCH_API_KEY", raising=False)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nformat: yolov9\n")
    argv = [a.replace("{bad_card}", str(bad)) for a in args]
    assert main(["models", "push", *argv, "--url", "http://127.0.0.1:9"]) == 2
    assert message in capsys.readouterr().err


def test_an_unreachable_api_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    assert main(["models", "push", str(MODEL), "--card", str(CARD), "--key", "k", "--url", url]) == 1
    assert "ConnectError" in capsys.readouterr().err
