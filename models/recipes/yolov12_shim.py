"""Convert YOLOv12 checkpoints trained with the original YOLOv12 code (sunsmarterjie/yolov12, a fork of ultralytics
8.3.63) so that stock ultralytics >= 8.3.78 can run and export them.

What changed. The fork's area-attention module `AAttn` has two input projections, `qk` (dim -> 2*dim: all queries,
then all keys) and `v` (dim -> dim), and a 5x5 depthwise positional conv `pe` applied to the values. Upstream
ultralytics later merged YOLOv12 with a reworked `AAttn`: one fused projection `qkv` (dim -> 3*dim, laid out per head
as [q_h | k_h | v_h]) and a 7x7 depthwise `pe`. The attention maths is the same (tokens split into `area` row bands,
softmax(q^T k / sqrt(head_dim)) over each band, output + pe(v), then `proj`), but a fork checkpoint unpickles into the
upstream class with the fork's attributes, so the upstream forward fails with `'AAttn' object has no attribute 'qkv'`.

The shim rewrites the weights, not the code: each fork `AAttn` is replaced by a stock `AAttn` whose `qkv` conv and
batch-norm are the fork's `qk` and `v` rows concatenated and reordered into the per-head layout, whose `pe` kernel is
the fork's 5x5 kernel zero-padded to 7x7 (same output with padding 3), and whose `proj` is the fork's. The converted
model then uses only upstream code for predict, fuse and ONNX export. `verify` checks every converted module against
a re-implementation of the fork's forward on random input.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)


def is_fork_aattn(module: nn.Module) -> bool:
    return type(module).__name__ == "AAttn" and hasattr(module, "qk") and not hasattr(module, "qkv")


def fork_forward(m: Any, x: torch.Tensor) -> torch.Tensor:
    """The fork's AAttn.forward (non-flash path; the flash path computes the same attention)."""
    b, c, h, w = x.shape
    n = h * w
    qk = m.qk(x).flatten(2).transpose(1, 2)
    v = m.v(x)
    pp = m.pe(v)
    v = v.flatten(2).transpose(1, 2)
    if m.area > 1:
        qk = qk.reshape(b * m.area, n // m.area, c * 2)
        v = v.reshape(b * m.area, n // m.area, c)
        b, n, _ = qk.shape
    q, k = qk.split([c, c], dim=2)
    q = q.transpose(1, 2).reshape(b, m.num_heads, m.head_dim, n)
    k = k.transpose(1, 2).reshape(b, m.num_heads, m.head_dim, n)
    v = v.transpose(1, 2).reshape(b, m.num_heads, m.head_dim, n)
    attn = ((q.transpose(-2, -1) @ k) * (m.head_dim**-0.5)).softmax(dim=-1)
    out = (v @ attn.transpose(-2, -1)).permute(0, 3, 1, 2)
    if m.area > 1:
        out = out.reshape(b // m.area, n * m.area, c)
        b, n, _ = out.shape
    out = out.reshape(b, h, w, c).permute(0, 3, 1, 2)
    return m.proj(out + pp)


def _qkv_order(num_heads: int, head_dim: int) -> torch.Tensor:
    """Row index into cat([qk, v]) for each row of the upstream per-head [q_h | k_h | v_h] layout."""
    dim = num_heads * head_dim
    rows: list[int] = []
    for h in range(num_heads):
        for part in range(3):  # q rows start at 0, k rows at dim, v rows at 2*dim
            start = part * dim + h * head_dim
            rows.extend(range(start, start + head_dim))
    return torch.tensor(rows)


def convert_aattn(old: Any) -> nn.Module:
    """A stock ultralytics AAttn computing exactly what the fork module `old` computes."""
    from ultralytics.nn.modules.block import AAttn

    dim = old.qk.conv.in_channels
    new = AAttn(dim, old.num_heads, old.area).to(old.qk.conv.weight.dtype)
    order = _qkv_order(old.num_heads, old.head_dim)
    qk_state, v_state = old.qk.state_dict(), old.v.state_dict()
    qkv_state = {}
    for key, value in new.qkv.state_dict().items():
        if value.ndim == 0:  # bn.num_batches_tracked
            qkv_state[key] = qk_state[key]
        else:
            qkv_state[key] = torch.cat([qk_state[key], v_state[key]])[order]
    new.qkv.load_state_dict(qkv_state)
    new.proj.load_state_dict(old.proj.state_dict())
    pe_state = old.pe.state_dict()
    k_old, k_new = old.pe.conv.kernel_size[0], new.pe.conv.kernel_size[0]
    pad = (k_new - k_old) // 2
    if pad < 0 or old.pe.conv.groups != new.pe.conv.groups:
        raise ValueError(f"cannot map a {k_old}x{k_old} pe conv onto the upstream {k_new}x{k_new} one")
    pe_state["conv.weight"] = F.pad(pe_state["conv.weight"], (pad, pad, pad, pad))
    new.pe.load_state_dict(pe_state)
    for name in ("qkv", "proj", "pe"):  # a fresh Conv has torch's BN defaults; DetectionModel sets eps 1e-3
        src = old.qk.bn if name == "qkv" else getattr(old, name).bn
        getattr(new, name).bn.eps, getattr(new, name).bn.momentum = src.eps, src.momentum
    return new.train(old.training)


def convert_model(model: nn.Module) -> list[tuple[str, nn.Module, nn.Module]]:
    """Replace every fork AAttn inside `model` in place; returns (name, old, new) for verification."""
    replaced = []
    for parent_name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            if is_fork_aattn(child):
                new = convert_aattn(child)
                setattr(parent, child_name, new)
                replaced.append((f"{parent_name}.{child_name}".lstrip("."), child, new))
    return replaced


def verify(replaced: list[tuple[str, nn.Module, nn.Module]], size: int = 16, atol: float = 1e-4) -> float:
    """Run fork forward vs upstream forward on random input for each converted module (fp32, eval); max abs diff."""
    gen = torch.Generator().manual_seed(0)
    worst = 0.0
    for name, old, new in replaced:
        old32, new32 = old.float().eval(), new.float().eval()
        x = torch.randn(2, new32.qkv.conv.in_channels, size, size, generator=gen)
        with torch.no_grad():
            diff = (fork_forward(old32, x) - new32(x)).abs().max().item()
        if not diff <= atol:
            raise RuntimeError(f"{name}: converted AAttn differs from the original forward by {diff:.3g}")
        worst = max(worst, diff)
    return worst
