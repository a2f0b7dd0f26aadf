"""Load generators for demos, soaks and tests: requests replayed against running
services as their callers would send them (``httpx``, in the ``serve`` extra)."""

from loopline.testing.replay import HttpReplay
from loopline.testing.soak import SoakResult, check, rss_mb, soak

__all__ = ["HttpReplay", "SoakResult", "check", "rss_mb", "soak"]
