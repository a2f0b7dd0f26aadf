"""The exceptions loopline raises.

Every error derives from :class:`LooplineError` and, where one fits, from the matching
built-in too, so ``except KeyError`` keeps working::

    LooplineError
    ├── ConfigError (ValueError)            a component was configured wrongly
    ├── SchemaError (ValueError)            an event does not match its schema
    ├── LateEventError (ValueError)         an event came later than the allowed lateness
    ├── EventLogError
    │   ├── TopicNotFoundError (KeyError)   the topic does not exist
    │   ├── TopicExistsError                create_topic on an existing topic, other layout
    │   ├── BackendUnavailableError (ConnectionError)
    │   │                                   the server cannot be reached in time
    │   └── CommitError                     offsets could not be committed
    ├── RegistryError                       (loopline.registry) unknown model, version, alias
    │   └── UntrustedModelError             a version serving must not load: unsigned, an
    │                                       untrusted key, files unlike its signed manifest
    └── EdgeError                           (loopline.edge) a device's slots or a package
        └── UntrustedPackageError           a package a device must not install: unsigned,
                                            tampered, incompatible, a downgrade
"""

from __future__ import annotations


class LooplineError(Exception):
    """The root of every error loopline raises."""


class ConfigError(LooplineError, ValueError):
    """A component was given an invalid option."""


class SchemaError(LooplineError, ValueError):
    """An event does not match its schema.

    Attributes:
        field: The dotted path of the offending field (``""`` for the whole object).
        value: The value received there, when there was one.
    """

    def __init__(self, message: str, *, field: str = "", value: object = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class LateEventError(LooplineError, ValueError):
    """An event arrived later than its feature view's allowed lateness: not aggregated."""


class EventLogError(LooplineError):
    """An event-log operation failed."""


class TopicNotFoundError(EventLogError, KeyError):
    """The topic does not exist on the event log."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class TopicExistsError(EventLogError):
    """The topic exists with a different number of partitions."""


class BackendUnavailableError(EventLogError, ConnectionError):
    """The backend's server could not be reached within the deadline."""


class CommitError(EventLogError):
    """Consumer offsets could not be committed."""
