"""run_log's helpers: one line per error, atomic writes."""

import os

import pytest

import run_log


def test_an_error_line_is_its_type_and_the_first_line_of_its_message_cut_to_the_limit():
    long = "x" * (run_log.ERROR_LINE_LIMIT + 50)
    assert run_log.error_line(ValueError(f"{long}\nsecond line")) == f"ValueError: {long[:run_log.ERROR_LINE_LIMIT]}"
    assert run_log.error_line(ValueError("  bad value\nmore  ")) == "ValueError: bad value"
    assert run_log.error_line(KeyError()) == "KeyError"
    assert run_log.error_line(OSError("no space left\nat x"), kind=False) == "no space left"
    assert run_log.error_line(RuntimeError(), kind=False) == "RuntimeError"


def test_an_atomic_write_replaces_the_file_only_when_it_is_whole(tmp_path):
    path = str(tmp_path / "f.txt")
    with run_log.atomic_write(path) as f:
        f.write("old\n")
    with pytest.raises(OSError):
        with run_log.atomic_write(path) as f:
            f.write("half of the new")
            raise OSError(28, "No space left on device")  # What a full disk does mid-write.
    assert open(path).read() == "old\n"
    assert os.listdir(tmp_path) == ["f.txt"]  # No temporary file is left behind.
    with run_log.atomic_write(path, "wb") as f:
        f.write(b"new\n")
    assert open(path).read() == "new\n"
