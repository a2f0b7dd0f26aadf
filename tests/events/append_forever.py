"""Subprocess for the durability test: append batches forever, printing each acknowledgement.

Usage: python append_forever.py PATH

A line "BATCH FIRST_OFFSET COUNT" is printed only after append_many returned, so
every printed batch must survive the kill -9 that ends this process.
"""

import sys

from loopline.events import EmbeddedLog, Message

log = EmbeddedLog(sys.argv[1])
log.create_topic("payments", partitions=1)
batch = 0
while True:
    messages = [Message(f"{batch}:{i}".encode() * 50, key=b"k") for i in range(200)]
    positions = log.append_many("payments", messages)
    sys.stdout.write(f"{batch} {positions[0][1]} {len(positions)}\n")  # one write per line
    sys.stdout.flush()
    batch += 1
