"""Tests of the Flask demo, meant to run through envcloak:

    cd examples/flask
    envcloak run -p test -- python3 -m pytest -q

The secrets arrive as environment variables; the tests check that the app sees
them and that neither the /config route nor show_config.py ever prints one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import REQUIRED_KEYS, create_app

HERE = Path(__file__).resolve().parent.parent
HOW_TO_RUN = "run the tests through envcloak: envcloak run -p test -- python3 -m pytest -q"


def secret_values() -> list[str]:
    """Every secret value envcloak put into this process's environment."""
    names = [n for n in os.environ if n.startswith("FLASK_") and not n.endswith("_FILE")]
    names += [n for n in ("DB_PASSWORD", "TLS_KEY") if n in os.environ]
    return [os.environ[n] for n in names if len(os.environ[n]) >= 4]


@pytest.fixture()
def client():
    return create_app().test_client()


def test_app_starts(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"envcloak Flask demo" in response.data


def test_required_config_is_present():
    app = create_app()
    missing = [key for key in REQUIRED_KEYS if not app.config.get(key)]
    assert not missing, f"missing FLASK_{', FLASK_'.join(missing)}; {HOW_TO_RUN}"
    # from_prefixed_env took them from the environment, unchanged.
    assert app.config["SECRET_KEY"] == os.environ["FLASK_SECRET_KEY"]
    assert app.config["DATABASE_URL"].startswith("postgresql://")


def test_config_route_reports_every_required_key(client):
    body = client.get("/config").get_json()
    assert body["ok"] is True, f"missing {body['missing']}; {HOW_TO_RUN}"
    for key in REQUIRED_KEYS:
        assert body["keys"][key]["status"] == "set"
        assert body["keys"][key]["length"] == len(os.environ["FLASK_" + key])


def test_config_route_never_returns_a_value(client):
    values = secret_values()
    assert values, HOW_TO_RUN
    text = client.get("/config").get_data(as_text=True)
    for value in values:
        assert value not in text, "a secret value appeared in /config"


def test_config_route_never_returns_a_value_even_without_envcloak():
    canary = "canary-value-that-must-never-be-shown"
    app = create_app({"SECRET_KEY": canary, "DATABASE_URL": canary, "API_TOKEN": canary})
    response = app.test_client().get("/config")
    assert response.get_json()["ok"] is True
    assert canary not in response.get_data(as_text=True)
    # Missing settings are reported by name.
    app = create_app({"SECRET_KEY": None, "DATABASE_URL": "", "API_TOKEN": canary})
    body = app.test_client().get("/config").get_json()
    assert body["ok"] is False
    assert body["missing"] == ["SECRET_KEY", "DATABASE_URL"]


def test_tls_key_arrives_as_a_file():
    path = os.environ.get("FLASK_TLS_KEY_FILE")
    assert path, "FLASK_TLS_KEY_FILE is not set: use the test profile (envcloak run -p test -- ...)"
    with open(path, encoding="utf-8") as handle:
        content = handle.read()
    assert content.startswith("-----BEGIN DEMO PRIVATE KEY-----\n")
    assert content.rstrip().endswith("-----END DEMO PRIVATE KEY-----")
    assert create_app().config["TLS_KEY_FILE"] == path
    # /config tells the length of what the file held when the app was
    # created, never the content.
    response = create_app().test_client().get("/config")
    assert response.get_json()["keys"]["TLS_KEY_FILE"]["file_length"] == len(content)
    text = response.get_data(as_text=True)
    assert not any(line in text for line in content.splitlines() if len(line) >= 8)
    if sys.platform.startswith("linux"):
        # An in-memory file (memfd) inherited from envcloak: nothing on disk.
        assert path.startswith("/dev/fd/")
        assert "memfd:envcloak:FLASK_TLS_KEY_FILE" in os.readlink(path)


def run_show_config(env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Runs show_config.py as a child of this process.

    On Linux an `as = "file"` secret is an inherited descriptor (/dev/fd/N), and
    subprocess closes inherited descriptors unless told otherwise: pass_fds
    hands it on, as any program that starts helpers must.
    """
    path = os.environ.get("FLASK_TLS_KEY_FILE", "")
    fds = (int(path.removeprefix("/dev/fd/")),) if path.startswith("/dev/fd/") else ()
    return subprocess.run(
        [sys.executable, str(HERE / "show_config.py")],
        capture_output=True, text=True, env=env, pass_fds=fds, check=False,
    )


def test_show_config_masks_every_value():
    result = run_show_config()
    assert result.returncode == 0, result.stderr
    assert "OK: all 3 required settings are set" in result.stdout
    for value in secret_values():
        assert value not in result.stdout + result.stderr, "show_config.py printed a secret value"


def test_show_config_fails_when_a_secret_is_missing():
    env = {k: v for k, v in os.environ.items() if k != "FLASK_API_TOKEN"}
    result = run_show_config(env)
    assert result.returncode == 1
    assert "API_TOKEN       MISSING (required)" in result.stdout
    assert "missing FLASK_API_TOKEN" in result.stderr
