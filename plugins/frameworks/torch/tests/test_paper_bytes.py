"""The paper's byte model (``mem_bytes``), call by call, on hand-made modules traced end to end."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from irene_framework_torch.paper_bytes import op_name
from irene_framework_torch.tree_builder import trace_module

F4 = 4  # bytes per float32


class _Ops(nn.Module):
    """One call of each kind, in the module's own forward (so the root owns their bytes)."""

    def __init__(self, op: str) -> None:
        super().__init__()
        self.op = op

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:  # x: [2, 3, 4], w: [4, 5]
        op = self.op
        if op == "matmul 3-D x 2-D":
            return x @ w
        if op == "reflected operators":
            return (1.0 - x) + 2.0 * x
        if op == "in-place":
            y = x * 1.0
            y += x
            return y.div_(2.0)
        if op == "views and copies":
            y = x.transpose(1, 2).contiguous().view(2, 12).clone()
            return torch.empty(2, 12).copy_(y).reshape(2, 3, 4)
        if op == "baddbmm":
            return torch.baddbmm(torch.zeros(2, 3, 5), x, w.expand(2, 4, 5))
        if op == "softmax":
            return nn.functional.softmax(x, dim=-1)  # calls Tensor.softmax inside: counted once
        if op == "embedding":
            return torch.embedding(w, torch.zeros(2, 3, dtype=torch.long))  # (table, ids) argument order
        raise AssertionError(op)


X = 2 * 3 * 4  # elements of x
EXPECTED = {
    "matmul 3-D x 2-D": 2 * (3 * 4 + 3 * 5 + 4 * 5) * F4,  # the weight once per batch element
    "reflected operators": (3 * X + 3 * X + 2 * X) * F4,  # rsub 3, mul 3, add 2 per output element
    "in-place": (3 * X + 2 * X + 2 * X) * F4,  # mul 3, add_ 2, div_ 2
    "views and copies": (2 * X + 2 * X) * F4,  # views and contiguous 0, clone 2, copy_ source + destination
    "baddbmm": 2 * (3 * 4 + 3 * 5 + 4 * 5) * F4,
    "softmax": 3 * X * F4,
    "embedding": 2 * 3 * 8 + 2 * 3 * 5 * F4,  # int64 ids, output rows
}


@pytest.mark.parametrize("op", list(EXPECTED))
def test_each_rule_on_a_traced_call(op):
    x, w = torch.randn(2, 3, 4), torch.randn(4, 5)
    traced = trace_module(_Ops(op), {"x": x, "w": w}, model_name="ops", batch_size=2, seq_len=3,
                          device=torch.device("cpu"))
    assert traced.op_totals[traced.record.root.id].mem_bytes == EXPECTED[op]
    assert traced.record.root.features["mem_bytes"] == pytest.approx(EXPECTED[op] / 2**20)


def test_linear_follows_torch_1_7():
    """3-D input: matmul (weight per batch element) + in-place bias add; 2-D input: addmm."""
    linear = nn.Linear(4, 5)
    for shape, expected in (((2, 3, 4), 2 * (3 * 4 + 3 * 5 + 4 * 5) + 2 * 2 * 3 * 5), ((6, 4), 6 * 4 + 6 * 5 + 4 * 5)):
        traced = trace_module(linear, {"input": torch.randn(*shape)}, model_name="linear", batch_size=shape[0],
                              seq_len=1, device=torch.device("cpu"))
        assert traced.op_totals[traced.record.root.id].mem_bytes == expected * F4, shape
        assert traced.op_totals[traced.record.root.id].bytes_moved == (2 * 3 * 4 + 2 * 3 * 5 + 4 * 5 + 5) * F4


@pytest.mark.parametrize("func, name", [
    (torch.Tensor.__iadd__, "add"),
    (torch.Tensor.__rsub__, "rsub"),
    (torch.Tensor.__rtruediv__, "div"),
    (torch.Tensor.mul_, "mul"),
    (torch.Tensor.copy_, "copy"),
    (torch.Tensor.__getitem__, "__getitem__"),
    (nn.functional.layer_norm, "layer_norm"),
])
def test_op_names(func, name):
    assert op_name(func) == name
