"""The fraud application's demos: ``loopline demo fraud`` (embedded or scale-out),
``loopline demo events`` and ``loopline scenario drift``."""
