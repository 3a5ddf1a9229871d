"""Multi-object tracking: ByteTrack on `Detections`, in media time."""

from vision.track.bytetrack import ByteTracker, TrackSnapshot, TrackState
from vision.track.config import TrackerConfig

__all__ = ["ByteTracker", "TrackSnapshot", "TrackState", "TrackerConfig"]
