"""The transformer: its parameter count is the planner's, it is causal, its rotary
positions are relative, and a tiny one learns."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from loopline.llm.configs import CONFIGS, ModelConfig, named  # noqa: E402
from loopline.llm.model import Transformer, rotary_tables, rotate  # noqa: E402


@pytest.mark.parametrize("tie", [True, False])
def test_the_parameter_count_is_the_planners(tie: bool) -> None:
    config = named("tiny", tie_embeddings=tie)
    model = Transformer(config)
    assert sum(p.numel() for p in model.parameters()) == config.params()


def test_a_token_sees_no_later_token() -> None:
    torch.manual_seed(0)
    model = Transformer(CONFIGS["tiny"]).eval()
    ids = torch.randint(0, 1024, (2, 20))
    changed = ids.clone()
    changed[:, 12:] = (changed[:, 12:] + 1) % 1024
    with torch.no_grad():
        a, b = model(ids), model(changed)
    assert torch.equal(a[:, :12], b[:, :12])
    assert not torch.allclose(a[:, 12:], b[:, 12:])


def test_rotary_scores_depend_on_relative_positions_only() -> None:
    config = ModelConfig(vocab_size=10, d_model=32, n_layers=1, n_heads=2, n_kv_heads=2)
    cos, sin = rotary_tables(config)
    torch.manual_seed(1)
    q, k = torch.randn(16), torch.randn(16)

    def score(m: int, n: int) -> float:
        qs = torch.zeros(1, 1, 64, 16)
        ks = torch.zeros(1, 1, 64, 16)
        qs[0, 0, m], ks[0, 0, n] = q, k
        return float(rotate(qs, cos, sin)[0, 0, m] @ rotate(ks, cos, sin)[0, 0, n])

    assert score(10, 4) == pytest.approx(score(40, 34), rel=1e-4)
    assert score(10, 4) != pytest.approx(score(10, 5), rel=1e-3)


def test_a_tiny_model_learns_a_repeating_text() -> None:
    torch.manual_seed(0)
    config = named("tiny", seq_len=32)
    model = Transformer(config)
    pattern = torch.arange(7).repeat(10)[:33]  # period 7: predictable after one period
    batch = torch.stack([pattern.roll(-i) for i in range(8)])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = float(model.loss(batch).detach())
    for _ in range(60):
        optimizer.zero_grad()
        loss = model.loss(batch)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    assert first > 6.5  # about ln(1024): knows nothing
    assert float(loss.detach()) < 0.5 * first
