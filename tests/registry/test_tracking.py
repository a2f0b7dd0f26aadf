"""A training's MLflow run: steps logged in batches as they come, and the version
registered from that same run."""

from __future__ import annotations

from pathlib import Path

from loopline.registry import Bundle, Registry, Signature


def test_a_tracked_run_logs_steps_and_holds_the_version_registered_from_it(
    tmp_path: Path,
) -> None:
    registry = Registry(root=tmp_path / "registry")
    run = registry.track("lm", params={"lr": 0.003}, tags={"kind": "test"})
    run.flush_s = 3600  # nothing is sent until a flush
    for step in range(1, 1501):  # more than one MLflow batch
        run.log(step, {"loss": 10 / step})
    assert run.history("loss") == []
    run.flush()
    points = run.history("loss")
    assert [s for s, _ in points] == list(range(1, 1501))
    assert points[-1][1] == 10 / 1500
    bundle = Bundle(Signature(task="generate", flavour="x", inputs=("tokens",)), {"w": b"1"})
    version = registry.register("lm", bundle=bundle, metrics={}, params={}, tags={}, run=run)
    assert version.run_id == run.run_id
    assert version.params["lr"] == "0.003"
    assert version.metrics["loss"] == 10 / 1500  # the run's latest value
    assert registry.client.get_run(run.run_id).info.status == "RUNNING"  # its owner ends it
    run.finish()
    assert registry.client.get_run(run.run_id).info.status == "FINISHED"
    assert registry.resolve("lm", version.version).read("w") == b"1"
