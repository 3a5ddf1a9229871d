"""Build a randomly initialised YOLOv8n (Ultralytics `yolov8n.yaml`, COCO class names) and export it to ONNX.

No weights are downloaded: the network is built from the architecture YAML shipped inside the ultralytics package
with a fixed seed. Its detections are meaningless; the file exists so benchmarks and import tests have a genuine
Ultralytics-exported ONNX (`[B, 84, N]` output, dynamic batch, `names` metadata) to run.

    .venv-export/bin/python models/recipes/yolov8n_bench.py            # or .venv-bench/bin/python
    -> models/.build/yolov8n.onnx, prints its sha256
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

import _common

log = logging.getLogger("recipes.yolov8n_bench")

FIXED_DATE = "1970-01-01T00:00:00+00:00"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=_common.REPO_ROOT / "models" / ".build" / "yolov8n.onnx")
    p.add_argument("--imgsz", type=int, default=640)
    p.add_argument("--opset", type=int, default=None, help="default: what ultralytics picks for the installed torch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--static", action="store_true", help="fixed batch 1 instead of a dynamic batch axis")
    return p.parse_args(argv)


def build(args: argparse.Namespace) -> str:
    _common.setup_ultralytics_env()
    import torch
    import yaml
    from ultralytics import YOLO
    from ultralytics.utils import ROOT

    torch.manual_seed(args.seed)
    coco = yaml.safe_load((ROOT / "cfg" / "datasets" / "coco.yaml").read_text())["names"]
    out = args.out.resolve()
    with _common.working_dir() as tmp:
        model = YOLO("yolov8n.yaml", task="detect")
        model.model.names = {int(k): str(v) for k, v in coco.items()}
        exported = model.export(
            format="onnx", imgsz=args.imgsz, dynamic=not args.static, simplify=True, opset=args.opset, device="cpu"
        )
        src = Path(exported)
        if not src.is_absolute():
            src = tmp / src
        meta = {"safewatch_recipe": "models/recipes/yolov8n_bench.py", "safewatch_seed": str(args.seed)}
        digest = _common.finalize_onnx(src, out, FIXED_DATE, meta)
        shutil.rmtree(tmp / "runs", ignore_errors=True)
    log.info("%s: %s", out, _common.onnx_summary(out))
    return digest


def main(argv: list[str] | None = None) -> int:
    return _common.run_recipe(build, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
