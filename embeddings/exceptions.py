class NoActiveVersion(LookupError):
    """No model version is active: run migrations, which create version 1."""
