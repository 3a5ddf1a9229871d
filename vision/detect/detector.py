"""`Detector`: one ONNX model + its card → `Detections` with semantic labels, for one frame or a batch."""

from __future__ import annotations

import logging
import pathlib
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vision.detect.card import ModelCard
from vision.detect.errors import ModelError
from vision.detect.postprocess import RawDetections, decode, num_classes
from vision.detect.preprocess import Transform, check_image, prepare, target_shape, to_blob
from vision.detect.session import ModelIO, SessionConfig, inspect_session, open_session
from vision.types import Detections, FloatArray, ImageArray

log = logging.getLogger(__name__)


class DetectorOptions(BaseModel):
    """Run-time choices that are not properties of the model (those live in its card)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    session: SessionConfig = Field(default_factory=SessionConfig)
    confidence: float | None = Field(
        default=None, ge=0.0, le=1.0, description="overrides the card's confidence threshold"
    )
    iou: float | None = Field(default=None, gt=0.0, le=1.0, description="overrides the card's NMS IoU threshold")
    max_detections: int = Field(default=300, ge=1, description="per image, after NMS")
    max_batch: int = Field(default=16, ge=1, description="frames per session.run when the model has a dynamic batch")
    keep_unmapped: bool = Field(default=False, description="keep classes without a semantic label (label '')")


Batch = tuple[FloatArray, list[int], list[Transform]]


class Detector:
    """Loads `models_dir / card.file` and runs it. Frames are RGB uint8 HxWx3 (as in `vision.types.Frame`)."""

    def __init__(self, card: ModelCard, models_dir: pathlib.Path, options: DetectorOptions | None = None) -> None:
        self.card = card
        self.options = options or DetectorOptions()
        self.path = models_dir / card.file
        self.session = open_session(self.path, self.options.session)
        self.io: ModelIO = inspect_session(self.session, self.path)
        self.input_hw = self._input_hw()
        self.class_names = self._class_names()
        self._names = np.asarray(self.class_names, dtype=np.str_)
        self._model_name = np.asarray([card.name], dtype=np.str_)
        self._labels = np.asarray([card.labels.get(n, "") for n in self.class_names], dtype=np.str_)
        log.info("loaded model %s (%s) providers=%s", card.name, self.path, self.providers)

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    def _input_hw(self) -> tuple[int, int]:
        _, _, h, w = self.io.input_shape
        card_hw = self.card.input_size
        if h is not None and w is not None and (h, w) != card_hw:
            raise ModelError(f"{self.path}: input is {h}x{w} but the card says input_size {list(card_hw)}")
        return card_hw

    def _class_names(self) -> list[str]:
        try:
            nc = num_classes(self.card.format, self.io.output_shape)
        except ValueError as exc:
            raise ModelError(f"{self.path}: unknown output layout for format {self.card.format}: {exc}") from exc
        names = self.card.class_names if isinstance(self.card.class_names, list) else self.io.names
        if names is None:
            raise ModelError(f"{self.path}: card says class_names 'from metadata' but the model has no `names`")
        if len(names) != nc:
            raise ModelError(f"{self.path}: output has {nc} classes but {len(names)} class names are known")
        unknown = sorted(set(self.card.labels) - set(names))
        if unknown:
            raise ModelError(f"{self.path}: card labels name classes the model does not have: {', '.join(unknown)}")
        return names

    def detect(self, image: ImageArray, *, confidence: float | None = None, iou: float | None = None) -> Detections:
        return self.detect_batch([image], confidence=confidence, iou=iou)[0]

    def detect_batch(
        self, images: Sequence[ImageArray], *, confidence: float | None = None, iou: float | None = None
    ) -> list[Detections]:
        """Detect on several frames; batched in one `session.run` when the model allows, else one at a time."""
        conf, nms_iou = self._thresholds(confidence, iou)
        results: list[Detections] = [Detections.empty()] * len(images)
        for blob, indices, transforms in self.prepare(images):
            for i, det in zip(indices, self.finish(self.infer(blob), transforms, conf, nms_iou), strict=True):
                results[i] = det
        return results

    def _thresholds(self, confidence: float | None, iou: float | None) -> tuple[float, float]:
        conf = confidence if confidence is not None else self.options.confidence
        nms_iou = iou if iou is not None else self.options.iou
        return (
            self.card.thresholds.confidence if conf is None else conf,
            self.card.thresholds.iou if nms_iou is None else nms_iou,
        )

    def prepare(self, images: Sequence[ImageArray]) -> list[Batch]:
        """Pre-process frames into blobs: frames sharing an input shape are stacked, up to the batch limit."""
        groups: dict[tuple[int, int], list[int]] = {}
        for i, image in enumerate(images):
            hw = check_image(image).shape[:2]
            shape = target_shape(
                (hw[0], hw[1]), self.input_hw, self.card.preprocess, self.card.stride, self.io.dynamic_hw
            )
            groups.setdefault(shape, []).append(i)
        limit = self.options.max_batch if self.io.dynamic_batch else 1
        batches: list[Batch] = []
        for shape, indices in groups.items():
            for start in range(0, len(indices), limit):
                chunk = indices[start : start + limit]
                prepared = [prepare(images[i], shape, self.card.preprocess) for i in chunk]
                batches.append((to_blob([p[0] for p in prepared]), chunk, [p[1] for p in prepared]))
        return batches

    def infer(self, blob: FloatArray) -> FloatArray:
        out: FloatArray = self.session.run(None, {self.io.input_name: blob})[0]
        return out

    def finish(self, output: FloatArray, transforms: list[Transform], conf: float, iou: float) -> list[Detections]:
        raws = decode(output, self.card.format, conf, iou, self.options.max_detections)
        return [self._to_detections(raw, t) for raw, t in zip(raws, transforms, strict=True)]

    def _to_detections(self, raw: RawDetections, transform: Transform) -> Detections:
        labels = self._labels[raw.class_id]
        keep = np.ones(len(labels), dtype=np.bool_) if self.options.keep_unmapped else labels != ""
        class_id = raw.class_id[keep]
        return Detections(
            xyxy=transform.to_frame(raw.xyxy[keep]),
            confidence=raw.confidence[keep],
            class_id=class_id,
            label=labels[keep],
            data={"class_name": self._names[class_id], "model": self._model_name.repeat(len(class_id))},
        )
