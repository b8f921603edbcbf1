"""Parameter counts of the zoo in closed form, derived from the architecture definitions (the papers' tables
and docs/spec.md), independently of recalib's model code: a conv k x k from a to b channels has k*k*a*b/groups
weights, a BatchNorm 2*c, a linear layer a*b + b; the operators' counts are the formulas of docs/spec.md."""

from __future__ import annotations

OPS = ("none", "se", "ge", "sge", "mssar")


def op_params(op: str, c: int, c_in: int | None = None, mssar_reduction: int = 1) -> int:
    """Parameters of one operator on c channels with the documented zoo defaults (docs/spec.md, sections 1-4);
    MS-SAR's reduction is 1 on the CIFAR zoo (D' = D/L) and 16 on the ImageNet models (the paper's Table 5
    budget)."""
    c_in = c if c_in is None else c_in
    if op in ("none", "ge"):  # GE default: global extent, theta- (parameter-free)
        return 0
    if op == "se":  # reduction 16, both FCs with bias
        h = max(1, c // 16)
        return 2 * c * h + h + c
    if op == "sge":  # groups: the most (<= 64) that divide c with >= 4 channels each; gamma and beta per group
        return 2 * max(g for g in range(1, 65) if c % g == 0 and (c // g >= 4 or g == 1))
    if op == "mssar":  # scales (1, 2, 4): L * (C_in D' + C D' + 2 D'), D' = C // (L * reduction)
        h = max(1, c // (3 * mssar_reduction))
        return 3 * (c_in * h + c * h + 2 * h)
    raise AssertionError(op)


def cifar_resnet(depth: int, op: str = "none", num_classes: int = 10, in_chans: int = 3, shortcut: str = "A") -> int:
    n = (depth - 2) // 6
    p = 9 * in_chans * 16 + 2 * 16  # conv1 + bn1
    c_in = 16
    for c in (16, 32, 64):
        for _ in range(n):
            p += 9 * c_in * c + 2 * c + 9 * c * c + 2 * c + op_params(op, c)
            if c_in != c and shortcut == "B":
                p += c_in * c + 2 * c
            c_in = c
    return p + 64 * num_classes + num_classes


def densenet_bc(depth: int, k: int, op: str = "none", num_classes: int = 10, in_chans: int = 3,
                multi_stage: bool = False) -> int:
    n = (depth - 4) // 6
    c = 2 * k
    p = 9 * in_chans * c
    for b in range(3):
        for _ in range(n):
            p += 2 * c + c * 4 * k + 2 * 4 * k + 9 * 4 * k * k + op_params(op, k, c if multi_stage else k)
            c += k
        if b < 2:
            p += 2 * c + c * (c // 2)
            c //= 2
    return p + 2 * c + c * num_classes + num_classes


def imagenet_resnet(layers: tuple[int, ...], bottleneck: bool, op: str = "none", groups: int = 1, wpg: int = 64,
                    num_classes: int = 1000, in_chans: int = 3) -> int:
    p = 49 * in_chans * 64 + 2 * 64
    c_in = 64
    for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers)):
        for j in range(blocks):
            if bottleneck:
                w = planes * wpg // 64 * groups
                out = 4 * planes
                p += c_in * w + 2 * w + 9 * w * w // groups + 2 * w + w * out + 2 * out
            else:
                out = planes
                p += 9 * c_in * out + 2 * out + 9 * out * out + 2 * out
            if j == 0 and (i > 0 or c_in != out):
                p += c_in * out + 2 * out
            p += op_params(op, out, mssar_reduction=16)
            c_in = out
    return p + c_in * num_classes + num_classes


def zoo_params(name: str, op: str = "none", **kw: object) -> int:
    """Closed-form parameter count of zoo model ``name`` with operator ``op``."""
    if name.startswith("densenet_bc_"):
        depth, k = {"densenet_bc_100": (100, 12), "densenet_bc_190": (190, 40)}[name]
        return densenet_bc(depth, k, op, **kw)  # type: ignore[arg-type]
    arch = {
        "resnet18": ((2, 2, 2, 2), False, 1, 64),
        "resnet34": ((3, 4, 6, 3), False, 1, 64),
        "resnet50": ((3, 4, 6, 3), True, 1, 64),
        "resnet101": ((3, 4, 23, 3), True, 1, 64),
        "resnext50_32x4d": ((3, 4, 6, 3), True, 32, 4),
    }
    if name in arch:
        layers, bottleneck, groups, wpg = arch[name]
        return imagenet_resnet(layers, bottleneck, op, groups, wpg, **kw)  # type: ignore[arg-type]
    return cifar_resnet(int(name.removeprefix("resnet")), op, **kw)  # type: ignore[arg-type]
