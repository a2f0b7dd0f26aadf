"""``python -m loopline``: the ``loopline`` command (how the scale demo starts workers)."""

from loopline.cli import main

main()
