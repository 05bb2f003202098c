import os
import socket

import pytest

from catalog.exceptions import UnreadableFile
from catalog.files import read_regular_file


def test_a_regular_file_is_read_whole(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"12345")
    assert read_regular_file(tmp_path / "a.bin", max_bytes=5) == b"12345"


def test_a_file_over_the_limit_is_refused_by_its_size(tmp_path):
    (tmp_path / "big.bin").write_bytes(b"x" * (3 * 1024 * 1024))
    with pytest.raises(UnreadableFile, match=r"^the file is 3.0 MiB; the limit is 2.0 MiB$"):
        read_regular_file(tmp_path / "big.bin", max_bytes=2 * 1024 * 1024)


def test_special_files_are_refused_without_being_read(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    os.symlink(tmp_path / "fifo", tmp_path / "link")
    listening = socket.socket(socket.AF_UNIX)
    listening.bind(str(tmp_path / "socket"))
    expected = {
        tmp_path / "fifo": "not a regular file: it is a FIFO",
        tmp_path / "link": "not a regular file: it is a symlink",
        tmp_path / "socket": "cannot read: No such device or address",
        tmp_path: "not a regular file: it is a folder",
        "/dev/zero": "not a regular file: it is a character device",
        tmp_path / "missing": "cannot read: No such file or directory",
    }
    try:
        for path, message in expected.items():
            with pytest.raises(UnreadableFile, match=f"^{message}$"):
                read_regular_file(path, max_bytes=100)
    finally:
        listening.close()
