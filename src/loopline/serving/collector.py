"""Keeping Python's cyclic garbage collector off the request path.

The online feature state held hundreds of thousands of long-lived container objects
(the distinct-count sets of every tile, code arrays since decision 0002's "Blocks and
value codes"). A full collection scanned all of them, and on the serving process it grew
to 200 ms pauses: the whole p99 at half load (measured in
docs/decisions/0003-serving.md). A service still holds many long-lived objects (models,
routing, caches), and a full pass over them is still a pause worth avoiding.

Every few seconds this collects what is not yet frozen, which is only what was born
since the last pass, and then freezes the survivors (``gc.freeze``) so that later
collections skip them.

Reference cycles among frozen objects are not reclaimed. Everything that dies young,
asyncio's exception and future cycles included, is still collected: only objects that
have lived through a pass are frozen.
"""

from __future__ import annotations

import asyncio
import gc

FREEZE_EVERY_S = 5.0


def freeze_survivors() -> None:
    """Collect what is not frozen, then freeze what survived."""
    gc.collect()
    gc.freeze()


def thaw() -> None:
    """Undo the freezing (when the service stops): what is frozen is never collected, not
    even at interpreter exit, where extension modules then report leaks."""
    gc.unfreeze()


async def keep_collections_short(every_s: float = FREEZE_EVERY_S) -> None:
    """Run :func:`freeze_survivors` every ``every_s`` seconds, forever."""
    while True:
        await asyncio.sleep(every_s)
        freeze_survivors()
