"""Per-scale gates average to the operator's gate; operator inputs are captured inside a network."""

import pytest
import torch
from torch import nn

from recalib.analysis.gates import capture_operator_inputs, per_scale_gates
from recalib.modules import MSSAR, build_recalib


@pytest.mark.parametrize("channels, scales, strategy", [(12, (1, 2, 4), "regional"), (10, (1, 3), "sliding"), (7, (2, 4), "regional")])
def test_per_scale_gates_mean_is_gate(channels: int, scales: tuple[int, ...], strategy: str) -> None:
    op = MSSAR(channels, scales=scales, strategy=strategy).train()
    x = torch.randn(3, channels, 9, 8)
    gates = per_scale_gates(op, x)
    assert len(gates) == len(scales)
    torch.testing.assert_close(torch.stack(gates).mean(0), op.gate(x), rtol=1e-5, atol=1e-6)
    # scale 1 is constant over space; the others are not
    if scales[0] == 1 and strategy == "regional":
        assert torch.equal(gates[0], gates[0][:, :, :1, :1].expand_as(gates[0]))


def test_capture_operator_inputs() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), build_recalib("mssar", 8), nn.Conv2d(8, 8, 1), build_recalib("se", 8))
    x = torch.randn(2, 3, 6, 6)
    with capture_operator_inputs(net) as records:
        net(x)
    assert [r[0] for r in records] == ["1", "3"]
    torch.testing.assert_close(records[0][2][0], net[0](x))
