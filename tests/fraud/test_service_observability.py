"""The alert rules and the Grafana dashboard: valid for Prometheus (promtool), unit-tested,
and reading only metrics that the service and its stream workers really expose."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from pathlib import Path

import msgspec
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from loopline.apps.fraud.events import Transaction
from loopline.apps.fraud.service import FraudService, stream_scorer
from loopline.events import Codec, EmbeddedLog, Message
from loopline.monitoring import WorkerCollector

from .test_service import client, score, tx

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "loopline-fraud.json"
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _promtool(*args: str, cwd: Path) -> str:
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian package prometheus) is installed by make test"
    done = subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _dashboard_exprs() -> list[str]:
    return [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]


def test_alert_rules_pass_promtool_and_their_unit_tests() -> None:
    assert "SUCCESS: 14 rules found" in _promtool("check", "rules", RULES.name, cwd=RULES.parent)
    _promtool("test", "rules", "alerts_test.yml", cwd=RULES.parent)


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"loopline:panel_query:{i}", "expr": e}
                    for i, e in enumerate(_dashboard_exprs())
                ],
            }
        ]
    }
    (tmp_path / "dashboard.yml").write_text(yaml.safe_dump(rules))
    _promtool("check", "rules", "dashboard.yml", cwd=tmp_path)


async def test_dashboard_and_alerts_read_only_exposed_metrics(
    service: FraudService, tmp_path: Path
) -> None:
    log = EmbeddedLog(tmp_path / "events.db")
    log.create_topic("transactions", partitions=1)
    codec = Codec(Transaction)
    event = Transaction(
        transaction_id="w-1", event_time_ms=1_700_000_000_000, card_token="tok_w",
        customer_id="c", terminal_id="t", merchant_category="grocery", amount=5.0,
        currency="EUR", channel="cp",
    )  # fmt: skip
    unpaid = msgspec.structs.replace(event, transaction_id="w-2", amount=-1.0)
    log.append_many(
        "transactions",
        [Message(codec.encode(event)), Message(b"not json"), Message(codec.encode(unpaid))],
    )
    worker = stream_scorer(service, log)  # a feature worker that also decides
    worker.run_once()
    service.service.metrics.registry.register(WorkerCollector(worker))
    monitor = service.drift.monitor
    assert monitor is not None, "the champion was registered with its reference"
    monitor.min_rows = 1
    monitor.window_ms = None  # the newest rows, however recent
    async with client(service) as c:
        await score(c, tx(1))
        report = await asyncio.to_thread(service.drift.check)
        assert report is not None
        compared = {*service.pipeline.tabular.feature_set.names, "score"} - monitor.ignore
        assert {r.feature for r in report.results} == compared
        await c.post("/v1/score", json={"nope": 1}, headers={"X-API-Key": "wrong"})
        exposition = (await c.get("/metrics")).text
    samples = [s for family in text_string_to_metric_families(exposition) for s in family.samples]

    def value(name: str, **labels: str) -> float:
        return next(
            s.value for s in samples if s.name == name and labels.items() <= s.labels.items()
        )

    assert value("loopline_dead_letters_total", reason="invalid") == 1  # the one not JSON
    assert value("loopline_dead_letters_total", reason="late") == 0
    assert value("loopline_quality_violations_total", field="amount") == 1
    assert value("loopline_consumer_lag", topic="transactions", partition="0") == 0
    assert value("loopline_model_loaded", role="champion", model="fraud:1") == 1
    assert value("loopline_http_requests_total", status="401") == 1
    rules = yaml.safe_load(RULES.read_text())
    exprs = _dashboard_exprs() + [r["expr"] for g in rules["groups"] for r in g["rules"]]
    used = {name for e in exprs for name in re.findall(r"\bloopline_[a-z_]+\b", e)}
    missing = sorted(used - {s.name for s in samples})
    assert missing == [], f"queried but never exposed: {missing}"
    log.close()
