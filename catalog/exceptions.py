class InvalidImage(ValueError):
    """The file is not an image we accept; the message says why, for the person who sent it."""


class DuplicateImage(ValueError):
    def __init__(self, existing_id: int):
        super().__init__(f"the same file is already in the catalog as image {existing_id}")
        self.existing_id = existing_id


class InvalidManifest(ValueError):
    """A manifest row cannot be read; the message names the line."""


class UnreadableFile(ValueError):
    """A named file cannot be read safely (missing, special, too large); the message says why."""
