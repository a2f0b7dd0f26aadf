"""Subprocess for the crash tests: consume a topic in a group, printing each record, then commit.

Usage: python consume_forever.py URL GROUP TOPIC SESSION_TIMEOUT_S

Each batch is printed as one line ("partition:offset ...") and flushed *before* the
commit, so a kill -9 between the two leaves records that were processed but not
committed: the next member must deliver them again (at-least-once).
"""

import sys

from loopline.events import open_log

url, group, topic, session = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
log = open_log(url)
consumer = log.consumer(group, [topic], session_timeout_s=session)
while True:
    records = consumer.poll(max_records=20, timeout_s=0.5)
    if records:
        print(" ".join(f"{r.partition}:{r.offset}" for r in records), flush=True)
        consumer.commit()
