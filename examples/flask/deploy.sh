#!/bin/sh
# Starts the Flask app under gunicorn with its secrets from envcloak.
#
#   ./deploy.sh                                  # profile `dev` (envcloak.toml's default)
#   ENVCLOAK_PROFILE=prod ./deploy.sh            # production secrets (Vault)
#   BIND=0.0.0.0:8080 WORKERS=4 ./deploy.sh
#
# envcloak reads ENVCLOAK_PROFILE (and ENVCLOAK_CONFIG, ENVCLOAK_AUDIT_LOG,
# ENVCLOAK_METRICS_FILE) itself. No secret is in this script or its arguments:
# envcloak resolves them and replaces itself with gunicorn (exec), so gunicorn
# keeps this script's process id and gets SIGTERM/SIGHUP from the process
# manager directly.
set -eu

# The config, app and gunicorn.conf.py are next to this script.
cd "$(dirname "$0")"

BIND=${BIND:-127.0.0.1:8000}
WORKERS=${WORKERS:-2}

exec envcloak run -- gunicorn --config gunicorn.conf.py --bind "$BIND" --workers "$WORKERS" 'app:create_app()'
