"""Datasets from the field: stored incidents → labelled training images (`safewatch dataset export`).

`samples.py` reads the incidents through the store and their raw snapshots with the detections stored beside them
(`vision/media/snapshot_detections.py`); `yolo.py` and `coco.py` write the labels; `export.py` puts it together
(output folder, class names, train/val split, hard negatives, the export's own index).
"""
