"""An append that returned survives kill -9 of the writing process (embedded log)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from loopline.events import EmbeddedLog, TopicPartition

ROUNDS = 8


def test_acknowledged_appends_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    script = Path(__file__).with_name("append_forever.py")
    rng = random.Random(7)
    acknowledged: dict[int, tuple[int, int]] = {}  # batch -> (first offset, count), all rounds
    for _ in range(ROUNDS):
        child = subprocess.Popen(
            [sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True
        )
        assert child.stdout is not None
        first_line = child.stdout.readline()  # the first batch is in: it is running
        time.sleep(rng.uniform(0.0, 0.3))  # then kill it at a random point in its loop
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        out, _ = child.communicate()
        child.stdout.close()
        # a line the kill cut short has no newline yet: it was never acknowledged
        lines = (first_line + out).split("\n")[:-1]
        round_batches = [tuple(map(int, line.split())) for line in lines]
        # batch numbers restart in each round; keep them apart by the offsets they got
        acknowledged |= {first: (batch, count) for batch, first, count in round_batches}

        log = EmbeddedLog(path)
        tp = TopicPartition("payments", 0)
        end = log.end_offset(tp)
        for first, (batch, count) in acknowledged.items():
            records = log.read(tp, first, max_records=count)
            assert [r.value for r in records] == [
                f"{batch}:{i}".encode() * 50 for i in range(count)
            ]
        records = log.read(tp, 0, max_records=end)  # dense offsets, no torn batch
        assert [r.offset for r in records] == list(range(end))
        assert end % 200 == 0
        log.close()
    assert len(acknowledged) > ROUNDS
