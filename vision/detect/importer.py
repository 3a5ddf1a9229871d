"""Importing a user-supplied YOLO ONNX: validate it, copy it into the models directory, write its card."""

from __future__ import annotations

import logging
import pathlib
import re
import shutil

import numpy as np
import numpy.typing as npt

from vision.detect.card import FROM_METADATA, KNOWN_LABELS, ModelCard, Source, dump_card
from vision.detect.detector import Detector
from vision.detect.errors import ModelError
from vision.detect.postprocess import Layout
from vision.detect.session import ModelIO, SessionConfig, inspect_session, open_session
from vision.digest import sha256_file

log = logging.getLogger(__name__)
DEFAULT_INPUT = 640
_SYNONYMS = {"motorbike": "motorcycle", "ebike": "e_bike", "e-bike": "e_bike", "no-helmet": "no_helmet"}


def guess_layout(io: ModelIO, path: pathlib.Path, class_names: list[str] | None = None) -> Layout:
    """`yolov8` for `[B, 4+nc, N]`, `darknet-yolo` for `[B, N, 5+nc]`; N may be dynamic, nc comes from the names."""
    shape, names = io.output_shape, class_names or io.names
    nc = len(names) if names else None
    if len(shape) == 3:
        c1, c2 = shape[1], shape[2]
        v8 = c1 is not None and c1 > 4 and (nc == c1 - 4 if nc else (c2 is None or c1 < c2))
        dark = c2 is not None and c2 > 5 and (nc == c2 - 5 if nc else (c1 is None or c2 < c1))
        if v8 != dark:
            return "yolov8" if v8 else "darknet-yolo"
    raise ModelError(
        f"{path}: unknown output layout {list(shape)} with {nc} class names: "
        "expected [B, 4+nc, N] (Ultralytics) or [B, N, 5+nc] (darknet-yolo)"
    )


def default_labels(class_names: list[str]) -> dict[str, str]:
    """Classes whose (normalised) name is already a known semantic label map to it; the rest are dropped."""
    out = {}
    for name in class_names:
        norm = re.sub(r"[\s-]+", "_", name.strip().lower())
        norm = _SYNONYMS.get(name.strip().lower(), norm)
        if norm in KNOWN_LABELS:
            out[name] = norm
    return out


def _input_size(io: ModelIO) -> tuple[int, int]:
    _, _, h, w = io.input_shape
    if h is not None and w is not None:
        return h, w
    return io.imgsz or (DEFAULT_INPUT, DEFAULT_INPUT)


def import_model(
    src: pathlib.Path,
    name: str,
    models_dir: pathlib.Path,
    sample: npt.NDArray[np.uint8],
    *,
    labels: dict[str, str] | None = None,
    class_names: list[str] | None = None,
    force: bool = False,
) -> ModelCard:
    """Validate `src`, copy it to `models_dir/NAME.onnx`, run a test inference on `sample`, write `NAME.yaml`."""
    card_path, dest = models_dir / f"{name}.yaml", models_dir / f"{name}.onnx"
    if not force and (card_path.exists() or dest.exists()):
        raise ModelError(f"{card_path}: model {name!r} already exists (use --force to replace it)")
    session = open_session(src, SessionConfig())
    io = inspect_session(session, src)
    layout = guess_layout(io, src, class_names)
    names = class_names or io.names
    if names is None:
        raise ModelError(f"{src}: no `names` metadata; give the class names in the labels file (class_names: [...])")
    mapping = labels if labels is not None else default_labels(names)
    if not mapping:
        raise ModelError(f"{src}: none of the classes {names[:10]} is a known label; pass --labels FILE.yaml")
    card = ModelCard.model_validate(
        {
            "name": name,
            "file": dest.name,
            "format": layout,
            "input_size": _input_size(io),
            "preprocess": "letterbox" if layout == "yolov8" else "resize",
            "dynamic_batch": io.dynamic_batch,
            "class_names": FROM_METADATA if class_names is None else class_names,
            "labels": mapping,
            "source": Source(package="user", files=[src.name], licence="unknown (user-supplied)"),
            "notes": f"imported from {src.name}; output {list(io.output_shape)}, input {list(io.input_shape)}",
        }
    )
    models_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    try:
        detector = Detector(card, models_dir)
        found = detector.detect(sample, confidence=0.0)
    except Exception:
        dest.unlink(missing_ok=True)
        raise
    card = card.model_copy(update={"sha256": sha256_file(dest)})
    dump_card(card, card_path)
    log.info("imported %s as %s (%s, test inference: %d boxes)", src, name, layout, len(found))
    return card
