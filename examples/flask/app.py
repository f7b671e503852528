"""A small Flask app configured only from the environment.

Run it through envcloak so the secrets arrive as FLASK_* variables:

    envcloak run -- flask run

``app.config.from_prefixed_env()`` turns FLASK_SECRET_KEY into
``app.config["SECRET_KEY"]``, FLASK_DATABASE_URL into ``DATABASE_URL``, and so on.
Nothing here reads a .env file or holds a secret.
"""

from __future__ import annotations

from flask import Flask, jsonify

# Keys the app cannot run without, and keys it uses when they are there.
REQUIRED_KEYS = ("SECRET_KEY", "DATABASE_URL", "API_TOKEN")
OPTIONAL_KEYS = ("MAIL_SIGNATURE", "TLS_KEY_FILE")


def describe(value: object) -> dict:
    """What may be shown about a config value: whether it is set and its
    length, never the value itself."""
    if value is None or value == "":
        return {"status": "missing"}
    return {"status": "set", "length": len(str(value))}


def create_app(test_config: dict | None = None) -> Flask:
    """The application factory (``flask --app app run`` finds it)."""
    app = Flask(__name__)
    # Flask's own default SECRET_KEY is None; keep that, so a missing key shows.
    app.config.from_prefixed_env()  # FLASK_SECRET_KEY -> SECRET_KEY, ...
    if test_config:
        app.config.update(test_config)

    @app.get("/")
    def index():
        return "envcloak Flask demo: see /config for which settings arrived.\n"

    @app.get("/config")
    def config_status():
        """Which settings arrived, with their lengths; never a value."""
        keys = {key: describe(app.config.get(key)) for key in REQUIRED_KEYS + OPTIONAL_KEYS}
        missing = [key for key in REQUIRED_KEYS if keys[key]["status"] == "missing"]
        return jsonify(keys=keys, missing=missing, ok=not missing)

    return app
