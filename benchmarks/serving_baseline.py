"""The serving benchmark's baseline: the fraud request written the way it often is by
hand: FastAPI + pydantic, the features read from the same online store, a one-row pandas
DataFrame, LightGBM's native predict. Same model, same features, same decisions.

    python benchmarks/serving_baseline.py --registry URI --state DIR --port P
"""

from __future__ import annotations

import argparse
import math
import threading
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel, Field

from loopline.apps.fraud.features import fraud_feature_set
from loopline.features import EmbeddedStore, OnlineEngine
from loopline.registry import Registry


class Transaction(BaseModel):
    transaction_id: str
    amount: float = Field(gt=0)
    currency: str
    channel: str
    customer_id: str
    terminal_id: str
    merchant_category: str
    card_token: str
    device_id: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    event_time_ms: int | None = None


def make_app(registry: str, state: Path) -> FastAPI:
    pinned = Registry(registry).resolve("fraud", "champion")
    signature = pinned.signature
    meta = {**signature.meta, "features": list(signature.inputs)}
    booster = lgb.Booster(model_str=pinned.read("model.txt").decode())
    fs = fraud_feature_set()
    engine = OnlineEngine(views=fs.views, store=EmbeddedStore(state / "baseline-features.db"))
    app = FastAPI()
    # FastAPI runs a plain endpoint on a pool of threads; the engine is not thread-safe
    # (without this lock, concurrent applies corrupted its tables and crashed the server)
    engine_lock = threading.Lock()

    @app.post("/v1/score")
    def score(tx: Transaction) -> dict[str, object]:
        row = tx.model_dump()
        row["card_device"] = f"{tx.card_token}|{tx.device_id}" if tx.device_id else ""
        row["event_time_ms"] = tx.event_time_ms or 0
        for key in ("latitude", "longitude"):
            row[key] = math.nan if row[key] is None else row[key]
        cols = {k: np.array([v if v is not None else ""]) for k, v in row.items()}
        with engine_lock:
            features = {k: float(v[0]) for k, v in fs.online(engine, cols).items()}
        frame = pd.DataFrame([features])[meta["features"]]
        p = float(booster.predict(frame, num_threads=1)[0])  # one core, as ours
        with engine_lock:
            engine.apply_many(cols, topic="transactions")
        decision = (
            "decline"
            if p >= meta["threshold"]
            else "review"
            if p >= meta["review_threshold"]
            else "approve"
        )
        return {"transaction_id": tx.transaction_id, "decision": decision, "score": p}

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--registry", required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = make_app(args.registry, args.state)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
