"""gunicorn settings for the Flask app.

gunicorn reads this file with ``--config gunicorn.conf.py`` (deploy.sh and the
Dockerfile pass it). Settings given on the command line win over this file,
and ``GUNICORN_CMD_ARGS`` (e.g. ``--bind=127.0.0.1:9000``) wins over it too.

No secret belongs here: the app gets its secrets from envcloak as environment
variables, and this file is code.
"""

import os

# Where to listen. deploy.sh passes --bind "$BIND"; in the Docker image
# (ENV BIND=0.0.0.0:8000) this default is what sets it.
bind = os.environ.get("BIND", "127.0.0.1:8000")

# Worker processes. deploy.sh passes --workers "$WORKERS".
workers = int(os.environ.get("WORKERS", "2"))

# Logs to stdout/stderr, where the process manager or `docker logs` collects them.
# The access log shows the request line, never headers or the environment.
accesslog = "-"
errorlog = "-"
loglevel = "info"

# Heartbeat files in RAM, not on the container's (possibly read-only) disk.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

# No control socket under $HOME: a service user's home may not be writable.
control_socket_disable = True

# How long workers get to finish their requests after SIGTERM.
graceful_timeout = 20
