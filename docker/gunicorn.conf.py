"""gunicorn settings for the receiver, used by `make run` / `smshooks run` and the image.

Every callback waits for the Kafka ack before it is answered, so a worker spends most of a request
idle on the network: gthread workers (one process per core, several threads each) keep the CPU busy
while acks are in flight. Environment:

  SMSHOOKS_BIND             address to listen on (default 127.0.0.1:8000; the image sets 0.0.0.0:8000)
  WEB_CONCURRENCY           worker processes (default: CPU count, at least 2)
  GUNICORN_THREADS          threads per worker (default 4: measured best in bench/receiver.py; more threads per
                            worker make kafka-python's producer thread wait longer for the GIL and lower throughput)
  SMSHOOKS_REQUEST_READ_TIMEOUT  seconds a client has to send one whole request (default 10), then 408 and closed;
                            requests are read on each worker's main thread, so slow clients never hold a thread
  PROMETHEUS_MULTIPROC_DIR  directory for the workers' shared metric files (a private one is made if unset)
  GUNICORN_CONTROL_SOCKET   path of this instance's control socket for `gunicornc` (default: none)
"""

import os
import shutil
import tempfile

bind = os.environ.get("SMSHOOKS_BIND", "127.0.0.1:8000")
# gthread that reads each request whole on its main thread before a thread takes it (slow clients never hold a
# thread; 408 at SMSHOOKS_REQUEST_READ_TIMEOUT) and accepts a connection only with an idle thread, so kept-alive
# connections spread over the workers (smshooks/workers.py has the measurements); its logger skips gunicorn's
# access log (we log each request)
worker_class = "smshooks.workers.BalancedThreadWorker"
logger_class = "smshooks.workers.ReceiverLogger"
workers = int(os.environ.get("WEB_CONCURRENCY", max(2, os.cpu_count() or 1)))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# Never preload: the app must be imported in each worker, after the fork, so that no Kafka client,
# socket or metrics file is shared between processes.
preload_app = False
# A request may wait publish_timeout_seconds (5 s by default) for Kafka; leave room for that and more.
timeout = 30
# On SIGTERM, let in-flight callbacks get their ack and their answer before the worker exits.
graceful_timeout = 20
keepalive = 5
# gunicorn >= 25.1 opens a control socket at one path per user ($XDG_RUNTIME_DIR/gunicorn.ctl), so every
# gunicorn on a host would share it: off unless GUNICORN_CONTROL_SOCKET names one for this instance.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True
# Heartbeat files on tmpfs, so a slow overlay filesystem never gets a healthy worker killed.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# The app writes one JSON line per request itself (with the token redacted); no separate access log.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("SMSHOOKS_LOG_LEVEL", "info").lower()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        # the app's formatter and masking: gunicorn's own lines (a request line, a traceback) can carry a URL
        # token, a number or a credential too
        "json": {"()": "core.logs.json_formatter"},
    },
    "filters": {"mask": {"()": "core.logs.MaskingFilter"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr",
                            "filters": ["mask"]}},
    # the root logger is the app's (receiver.observability adds a masking JSON handler in each worker)
    "root": {"level": "INFO", "handlers": []},
    "loggers": {
        "gunicorn.error": {"handlers": ["stderr"], "level": loglevel.upper(), "propagate": False},
    },
}

# Set before any worker imports prometheus_client: the library picks file-backed values at import time.
_private_metrics_dir = None
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _private_metrics_dir = tempfile.mkdtemp(prefix="smshooks-prometheus-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _private_metrics_dir


def on_starting(server):
    """Start from an empty metrics directory: files of a previous run would be summed into ours."""
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.endswith(".db"):
            os.unlink(os.path.join(directory, name))


def post_worker_init(worker):
    """Start the worker's spool forwarder (one per host forwards; the others stand by to take over)."""
    from receiver.spooling import start_forwarder

    start_forwarder(worker.wsgi)


def child_exit(server, worker):
    """A dead worker's live gauges must stop counting; its counters stay in the totals."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics directory if we made it."""
    if _private_metrics_dir:
        shutil.rmtree(_private_metrics_dir, ignore_errors=True)
