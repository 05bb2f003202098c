"""Open files named by someone else: regular files only, never through a final symlink, never unbounded."""
import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

from .exceptions import UnreadableFile
from .imaging import megabytes, size_over_limit

KINDS = {
    stat.S_ISDIR: "a folder",
    stat.S_ISFIFO: "a FIFO",
    stat.S_ISSOCK: "a socket",
    stat.S_ISCHR: "a character device",
    stat.S_ISBLK: "a block device",
}


def open_regular_file(path: Path) -> BinaryIO:
    """An open binary handle, or UnreadableFile saying why not.

    O_NONBLOCK makes opening a FIFO return at once instead of waiting for a writer, and
    O_NOFOLLOW refuses a symlink swapped in after the caller resolved the path; what was
    opened is then checked with fstat, so no special file is ever read.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise UnreadableFile("not a regular file: it is a symlink") from None
        raise UnreadableFile(f"cannot read: {error.strerror}") from None
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        kind = next((name for test, name in KINDS.items() if test(mode)), "a special file")
        raise UnreadableFile(f"not a regular file: it is {kind}")
    return os.fdopen(descriptor, "rb")


def read_regular_file(path: Path, *, max_bytes: int) -> bytes:
    """The whole file, or UnreadableFile; never reads more than max_bytes + 1 bytes."""
    with open_regular_file(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > max_bytes:
            raise UnreadableFile(size_over_limit(size, max_bytes))
        try:
            content = handle.read(max_bytes + 1)
        except OSError as error:
            raise UnreadableFile(f"cannot read: {error.strerror}") from None
    if len(content) > max_bytes:  # it grew after fstat
        raise UnreadableFile(f"the file is over the limit of {megabytes(max_bytes)}")
    return content
