class NoActiveVersion(LookupError):
    """No model version is active: run migrations, which create version 1."""


class VersionStateError(ValueError):
    """The version is in the wrong state for what was asked; the message says which."""


class InvalidVector(ValueError):
    """A vector of the wrong shape, or with NaN, infinite or out-of-range values; nothing was written."""


class EmptyCatalog(LookupError):
    """No image has vectors yet, so there is nothing to adapt a version to."""


class PrecisionMismatch(ValueError):
    """The encoders compute in another precision than the version's vectors; nothing was written."""


class ReadingFailed(Exception):
    """The text of a picture could not be read: it took too long, or the reader failed on it; the message says why."""
