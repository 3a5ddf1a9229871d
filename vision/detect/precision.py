"""Which file of a model runs: the precision setting (`SAFEWATCH_PRECISION`, `--precision`) the registry honours.

Kept apart from the registry (which loads ONNX Runtime) so settings and flags can name it without importing it.
"""

from __future__ import annotations

from typing import Literal, get_args

#: `auto`: a model's int8 variant on CPU-only sessions where it is built and passed its agreement gate, else fp32;
#: `fp32`: always the model's own file; `int8`: the int8 variant wherever it is built (see `vision.detect.registry`).
Precision = Literal["auto", "fp32", "int8"]
PRECISIONS: tuple[Precision, ...] = get_args(Precision)
