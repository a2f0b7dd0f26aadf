"""Decision rules: a batch's outcomes (one NumPy comparison per rule; up to four rows,
row by row) equal the rules applied one row at a time, whatever the values: NaN, None,
strings against numbers, lists, blocks that stop later rules, scores clipped to [0, 1]."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from loopline.serving.rules import parse

RULES = parse(
    """
lists:
  blocked: [tok_1, "7"]
rules:
  - {id: listed, action: block, when: {field: card, in: blocked}}
  - {id: big, action: adjust, score: 0.6, when: {field: amount, op: ">", value: 220}}
  - {id: fast, action: block, when: {field: kmh, op: ">=", value: 1000}}
  - {id: not-zero, action: adjust, score: -0.3, when: {field: count, op: "!=", value: 0}}
  - {id: cnp, action: adjust, score: 0.2, when: {field: channel, op: "==", value: cnp}}
  - {id: odd, action: adjust, score: 0.5, when: {field: mixed, op: "<", value: 3}}
  - {id: not-one, action: adjust, score: 0.1, when: {field: amount, op: "!=", value: 1}}
"""
)

floats = st.one_of(st.floats(allow_nan=True, allow_infinity=False), st.just(math.nan))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0, 1),
            st.sampled_from(["tok_1", "tok_2", "7", ""]),
            floats,
            floats,
            st.integers(-2, 2),
            st.sampled_from(["cnp", "cp"]),
            st.one_of(st.integers(0, 5), st.text(max_size=2), st.none()),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_a_batch_equals_one_row_at_a_time(
    rows: list[tuple[float, str, float, float, int, str, object]],
) -> None:
    scores = np.array([r[0] for r in rows])
    names = ["card", "amount", "kmh", "count", "channel"]
    columns: dict[str, object] = {
        name: np.array([r[k + 1] for r in rows]) for k, name in enumerate(names)
    }
    columns["mixed"] = np.array([r[6] for r in rows], dtype=object)  # strings, ints, None
    batch = RULES.apply_many(scores, columns)  # type: ignore[arg-type]
    for i, r in enumerate(rows):
        one = RULES.apply(r[0], {name: col[i] for name, col in columns.items()})  # type: ignore[index]
        assert batch.blocked_by[i] == one.blocked_by
        assert batch.fired[i] == one.fired
        assert math.isclose(batch.scores[i], one.score, abs_tol=1e-12)


def test_a_missing_field_fires_nothing() -> None:
    batch = RULES.apply_many(np.array([0.5, 0.9]), {})
    assert batch.blocked_by == [None, None]
    assert batch.fired == [(), ()]
    assert batch.scores.tolist() == [0.5, 0.9]
