"""Every setting read from the environment refuses a value that will not do with one line
naming the variable and what it takes, in a fresh process importing the real settings; the
typed readers themselves (config/env.py) in this one."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_choice, env_flag, env_float, env_int, env_list, env_path, env_str

ROOT = Path(__file__).resolve().parents[2]
REFUSED = "django.core.exceptions.ImproperlyConfigured: "


def import_settings(data_dir: Path, code: str = "import config.settings", **variables: str) -> subprocess.CompletedProcess:
    """The real settings in a process of their own, with no Django or Glimpse variable of this
    machine's and the URLs of servers that are never connected to."""
    base = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "GLIMPSE_")) and key not in ("DATABASE_URL", "REDIS_URL")}
    environment = base | {
        "GLIMPSE_DATA_DIR": str(data_dir),
        "DATABASE_URL": "postgresql://glimpse@db.invalid:5432/glimpse",
        "REDIS_URL": "redis://redis.invalid:6379/0",
    } | variables
    return subprocess.run([sys.executable, "-c", code], env=environment, cwd=ROOT, capture_output=True, text=True, timeout=60)


BAD_VALUES = [
    ("GLIMPSE_MAX_UPLOAD_BYTES", "25MB", "use a whole number of 1 or more, like 26214400"),
    ("GLIMPSE_MAX_UPLOAD_BYTES", "0", "use a whole number of 1 or more, like 26214400"),
    ("GLIMPSE_MAX_PIXELS", "-5", "use a whole number of 1 or more, like 50000000"),
    ("GLIMPSE_MAX_REQUEST_BYTES", "30 MiB", "use a whole number of 1 or more, like 31457280"),
    ("GLIMPSE_MAX_ASPECT_RATIO", "0.5", "use a number of 1 or more, like 32"),
    ("GLIMPSE_MAX_ASPECT_RATIO", "nan", "use a number of 1 or more, like 32"),
    ("GLIMPSE_DECODES_IN_FLIGHT", "0", "use a whole number of 1 or more, like 2"),
    ("GLIMPSE_SEARCH_DEPTH", "lots", "use a whole number from 1 to 1000, like 100"),
    ("GLIMPSE_SEARCH_DEPTH", "5000", "use a whole number from 1 to 1000, like 100"),
    ("GLIMPSE_SEARCH_PAGE_SIZE", "101", "use a whole number from 1 to 100, like 24"),
    ("GLIMPSE_HNSW_EF_SEARCH", "0", "use a whole number from 1 to 1000, like 100"),
    ("GLIMPSE_EMBED_BATCH_SIZE", "0", "use a whole number of 1 or more, like 32"),
    ("GLIMPSE_CUDA_BATCH_SIZE", "2.5", "use a whole number of 1 or more, like 256"),
    ("GLIMPSE_READING_MAX_SIDE", "32", "use a whole number of 64 or more, like 1024"),
    ("GLIMPSE_READING_SECONDS", "ten", "use a number from 0.1 to 600, like 10"),
    ("GLIMPSE_READING_SECONDS", "0", "use a number from 0.1 to 600, like 10"),
    ("GLIMPSE_READING_MAX_CHARS", "1000000", "use a whole number from 1 to 100000, like 2000"),
    ("GLIMPSE_QUERY_PICTURE_SECONDS", "0", "use a whole number of 1 or more, like 3600"),
    ("GLIMPSE_JUDGED_QUERY_SIMILARITY", "90", "use a number from -1 to 1, like 0.9"),
    ("GLIMPSE_JUDGED_QUERY_SIMILARITY_MULTILINGUAL", "high", "use a number from -1 to 1, like 0.97"),
    ("GLIMPSE_PICTURE_TEXT_SIMILARITY", "1.5", "use a number from -1 to 1, like 0.88"),
    ("GLIMPSE_HIDE_AFTER_CURATORS", "0", "use a whole number of 1 or more, like 2"),
    ("GLIMPSE_RELEASE_MARGIN", "-0.1", "use a number from 0 to 1, like 0.005"),
    ("GLIMPSE_HELD_OUT_SHARE", "1.5", "use a number from 0.01 to 0.99, like 0.3"),
    ("GLIMPSE_HELD_OUT_SHARE", "0", "use a number from 0.01 to 0.99, like 0.3"),
    ("GLIMPSE_GATE_FOLDS", "0", "use a whole number of 1 or more, like 5"),
    ("GLIMPSE_TRAIN_AFTER_JUDGMENTS", "fifty", "use a whole number of 1 or more, like 50"),
    ("GLIMPSE_DB_CONN_MAX_AGE", "-1", "use a whole number of 0 or more, like 0"),
    ("DJANGO_SECURE_HSTS_SECONDS", "1 year", "use a whole number of 0 or more, like 0"),
    ("GLIMPSE_LOG_LEVEL", "info", "use DEBUG, INFO, WARNING, ERROR or CRITICAL"),
    ("GLIMPSE_INFERENCE_BACKEND", "tensorflow", "use auto, torch, onnxruntime or openvino"),
    ("GLIMPSE_INFERENCE_PRECISION", "fp8", "use f32 or bf16"),
    ("GLIMPSE_READING", "sometimes", "use 1 or 0"),
    ("GLIMPSE_SERVE_MEDIA", "maybe", "use 1 or 0"),
    ("DJANGO_SECURE_SSL_REDIRECT", "please", "use 1 or 0"),
]


@pytest.mark.parametrize(("variable", "value", "takes"), BAD_VALUES, ids=[f"{name}={value}" for name, value, _ in BAD_VALUES])
def test_a_bad_value_is_one_line_naming_the_variable_and_what_it_takes(tmp_path, variable, value, takes):
    done = import_settings(tmp_path, **{variable: value})
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == f"{REFUSED}{variable}={value!r}: {takes}"
    assert "ValueError" not in done.stderr  # refused by the reader, not by int() on the way


def test_the_cross_check_of_the_two_size_limits_stays(tmp_path):
    done = import_settings(tmp_path, GLIMPSE_MAX_UPLOAD_BYTES="100", GLIMPSE_MAX_REQUEST_BYTES="100")
    assert done.stderr.splitlines()[-1] == (
        f"{REFUSED}GLIMPSE_MAX_REQUEST_BYTES=100 is not over GLIMPSE_MAX_UPLOAD_BYTES=100: an upload of the limit could not be sent"
    )


PRINTED = ["GLIMPSE_MAX_UPLOAD_BYTES", "GLIMPSE_MAX_REQUEST_BYTES", "GLIMPSE_MAX_ASPECT_RATIO", "GLIMPSE_SEARCH_DEPTH",
           "GLIMPSE_EMBED_BATCH_SIZE", "GLIMPSE_HELD_OUT_SHARE", "GLIMPSE_READING", "GLIMPSE_READING_SECONDS", "GLIMPSE_DEVICE"]
PRINT = f"import json, config.settings as s; print(json.dumps({{name: getattr(s, name) for name in {PRINTED!r}}}))"


def test_defaults_and_values_at_the_edges_of_their_ranges_load(tmp_path):
    defaults = import_settings(tmp_path, PRINT)
    assert defaults.returncode == 0, defaults.stderr
    assert json.loads(defaults.stdout) == {
        "GLIMPSE_MAX_UPLOAD_BYTES": 26214400, "GLIMPSE_MAX_REQUEST_BYTES": 31457280, "GLIMPSE_MAX_ASPECT_RATIO": 32,
        "GLIMPSE_SEARCH_DEPTH": 100, "GLIMPSE_EMBED_BATCH_SIZE": 32, "GLIMPSE_HELD_OUT_SHARE": 0.3, "GLIMPSE_READING": True,
        "GLIMPSE_READING_SECONDS": 10, "GLIMPSE_DEVICE": "auto",
    }
    edges = import_settings(
        tmp_path, PRINT, GLIMPSE_MAX_UPLOAD_BYTES="1000", GLIMPSE_MAX_ASPECT_RATIO="1", GLIMPSE_SEARCH_DEPTH="1000",
        GLIMPSE_EMBED_BATCH_SIZE=" 1 ", GLIMPSE_HELD_OUT_SHARE="0.99", GLIMPSE_READING="0", GLIMPSE_READING_SECONDS="600", GLIMPSE_DEVICE="cuda:1",
    )
    assert edges.returncode == 0, edges.stderr
    assert json.loads(edges.stdout) == {
        "GLIMPSE_MAX_UPLOAD_BYTES": 1000, "GLIMPSE_MAX_REQUEST_BYTES": 1000 + 5 * 1024 * 1024, "GLIMPSE_MAX_ASPECT_RATIO": 1.0,
        "GLIMPSE_SEARCH_DEPTH": 1000, "GLIMPSE_EMBED_BATCH_SIZE": 1, "GLIMPSE_HELD_OUT_SHARE": 0.99, "GLIMPSE_READING": False,
        "GLIMPSE_READING_SECONDS": 600.0, "GLIMPSE_DEVICE": "cuda:1",
    }


def test_settings_read_the_environment_only_through_the_typed_readers():
    source = (ROOT / "config" / "settings.py").read_text()
    reads = [line.strip() for line in source.splitlines() if "os.environ" in line or "os.getenv" in line]
    assert reads == ['os.environ.setdefault("HF_HUB_OFFLINE", "1")']  # a default it sets, not a setting it reads


def test_the_readers(monkeypatch):
    monkeypatch.delenv("GLIMPSE_TEST_KNOB", raising=False)
    assert (env_int("GLIMPSE_TEST_KNOB", 7, minimum=1), env_float("GLIMPSE_TEST_KNOB", 0.5), env_flag("GLIMPSE_TEST_KNOB", True)) == (7, 0.5, True)
    assert (env_str("GLIMPSE_TEST_KNOB", "a"), env_path("GLIMPSE_TEST_KNOB", Path("/x")), env_list("GLIMPSE_TEST_KNOB", "a, ,b")) == ("a", Path("/x"), ["a", "b"])
    monkeypatch.setenv("GLIMPSE_TEST_KNOB", "12")
    assert (env_int("GLIMPSE_TEST_KNOB", 7, maximum=12), env_float("GLIMPSE_TEST_KNOB", 1, minimum=12)) == (12, 12.0)
    with pytest.raises(ImproperlyConfigured, match=r"^GLIMPSE_TEST_KNOB='12': use a whole number of 11 or less, like 7$"):
        env_int("GLIMPSE_TEST_KNOB", 7, maximum=11)
    with pytest.raises(ImproperlyConfigured, match=r"^GLIMPSE_TEST_KNOB='12': use one$"):
        env_choice("GLIMPSE_TEST_KNOB", "one", ("one",))
    monkeypatch.setenv("GLIMPSE_TEST_KNOB", "")
    assert env_flag("GLIMPSE_TEST_KNOB", True) is False
    with pytest.raises(ImproperlyConfigured, match=r"^GLIMPSE_TEST_KNOB='': use a whole number, like 7$"):
        env_int("GLIMPSE_TEST_KNOB", 7)
