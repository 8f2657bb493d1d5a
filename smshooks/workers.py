"""gunicorn worker and logger classes for the receiver: connections shared fairly between worker processes."""

from __future__ import annotations

from gunicorn.glogging import Logger
from gunicorn.workers.gthread import ThreadWorker


class BalancedThreadWorker(ThreadWorker):
    """gunicorn's gthread worker that takes a new connection only while one of its threads is idle.

    Stock gthread accepts every connection it can, busy or not. Clients that keep connections alive (a load
    balancer, a vendor's HTTP pool, wrk) then often land all on one worker process, which uses one core (the
    GIL) while the others idle: with 2 workers and 32 kept-alive connections, one run in three put all 32 on
    one worker and halved the throughput, and queued requests behind busy threads gave a p99 of 0.7 s. Leaving
    a connection in the listen backlog until some worker has an idle thread hands it to the least busy one.
    """

    in_flight = 0

    def set_accept_enabled(self, enabled: bool) -> None:
        """Listen only when the stock rules allow it and a thread is free (called on the main thread only)."""
        super().set_accept_enabled(enabled and self.in_flight < self.cfg.threads)

    def enqueue_req(self, conn) -> None:
        """Count the request as in flight; stop listening when every thread has one."""
        self.in_flight += 1
        super().enqueue_req(conn)
        self._reconsider_accepting()

    def finish_request(self, conn, fs) -> None:
        """A thread is free again: listen again if the stock rules allow."""
        self.in_flight -= 1
        super().finish_request(conn, fs)
        self._reconsider_accepting()

    def _reconsider_accepting(self) -> None:
        self.set_accept_enabled(self.alive and self.nr_conns < self.worker_connections)


class ReceiverLogger(Logger):
    """gunicorn's logger without its access log: the receiver writes its own JSON line per request (with the
    request id and masked numbers), and gunicorn would otherwise format its access atoms for every request
    even when the line is filtered out."""

    def access(self, resp, req, environ, request_time) -> None:
        """No-op: see the class docstring."""
