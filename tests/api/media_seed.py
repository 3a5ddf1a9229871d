"""An incident with real evidence for the media-link tests: the sample clip's first frame as the annotated snapshot
(and a grey-scaled copy as the raw one) and a 4 s clip cut from the sample clip by the project's clip writer."""

from __future__ import annotations

from pathlib import Path

from api.routers.frames import first_frame
from api.store.db import Store
from api.store.incidents import apply_event
from tests.api.conftest import make_event
from tests.vision.media.packets_util import demux
from vision.media.clip import select_clip_packets, write_clip
from vision.media.snapshot import encode_jpeg


def seed_incident(store: Store, media_dir: Path, sample_clip: Path, incident: str, **fields: object) -> None:
    folder = media_dir / incident
    folder.mkdir(parents=True, exist_ok=True)
    image = first_frame(str(sample_clip))
    assert image is not None
    (folder / "snapshot.jpg").write_bytes(encode_jpeg(image, 85))
    (folder / "snapshot_raw.jpg").write_bytes(
        encode_jpeg(image.mean(axis=2, keepdims=True).repeat(3, 2).astype("uint8"), 85)
    )
    params, packets = demux(sample_clip)
    assert not write_clip(select_clip_packets(packets, 0.0, 4.0), params, folder / "clip.mp4").file.missing
    event = make_event(
        incident,
        0,
        camera_id="demo-gate",
        site="demo-site",
        snapshot_url=f"{incident}/snapshot.jpg",
        clip_url=f"{incident}/clip.mp4",
        **fields,
    )
    apply_event(store, event)
