"""Subprocess for the crash-restart test: run the fraud views' feature worker to the end.

Usage: python feature_worker.py LOG_URL STORE (a path, or a redis:// URL) TOPIC
"""

import sys

from loopline.apps.fraud import Transaction, fraud_views
from loopline.events import open_log
from loopline.features import EmbeddedStore, OnlineEngine
from loopline.features.worker import FeatureWorker

log_url, store_spec, topic = sys.argv[1:4]
if store_spec.startswith("redis://"):
    from loopline.features.redis import RedisStore

    store = RedisStore(store_spec)
else:
    store = EmbeddedStore(store_spec, snapshot_interval_s=0.05)
engine = OnlineEngine(views=fraud_views(), store=store)
worker = FeatureWorker(
    engine=engine, log=open_log(log_url), topic=topic, schema=Transaction, max_records=300
)
print("started", flush=True)
while not worker.caught_up():
    print(worker.run_once(), flush=True)  # one line per round of micro-batches
store.close()  # a clean stop snapshots; a kill -9 replays from the last snapshot
print("done", flush=True)
