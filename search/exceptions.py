class InvalidQuery(ValueError):
    """The query cannot be run as given; the message says what to change."""
