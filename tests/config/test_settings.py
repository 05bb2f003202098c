"""The settings module as a fresh process sees it: no DEBUG by default, a local secret key,
and a deployment check that is clean with the production variables the README documents."""
import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]
PRINT_SETTINGS = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'debug': s.DEBUG, 'key': s.SECRET_KEY, 'media': s.GLIMPSE_SERVE_MEDIA}))"
)


def clean_environment(data_dir: Path, **variables: str) -> dict[str, str]:
    """This machine's environment without any Django or Glimpse setting, plus `variables`.
    The URLs only need to parse: nothing here connects to them."""
    base = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "GLIMPSE_"))}
    base.pop("DATABASE_URL", None)
    base.pop("REDIS_URL", None)
    return base | {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "GLIMPSE_DATA_DIR": str(data_dir),
        "DATABASE_URL": "postgresql://glimpse@db.invalid:5432/glimpse",
        "REDIS_URL": "redis://redis.invalid:6379/0",
    } | variables


def settings_seen(environment: dict[str, str]) -> dict:
    result = subprocess.run([sys.executable, "-c", PRINT_SETTINGS], env=environment, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_debug_is_off_unless_asked_for_and_a_local_key_is_kept(tmp_path):
    first = settings_seen(clean_environment(tmp_path))
    second = settings_seen(clean_environment(tmp_path))
    assert (first["debug"], first["media"]) == (False, False)
    assert first["key"] == second["key"] == (tmp_path / "secret_key").read_text()
    assert len(first["key"]) >= 50
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert list(tmp_path.iterdir()) == [tmp_path / "secret_key"]  # no draft left behind

    assert settings_seen(clean_environment(tmp_path, DJANGO_DEBUG="1")) | {"key": ""} == {"debug": True, "media": True, "key": ""}
    given = settings_seen(clean_environment(tmp_path, DJANGO_SECRET_KEY="from-the-environment"))
    assert given["key"] == "from-the-environment"


def test_a_bad_debug_value_is_refused(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", PRINT_SETTINGS], env=clean_environment(tmp_path, DJANGO_DEBUG="maybe"), cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "DJANGO_DEBUG='maybe': use 1 or 0" in result.stderr


def documented_production_variables() -> dict[str, str]:
    """The variables of the README's production example (section "Production with Docker")."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Production with Docker", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    variables = dict(re.findall(r"^(DJANGO_[A-Z_]+)=(\S+)", block, flags=re.MULTILINE))
    assert "DJANGO_SECRET_KEY" in variables and "DJANGO_SECURE_HSTS_SECONDS" in variables, block
    # The README shows how to make a key; the test makes one the same way.
    variables["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(50)
    return variables


def test_the_deployment_check_is_clean_with_the_documented_production_variables(tmp_path):
    environment = clean_environment(tmp_path, **documented_production_variables())
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=environment, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."
    assert not (tmp_path / "secret_key").exists()  # the given key is used, none is made


def test_without_the_production_variables_the_check_names_what_is_missing(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"], env=clean_environment(tmp_path), cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert sorted(set(re.findall(r"\(security\.(W\d+)\)", result.stderr))) == ["W004", "W008", "W012", "W016"]


def test_anonymous_users_are_sent_to_the_admin_login(client, db):
    assert settings.LOGIN_URL == "admin:login"
    response = client.post(reverse("search:judge"), {"q": "apple", "image": 1, "grade": 2, "next": "/?q=apple"})
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/%3Fq%3Dapple"
    assert client.get(response["Location"]).status_code == 200
