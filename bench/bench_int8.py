"""The default model on CPU: fp32 vs its static int8 QDQ variant (the file `auto` precision runs), per inference.

Both files as `make models` builds them (models/coco-yolov3-tiny.onnx and models/coco-yolov3-tiny-int8.onnx), loaded
as the registry loads them (default session options, CPU), on the 40 held-aside frames of the int8 card's recipe
(frames the calibration never saw). Per inference = `Detector.detect` on one frame (pre-processing, session.run,
decode and NMS), alternating blocks of `--block` frames so both sides see the same machine load, medians over
`--rounds`. Also per `session.run` alone at batch 1 and 4, and the agreement of the two on those frames.

The goal is met only when the int8 variant is what `auto` runs on CPU by default (its card says `default: true`, so
`make models` builds it), agrees with fp32 at or above its gate, and is faster.

Run: .venv/bin/python -m bench.bench_int8 [--rounds 5] [--models-dir DIR]  → bench/results/int8.md
(`make models` builds both files in models/.)
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import time
from collections.abc import Callable

from vision.detect.card import QuantizeBuild
from vision.detect.compare import agreement
from vision.detect.detector import Detector
from vision.detect.quantize import describe, frames_at
from vision.detect.registry import ModelRegistry
from vision.types import ImageArray

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
OUT = ROOT / "bench" / "results" / "int8.md"
DEFAULT = "coco-yolov3-tiny"


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return 1000 * (time.perf_counter() - t0)


def per_frame(det: Detector, frames: list[ImageArray]) -> list[float]:
    return [timed(lambda f=f: det.detect(f)) for f in frames]  # type: ignore[misc]


def per_run(det: Detector, frames: list[ImageArray], batch: int) -> list[float]:
    blobs = [b for b, _, _ in det.prepare(frames[:batch])]
    return [timed(lambda: det.infer(blobs[0])) for _ in range(12)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--block", type=int, default=8)
    parser.add_argument("--out", type=pathlib.Path, default=OUT)
    parser.add_argument("--models-dir", type=pathlib.Path, default=MODELS)
    args = parser.parse_args(argv)
    models = args.models_dir
    reg = ModelRegistry(models, precision="fp32")
    variant = reg.int8_variant(DEFAULT)
    if variant is None or not isinstance(variant.build, QuantizeBuild) or not reg.is_built(variant.name):
        raise SystemExit(f"{DEFAULT}-int8 is not built in {models}: `safewatch models build {DEFAULT}-int8`")
    recipe = variant.build
    frames = list(frames_at(ROOT / recipe.clip, recipe.evaluation.indices).values())
    fp32, int8 = Detector(reg.card(DEFAULT), models), Detector(variant, models)
    agree = agreement(fp32.detect_batch(frames), int8.detect_batch(frames), recipe.iou)
    per_frame(fp32, frames[:4]), per_frame(int8, frames[:4])  # warm-up
    a: list[float] = []
    b: list[float] = []
    for r in range(args.rounds):
        for start in range(0, len(frames), args.block):
            block = frames[start : start + args.block]
            first, second = (fp32, int8) if (r + start) % 2 == 0 else (int8, fp32)
            x, y = per_frame(first, block), per_frame(second, block)
            a, b = (a + x, b + y) if first is fp32 else (a + y, b + x)
    runs = {(name, n): per_run(d, frames, n) for name, d in (("fp32", fp32), ("int8", int8)) for n in (1, 4)}
    fa, fb = statistics.median(a), statistics.median(b)
    lines = [
        f"# {DEFAULT}: fp32 vs int8 on CPU (the variant `auto` precision runs)",
        "",
        f"{len(frames)} held-aside frames of {recipe.clip} (decode indices {recipe.evaluation.indices[0]}, "
        f"{recipe.evaluation.indices[1]}, ..., {recipe.evaluation.indices[-1]}), default session options "
        f"(CPU), {args.rounds} rounds in alternating blocks of {args.block}; medians.",
        "",
        "| | fp32 | int8 | fp32 / int8 |",
        "|---|---|---|---|",
        f"| Detector.detect, ms per frame | {fa:.1f} | {fb:.1f} | {fa / fb:.2f}x |",
    ]
    for n in (1, 4):
        ma, mb = statistics.median(runs[("fp32", n)]), statistics.median(runs[("int8", n)])
        lines.append(f"| session.run, batch {n}, ms | {ma:.1f} | {mb:.1f} | {ma / mb:.2f}x |")
    met = agree.matched_rate >= recipe.min_agreement and fa > fb and variant.default
    default = (
        "the CPU default (`make models` builds it, `auto` runs it)"
        if variant.default
        else "NOT the CPU default: built on request (`SAFEWATCH_PRECISION=int8` / `--precision int8` runs it); its "
        "card's notes say why"
    )
    lines += [
        "",
        f"Agreement on these frames: {describe(agree, recipe.iou)}, mean |confidence delta| "
        f"{agree.mean_confidence_delta:.3f} (build gate: {recipe.min_agreement:.0%}; card: {variant.agreement}).",
        "",
        f"Status: {default}.",
        "",
        f"<!-- summary: goal=int8 default on CPU: >= {recipe.min_agreement:.0%} of boxes agree with fp32, faster, "
        f"e2e results unchanged; result={agree.matched_rate:.1%} agree, {fa / fb:.2f}x per frame, "
        f"{'default, e2e tests pass' if variant.default else 'not default'}; "
        f"met={'yes' if met else 'no'} -->",
    ]
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
