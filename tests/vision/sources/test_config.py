from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from vision.sources import SourceConfig


def test_defaults_are_sane() -> None:
    cfg = SourceConfig()
    assert cfg.analysis_fps == 5.0
    assert cfg.realtime is False and cfg.loop is False and cfg.decode is True
    assert 0 < cfg.backoff_initial_s <= cfg.backoff_max_s
    assert cfg.queue_size >= 1 and cfg.ring_seconds > 0


@pytest.mark.parametrize(
    ("fields", "ok"),
    [
        ({"analysis_fps": 10}, True),
        ({"analysis_fps": None}, True),
        ({"analysis_fps": 0}, False),
        ({"analysis_fps": -1}, False),
        ({"read_timeout_s": 0}, False),
        ({"open_timeout_s": 0.5, "read_timeout_s": 0.5}, True),
        ({"backoff_initial_s": 2, "backoff_max_s": 1}, False),
        ({"queue_size": 0}, False),
        ({"ring_seconds": 0}, True),
        ({"ring_seconds": -1}, False),
        ({"thread_type": "FRAME", "threads": 2}, True),
        ({"thread_type": "GPU"}, False),
        ({"max_reconnects": 3}, True),
        ({"fps": 5}, False),  # unknown field: extra="forbid"
    ],
)
def test_validation(fields: dict[str, Any], ok: bool) -> None:
    if ok:
        cfg = SourceConfig(**fields)
        for key, value in fields.items():
            assert getattr(cfg, key) == value
    else:
        with pytest.raises(ValidationError):
            SourceConfig(**fields)
