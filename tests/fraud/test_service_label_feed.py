"""Late labels reach the running fraud service on their topic: into the terminal-risk
features and the prediction log's labels, whose matured figures the monitoring page
shows."""

from __future__ import annotations

import pytest

from loopline.apps.fraud.events import Label
from loopline.apps.fraud.labels import LABELS
from loopline.apps.fraud.service import FraudService
from loopline.events import Codec, Message, open_log

from .conftest import ADMIN_KEY
from .test_service import client, score, tx

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_labels_on_their_topic_feed_features_book_and_page(service: FraudService) -> None:
    async with client(service) as c:
        decided = [(await score(c, tx(i))).json() for i in (1, 2)]
    assert all(d["decision"] for d in decided)
    state = service.log.path.parent
    events = open_log(f"file://{(state / 'events.db').resolve()}")
    codec = Codec(Label)
    now = int(service.pipeline.clock() * 1000)
    labels = [
        Label(transaction_id="t-1", label_time_ms=now, event_time_ms=now - 10,
              card_token="tok_card1", terminal_id="term-0000001", is_fraud=1.0),
        Label(transaction_id="t-2", label_time_ms=now, event_time_ms=now - 10,
              card_token="tok_card2", terminal_id="term-0000001", is_fraud=0.0),
        Label(transaction_id="t-1", label_time_ms=now + 5, event_time_ms=now - 10,
              card_token="tok_card1", terminal_id="term-0000001", is_fraud=1.0),  # again
    ]  # fmt: skip
    events.append_many(
        LABELS, [Message(codec.encode(x), key=x.card_token.encode()) for x in labels]
    )
    events.close()

    service.labels.run_once()  # what the service runs every second while serving

    engine = service.engine
    risk = next(v for v in engine.views_of(LABELS) if v.name == "terminal_risk")
    read = engine.read_many(risk, ["term-0000001"], [now + 1000])
    assert read["count_30d"][0] == 3, "every label event counts toward the terminal's risk"
    days = service.performance()
    assert [(d.predictions, d.labelled, d.metrics["positives"]) for d in days] == [(2, 2, 1)]
    assert days[0].provisional, "today's labels have not matured"
    service.page.refresh()  # what the page's task does every minute, off the event loop
    async with client(service) as c:
        page = (await c.get("/monitor/data", headers={"X-API-Key": ADMIN_KEY})).json()
    assert page["performance"][0]["labelled"] == 2
    service.labels.run_once()  # nothing new: nothing read twice
    assert [(d.labelled, d.metrics["positives"]) for d in service.performance()] == [(2, 1)]
