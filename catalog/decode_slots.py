"""At most GLIMPSE_DECODES_IN_FLIGHT uploaded files are read and decoded at once per process.

Sixteen concurrent 20 MB uploads once added 326 MB to one web worker: each request held
its whole file in memory from the moment it arrived, and all of them decoded together.
Now an upload over FILE_UPLOAD_MAX_MEMORY_SIZE waits in a temporary file, and a request
reads it into memory, decodes it and makes its thumbnail only inside a slot; the others
wait their turn. A slot holds the file (at most GLIMPSE_MAX_UPLOAD_BYTES) and its pixels
(a JPEG decodes already reduced; another format up to 4 bytes a pixel before it is
reduced band by band to at most 2048 pixels a side), so uploads take at most
slots × (file + decoded pixels) of a process's memory, and about as much again that the C
allocator keeps in its per-thread arenas for reuse (docs/untrusted-files.md, "Memory").

That last part holds only while buffers of a picture's size go straight to the kernel
(mmap) and back on free. glibc raises its mmap threshold, up to 32 MB, each time such a
buffer is freed, and from then on keeps pixel buffers in the arena of the thread that
decoded them: in a process that had freed a 25 MB array once, sixteen threads' uploads
kept 1,020 MB instead of 197. So the threshold is fixed here, at import, which also stops
it moving.
"""
import ctypes
import threading
from contextlib import contextmanager
from typing import Iterator

from django.conf import settings

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
LARGE_BUFFER = 4 * 1024 * 1024  # and above: mmap'd, and given back to the kernel on free


def large_buffers_returned() -> bool:
    """Fix glibc's mmap threshold at LARGE_BUFFER (False where the C library is not glibc)."""
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, LARGE_BUFFER))
    except (OSError, AttributeError):
        return False


large_buffers_returned()


class DecodeSlots:
    def __init__(self):
        self.turn = threading.Condition()
        self.in_flight = 0
        self.most_in_flight = 0  # since the process started, or since a test reset it

    @contextmanager
    def slot(self) -> Iterator[None]:
        limit = settings.GLIMPSE_DECODES_IN_FLIGHT
        with self.turn:
            self.turn.wait_for(lambda: self.in_flight < limit)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            yield
        finally:
            with self.turn:
                self.in_flight -= 1
                self.turn.notify()


decode_slots = DecodeSlots()
