"""One camera's pipeline over a file or URL, once (`safewatch replay`): the one-shot camera runtime.

Events go to `<out>/incidents.jsonl` (one IncidentEvent per line, replaced on every replay) and evidence under
`<out>/media`. Event times are the replay's start plus media time, so `started_at`/`ended_at` keep the clip's real
durations although decoding runs faster than real time, and `offset_s` (media time) makes a replay reproducible.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from pipelines.camera.assemble import CameraRuntime, EvidenceOptions, build_runtime
from pipelines.camera.pipeline import PipelineStats
from pipelines.camera.sinks import CountingSink, JsonlSink
from pipelines.config.camera import CameraConfig
from vision.detect.detector import DetectorOptions
from vision.detect.registry import ModelRegistry
from vision.media.chain import EvidenceChain
from vision.media.clip_writer import ClipWriter
from vision.redact import redact_url
from vision.sources import SourceError
from vision.types import Frame


class ReplayEnd(StrEnum):
    done = "done"  # the source ended
    source_failed = "source_failed"  # the source could not be opened or read (`ReplayReport.error` says why)
    interrupted = "interrupted"  # Ctrl-C: open incidents were closed before returning


@dataclass(frozen=True)
class ReplayReport:
    stats: PipelineStats
    opened_by_rule: dict[str, int]
    events: int
    jsonl: Path
    end: ReplayEnd
    error: str | None = None  # redacted


def replay(
    camera: CameraConfig,
    registry: ModelRegistry,
    source: str,
    out_dir: Path,
    *,
    realtime: bool = False,
    evidence: bool = True,
    evidence_key: bytes | None = None,
    chain: EvidenceChain | None = None,
    threads: int = 0,
    on_frame: Callable[[Frame], None] | None = None,
) -> ReplayReport:
    """Run `camera`'s pipeline over `source` (which replaces its detect stream) to the end.

    `chain`: the evidence chain manifests are written into (`<out>/media/chains/`); None: bare manifests.
    `threads`: ONNX Runtime intra-op threads (0 = its default). Raises `PipelineConfigError`/`ModelError` when the
    camera's models cannot be loaded; a failing source ends the replay (`ReplayEnd.source_failed`) instead.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    jsonl = out_dir / "incidents.jsonl"
    jsonl.unlink(missing_ok=True)
    counter = CountingSink()
    writer = ClipWriter() if evidence else None
    options = EvidenceOptions(media_root=out_dir / "media", key=evidence_key, chain=chain) if evidence else None
    origin = time.time()

    def clock(frame: Frame) -> datetime:
        return datetime.fromtimestamp(origin + frame.pts, tz=UTC)

    detector_options = DetectorOptions.model_validate({"session": {"intra_op_threads": threads}}) if threads else None
    try:
        with JsonlSink(jsonl) as sink:
            runtime = build_runtime(
                camera, registry, sinks=[sink, counter], source=source, realtime=realtime, evidence=options,
                clip_writer=writer, detector_options=detector_options, clock=clock,
            )  # fmt: skip
            end, error = _drive(runtime, on_frame)
    finally:
        if writer is not None:
            writer.close()
    return ReplayReport(
        stats=runtime.pipeline.stats,
        opened_by_rule=dict(counter.opened_by_rule),
        events=sum(counter.by_type.values()),
        jsonl=jsonl,
        end=end,
        error=error,
    )


def _drive(runtime: CameraRuntime, on_frame: Callable[[Frame], None] | None) -> tuple[ReplayEnd, str | None]:
    try:
        runtime.source.open()
        if runtime.record is not None:
            runtime.record.open()
        runtime.pipeline.run(runtime.source, threading.Event(), on_frame=on_frame)
    except SourceError as exc:
        return ReplayEnd.source_failed, redact_url(str(exc))
    except KeyboardInterrupt:
        runtime.pipeline.finish()
        return ReplayEnd.interrupted, None
    finally:
        runtime.close()
    return ReplayEnd.done, None
