"""Obviously-correct references for the operators: explicit loops over positions and cells.

Independent of the library code: no shared helpers, the partition rule and windows are re-derived here
from docs/spec.md, and BatchNorm is written out as a formula.
"""

from __future__ import annotations

import math

import torch


def bn_formula(h: torch.Tensor, bn: torch.nn.BatchNorm2d, training: bool) -> torch.Tensor:
    """BatchNorm over the rows of h (M, D): batch statistics when training, running ones otherwise."""
    if training:
        mean, var = h.mean(0), h.var(0, unbiased=False)
    else:
        mean, var = bn.running_mean, bn.running_var
    return (h - mean) / torch.sqrt(var + bn.eps) * bn.weight + bn.bias


def mssar_gate_loops(op, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
    """MS-SAR gate by loops over positions (Eq. 1 and 2 of the paper, docs/spec.md, section 1)."""
    src = x if context is None else context
    n, c, h, w = x.shape
    z_total = torch.zeros(n, c, h, w, dtype=torch.float64)
    for i, k in enumerate(op.scales):
        w1 = op.fc1[i].weight.flatten(1).double()
        w2 = op.fc2[i].weight.flatten(1).double()
        # coordinate set of every position, as a list of (row, col) pairs
        sets = {}
        if op.strategy == "regional":
            rb = [r * k // h for r in range(h)]
            cb = [q * k // w for q in range(w)]
            cells = sorted({(rb[r], cb[q]) for r in range(h) for q in range(w)})
            members = {cell: [(r, q) for r in range(h) for q in range(w) if (rb[r], cb[q]) == cell] for cell in cells}
            keys = cells
            for r in range(h):
                for q in range(w):
                    sets[(r, q)] = (rb[r], cb[q])
        else:
            t = math.sqrt(h * w) / k
            keys = [(r, q) for r in range(h) for q in range(w)]
            members = {
                (r, q): [(a, b) for a in range(h) for b in range(w) if abs(a - r) <= t and abs(b - q) <= t]
                for (r, q) in keys
            }
            sets = {key: key for key in keys}
        ys = torch.stack(
            [torch.stack([src[:, :, a, b].double() for a, b in members[key]], 0).mean(0) for key in keys], 1
        )  # N, P, C_in
        hid = ys.reshape(-1, ys.shape[-1]) @ w1.t()
        hid = bn_formula(hid, _double_bn(op.bn[i]), op.training).clamp_min(0)
        z = torch.sigmoid(hid @ w2.t()).view(n, len(keys), c)
        index = {key: j for j, key in enumerate(keys)}
        for r in range(h):
            for q in range(w):
                z_total[:, :, r, q] += z[:, index[sets[(r, q)]]]
    return z_total / len(op.scales)


def _double_bn(bn):
    clone = torch.nn.BatchNorm2d(bn.num_features, eps=bn.eps).double()
    clone.load_state_dict(bn.state_dict())
    return clone


def se_gate_formula(op, x: torch.Tensor) -> torch.Tensor:
    s = x.double().mean((2, 3))
    w1, b1 = op.fc1.weight.flatten(1).double(), op.fc1.bias.double()
    w2, b2 = op.fc2.weight.flatten(1).double(), op.fc2.bias.double()
    return torch.sigmoid((s @ w1.t() + b1).clamp_min(0) @ w2.t() + b2)[:, :, None, None].expand(x.shape)


def sge_gate_loops(op, x: torch.Tensor) -> torch.Tensor:
    n, c, h, w = x.shape
    g = op.groups
    out = torch.empty(n, c, h, w, dtype=torch.float64)
    for b in range(n):
        for j in range(g):
            chans = list(range(j * c // g, (j + 1) * c // g))
            xs = x[b, chans].double()  # C/G, H, W
            v = xs.mean((1, 2))
            sim = torch.einsum("c,chw->hw", v, xs)
            m = h * w
            mu = sim.sum() / m
            var = ((sim - mu) ** 2).sum() / (m - 1 if m > 1 else 1)
            a = (sim - mu) / (var.sqrt() + 1e-5) * op.weight[0, j, 0, 0].double() + op.bias[0, j, 0, 0].double()
            out[b, chans] = torch.sigmoid(a)
    return out


def nearest_src(dst: int, size_in: int, size_out: int) -> int:
    """PyTorch's 'nearest' rule: source index floor(dst * in / out)."""
    return min(int(math.floor(dst * (size_in / size_out))), size_in - 1)


def ge_theta_minus_loops(x: torch.Tensor, extent: int) -> torch.Tensor:
    """theta- gather by loops: window [i*e - (e-1), i*e + (e-1)] clipped, mean; nearest upsampling; sigmoid."""
    n, c, h, w = x.shape
    if extent == 0:
        return torch.sigmoid(x.double().mean((2, 3), keepdim=True)).expand(x.shape)
    e = extent
    oh, ow = (h - 1) // e + 1, (w - 1) // e + 1  # output size of pool(kernel 2e-1, stride e, pad e-1)
    small = torch.empty(n, c, oh, ow, dtype=torch.float64)
    for i in range(oh):
        for j in range(ow):
            r0, r1 = max(0, i * e - (e - 1)), min(h, i * e + e)
            c0, c1 = max(0, j * e - (e - 1)), min(w, j * e + e)
            small[:, :, i, j] = x[:, :, r0:r1, c0:c1].double().mean((2, 3))
    full = torch.empty(n, c, h, w, dtype=torch.float64)
    for r in range(h):
        for q in range(w):
            full[:, :, r, q] = small[:, :, nearest_src(r, oh, h), nearest_src(q, ow, w)]
    return torch.sigmoid(full)


def depthwise3x3_s2_loops(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Depthwise 3x3 convolution, stride 2, zero padding 1, by loops."""
    n, c, h, w = x.shape
    oh, ow = (h + 2 - 3) // 2 + 1, (w + 2 - 3) // 2 + 1
    out = torch.zeros(n, c, oh, ow, dtype=torch.float64)
    for i in range(oh):
        for j in range(ow):
            for di in range(3):
                for dj in range(3):
                    r, q = 2 * i - 1 + di, 2 * j - 1 + dj
                    if 0 <= r < h and 0 <= q < w:
                        out[:, :, i, j] += x[:, :, r, q].double() * weight[:, 0, di, dj].double()
    return out
