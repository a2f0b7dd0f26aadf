"""loopline: an end-to-end real-time ML system in Python.

Stages: ``loopline.events`` (event log), then features, training, registry, serving,
monitoring and feedback. ``import loopline`` is light: stages and their optional
dependencies are imported where they are used.
"""

from loopline.exceptions import LooplineError

__all__ = ["LooplineError", "__version__"]

__version__ = "0.1.0"
