"""gunicorn's settings for GuildHub's web app: `gunicorn` in this folder reads them.

Command-line options (`--bind 0.0.0.0:8000`) and GUNICORN_CMD_ARGS override them;
WEB_CONCURRENCY and GUNICORN_THREADS size the server. bench/member_search.py
measures the app under exactly this file.
"""

import os

wsgi_app = "guildhub.wsgi:application"
bind = ["127.0.0.1:8000"]

# One process per core: a Python process runs one thread at a time (the GIL), so
# processes are what use the cores. More processes than cores only take turns on
# them and each holds its own database connections.
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 1))

# Threads in each process: gthread keeps connections alive between requests (the
# sync worker closes every one, and the picker sends a request per pause in typing),
# and a process answers another request while one thread waits on PostgreSQL.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", 4))

# A person pauses between words for longer than gunicorn's default 2 s; reopening a
# connection then costs a handshake (and TLS, behind a proxy) on the next keystroke.
keepalive = 5

# gunicorn sets TCP_NODELAY on its TCP sockets itself, so small answers leave at
# once instead of waiting for the client's delayed ACK (40 ms on Linux), the trap
# that stock runserver falls into.
