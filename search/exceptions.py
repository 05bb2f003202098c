class InvalidQuery(ValueError):
    """The query cannot be run as given; the message says what to change."""


class EmptyQuery(InvalidQuery):
    """The search has neither words nor a picture (uploaded or "more like this")."""


class JudgmentNotAllowed(PermissionError):
    """The user may not judge results."""


class TagNotAllowed(JudgmentNotAllowed):
    """The user may judge results but not change images' tags."""


class InvalidJudgment(ValueError):
    """The judgment cannot be recorded as given; the message says why."""


class UploadTooLarge(InvalidQuery):
    """The uploaded query picture is over the size limit."""


class QueryPictureExpired(InvalidQuery):
    """The next page of a picture search names an upload that is no longer kept."""


class QueryImageNotFound(LookupError):
    """"More like this" names an image that does not exist."""


class TooFewJudgments(ValueError):
    """A training run could not be measured, so never released; the message says what is missing."""
