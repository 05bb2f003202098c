"""Commands and keyword searches never import the model libraries (torch alone takes
seconds to import); each test runs in a fresh interpreter, which no other test has touched."""
import json
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection

from tests.conftest import unit

MODEL_LIBRARIES = ("torch", "timm", "transformers", "onnxruntime", "openvino")

EVERY_COMMAND = """
import json, sys
import django
from django.core.management import call_command, get_commands, load_command_class

django.setup()
call_command("check")
for name, app in get_commands().items():
    load_command_class(app, name)  # what `manage.py <name>` imports before it runs
print(json.dumps(sorted(name for name in {libraries} if name in sys.modules)))
"""

KEYWORD_QUERY = """
import json, sys
import django
from django.test import Client

django.setup()
response = Client(HTTP_HOST="localhost").get("/api/search", {{"q": "apple", "mode": "keyword"}})
titles = [result["title"] for result in response.json()["results"]]
print(json.dumps([response.status_code, titles, sorted(name for name in {libraries} if name in sys.modules)]))
"""


def run_python(script: str, **environment) -> list:
    result = subprocess.run(
        [sys.executable, "-c", script.format(libraries=MODEL_LIBRARIES)],
        cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", **environment},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_settings_apps_check_and_every_command_load_without_model_libraries():
    assert run_python(EVERY_COMMAND) == []


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # keeps the migration-made version 1
def test_a_keyword_search_is_served_without_model_libraries(make_images):
    make_images([{"title": "Red apple", "image_vector": unit(1, 0.1)}, {"title": "Guitar", "image_vector": unit(0, 1)}])
    status, titles, imported = run_python(
        KEYWORD_QUERY, GLIMPSE_TEST_DATABASE=connection.settings_dict["NAME"], GLIMPSE_TEST_MEDIA=str(settings.MEDIA_ROOT)
    )
    assert (status, titles, imported) == (200, ["Red apple"], [])
