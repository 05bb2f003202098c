"""Peak resident memory of a block of code, measured by the kernel.

tracemalloc cannot see Pillow's or torch's pixel buffers (they are allocated in C), so the
peak RSS is reset through /proc/self/clear_refs and read back from VmHWM, after malloc has
handed its free pages back, so that memory freed earlier cannot be reused unseen.
"""
import ctypes
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

MB = 1024 * 1024


@dataclass
class Peak:
    growth: int = 0  # bytes above the resident size at the start


def status_kilobytes(field: str) -> int:
    return int(re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE).group(1))


@contextmanager
def peak_memory():
    # Memory freed earlier but kept by malloc would be reused unseen: give it back first.
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pytest.skip("this kernel does not let a process reset its peak RSS")
    start = status_kilobytes("VmRSS")
    peak = Peak()
    yield peak
    peak.growth = (status_kilobytes("VmHWM") - start) * 1024
