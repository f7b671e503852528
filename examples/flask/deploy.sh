#!/bin/sh
# Starts the Flask app under gunicorn with its secrets from envcloak.
#
#   ./deploy.sh                                  # profile `dev` (envcloak.toml's default)
#   ENVCLOAK_PROFILE=prod ./deploy.sh            # production secrets (Vault)
#   BIND=0.0.0.0:8080 WORKERS=4 ./deploy.sh
#
# envcloak reads ENVCLOAK_PROFILE (and ENVCLOAK_CONFIG, ENVCLOAK_AUDIT_LOG,
# ENVCLOAK_METRICS_FILE) itself. No secret is in this script or its arguments:
# envcloak resolves them and starts gunicorn, in one of two ways:
#
# - profiles `dev` and `prod-aws` (nothing to keep or watch): envcloak
#   replaces itself with gunicorn (exec), so gunicorn keeps this script's
#   process id and gets SIGTERM/SIGHUP from the process manager directly;
# - profile `prod` (`watch = "60s"`, and a database user whose Vault lease
#   must be renewed, then revoked): envcloak keeps this script's process id
#   and supervises gunicorn, its child. It forwards SIGTERM and SIGINT (and
#   SIGHUP) to gunicorn, restarts it when secret/flask/prod gets a new
#   version or the database credentials are due for renewal, and revokes
#   the lease once gunicorn has stopped. Stop it with SIGTERM to this process
#   id, never SIGKILL (the lease would then live until its TTL). A SIGHUP
#   sent to envcloak goes to the gunicorn master alone, which reloads its
#   workers gracefully.
set -eu

# The config, app and gunicorn.conf.py are next to this script.
cd "$(dirname "$0")"

BIND=${BIND:-127.0.0.1:8000}
WORKERS=${WORKERS:-2}

exec envcloak run -- gunicorn --config gunicorn.conf.py --bind "$BIND" --workers "$WORKERS" 'app:create_app()'
