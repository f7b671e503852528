"""A small Flask app configured only from the environment.

Run it through envcloak so the secrets arrive as FLASK_* variables:

    envcloak run -- flask run

``app.config.from_prefixed_env()`` turns FLASK_SECRET_KEY into
``app.config["SECRET_KEY"]``, FLASK_DATABASE_URL into ``DATABASE_URL``, and so on.
Nothing here reads a .env file or holds a secret.

Settings whose name ends in ``_FILE`` hold a path (envcloak's ``as = "file"``:
``/dev/fd/N`` on Linux). The app reads such a file once, when it is created;
under gunicorn that is in each worker, so after ``kill -HUP`` (new workers)
they read the file again, with what envcloak wrote into it meanwhile.
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


def file_length(path: object) -> int | None:
    """The length of the content of the file at ``path``, or None when it
    cannot be read (never the content)."""
    if not path:
        return None
    try:
        with open(str(path), encoding="utf-8") as handle:
            return len(handle.read())
    except (OSError, UnicodeDecodeError):
        return None


def create_app(test_config: dict | None = None) -> Flask:
    """The application factory (``flask --app app run`` finds it)."""
    app = Flask(__name__)
    # Flask's own default SECRET_KEY is None; keep that, so a missing key shows.
    app.config.from_prefixed_env()  # FLASK_SECRET_KEY -> SECRET_KEY, ...
    if test_config:
        app.config.update(test_config)
    # What each *_FILE setting's file held when the app was created: the app
    # would load a TLS key or a certificate here. Only the length is kept.
    file_lengths = {key: file_length(app.config.get(key)) for key in OPTIONAL_KEYS if key.endswith("_FILE")}

    @app.get("/")
    def index():
        return "envcloak Flask demo: see /config for which settings arrived.\n"

    @app.get("/config")
    def config_status():
        """Which settings arrived, with their lengths; never a value."""
        keys = {key: describe(app.config.get(key)) for key in REQUIRED_KEYS + OPTIONAL_KEYS}
        for key, length in file_lengths.items():
            if keys[key]["status"] == "set":
                keys[key]["file_length"] = length
        missing = [key for key in REQUIRED_KEYS if keys[key]["status"] == "missing"]
        return jsonify(keys=keys, missing=missing, ok=not missing)

    return app
