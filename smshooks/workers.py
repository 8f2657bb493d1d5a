"""gunicorn worker and logger classes for the receiver: requests read whole before a thread takes them, within a
deadline, and connections shared fairly between worker processes."""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import socket
import time
import uuid
from functools import partial

from gunicorn import util
from gunicorn.glogging import Logger
from gunicorn.workers.gthread import TConn, ThreadWorker

# How long a client may take to send one whole request (headers and body), from its connection or its first byte
# on a kept-alive connection; then it gets a 408 and is closed. A vendor sends a callback in milliseconds.
REQUEST_READ_SECONDS = float(os.environ.get("SMSHOOKS_REQUEST_READ_TIMEOUT", "10"))
# Read ahead at most this much on the main thread; a longer request is handed over (the app answers 413 after
# max_body_bytes, gunicorn 431 for huge headers) and its thread reads the rest within the same deadline.
PREFETCH_LIMIT = 256 * 1024
CONTENT_LENGTH = re.compile(rb"\ncontent-length[ \t]*:[ \t]*(\d+)")
EXPECT_CONTINUE = re.compile(rb"\r\nexpect[ \t]*:[ \t]*100-continue[ \t]*(?=\r\n)", re.IGNORECASE)


def request_complete(data: bytes | bytearray) -> bool:
    """Whether `data` holds a whole request: headers, then its Content-Length body or its last chunk.

    A wrong guess costs nothing but time: handed over early, the thread reads the rest within the deadline;
    held back, the client gets a 408 at the deadline.
    """
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return False
    head = bytes(data[:end]).lower()
    body_length = len(data) - end - 4
    if b"\ntransfer-encoding" in head:
        return chunked_body_complete(bytes(data[end + 4:]))
    length = CONTENT_LENGTH.search(head)
    return length is None or body_length >= int(length.group(1))


def chunked_body_complete(body: bytes) -> bool:
    """Whether a chunked body has its last chunk and the end of its trailers, or is already malformed (a bad size
    line or a chunk without its CRLF: the thread's parser answers 400 at once rather than the client a 408 later)."""
    position = 0
    while True:
        end_of_size = body.find(b"\r\n", position)
        if end_of_size < 0:
            return len(body) - position > 1024  # no size line is that long
        try:
            size = int(body[position:end_of_size].split(b";", 1)[0], 16)
        except ValueError:
            return True
        if size > PREFETCH_LIMIT:
            return True  # more than is ever read ahead: the thread's parser or the app's 413 answers it
        if size == 0:
            return body[end_of_size:end_of_size + 4] == b"\r\n\r\n" or body.find(b"\r\n\r\n", end_of_size) >= 0
        position = end_of_size + 2 + size + 2
        if len(body) < position:
            return False
        if body[position - 2:position] != b"\r\n":
            return True


class PrefetchedSocket:
    """A client socket whose first bytes were already read by the main thread; later reads (a body longer than the
    prefetch, a kept-alive connection's next request) end at the request's deadline with TimeoutError."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.pending = b""
        self.deadline = 0.0

    def recv(self, size: int) -> bytes:
        """Prefetched bytes first, then the socket within what is left of the deadline."""
        if self.pending:
            data, self.pending = self.pending[:size], self.pending[size:]
            return data
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the client did not send its request within the read deadline")
        previous = self.sock.gettimeout()
        self.sock.settimeout(remaining)
        try:
            return self.sock.recv(size)
        finally:
            self.sock.settimeout(previous)

    def __getattr__(self, name: str):
        return getattr(self.sock, name)


# gunicorn's own answers to requests it cannot parse, as codes of our error body
SERVER_ERROR_CODES = {
    400: "syntax_malformed_request", 403: "forbidden", 408: "request_timeout", 414: "uri_too_long",
    417: "expectation_failed", 431: "request_header_fields_too_large", 500: "internal_error",
    501: "not_implemented",
}


def error_answer(status: int, reason: str, text: str) -> bytes:
    """A whole HTTP answer with our error body and a fresh X-Request-ID, for what never reaches the app."""
    request_id = str(uuid.uuid4())
    body = json.dumps({"code": SERVER_ERROR_CODES.get(status, "error"), "text": text,
                       "request_id": request_id}).encode()
    return (b"HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nX-Request-ID: %s\r\n\r\n%s"
            % (status, reason.encode(), len(body), request_id.encode(), body))


def timeout_answer() -> bytes:
    """408 for a client that did not send its request in time, written by the main thread."""
    return error_answer(408, "Request Timeout", "The request was not received in time; send it again.")


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """Stands in for gunicorn.util.write_error (its HTML page): our error body, with X-Request-ID. gunicorn's
    message is not echoed, as it can quote the request line and its URL token; the error log has it, masked."""
    util.write_nonblock(sock, error_answer(status_int, reason, f"{reason}: the server could not read the request."))


class BalancedThreadWorker(ThreadWorker):
    """gunicorn's gthread worker that reads each request whole on its main thread before a thread takes it, and
    takes a new connection only while one of its threads is idle.

    Stock gthread hands a connection to a thread at its first byte and the thread then reads with no deadline:
    eight clients trickling a body one byte every 3 s held all eight threads and stopped intake. Here the main
    thread's selector collects the bytes of every connection as they come, a thread gets only a complete request,
    and a client that has not sent its whole request within REQUEST_READ_SECONDS gets a 408 and is closed.

    Stock gthread also accepts every connection it can, busy or not. Clients that keep connections alive (a load
    balancer, a vendor's HTTP pool, wrk) then often land all on one worker process, which uses one core (the
    GIL) while the others idle: with 2 workers and 32 kept-alive connections, one run in three put all 32 on
    one worker and halved the throughput, and queued requests behind busy threads gave a p99 of 0.7 s. Leaving
    a connection in the listen backlog until some worker has an idle thread hands it to the least busy one.
    """

    in_flight = 0
    # A just-accepted connection that has sent nothing yet counts as a busy thread for this long, so a burst of new
    # connections is shared between the workers; no longer, so clients that connect and stay silent hold back a
    # worker's accepting for at most this long (measured: counting every connection still being read let 58 slow
    # clients in the backlog delay a normal callback by 2.5 s).
    FRESH_SECONDS = 0.1

    def init_process(self) -> None:
        self.reading: dict = {}  # connections whose request is being read, oldest deadline first
        # gunicorn has no setting for the body of its own 400/414/431 answers (an HTML page without X-Request-ID);
        # its handle_error calls util.write_error, which this worker process points at our JSON error body
        util.write_error = write_json_error
        super().init_process()

    def set_accept_enabled(self, enabled: bool) -> None:
        """Listen only when the stock rules allow it and a thread is free (called on the main thread only)."""
        super().set_accept_enabled(enabled and self.in_flight + self._fresh() < self.cfg.threads)

    def _fresh(self) -> int:
        """Connections accepted in the last FRESH_SECONDS that have sent nothing yet."""
        since = time.monotonic() - self.FRESH_SECONDS
        fresh = 0
        for conn in reversed(self.reading):  # newest first; stop at the first old one
            if conn.accepted_at < since:
                break
            fresh += not conn.prefetch
        return fresh

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        """The stock wait, shortened while a fresh connection holds back accepting, so it stops holding on time."""
        if self._fresh():
            timeout = min(timeout, self.FRESH_SECONDS)
        super().wait_for_and_dispatch_events(timeout)
        self._reconsider_accepting()

    def accept(self, listener) -> None:
        """Take a connection and start reading its request on the main thread."""
        if self.cfg.is_ssl:  # TLS is a proxy's job here; keep stock behaviour rather than prefetch ciphertext
            return super().accept(listener)
        try:
            client_sock, client_addr = listener.accept()
        except OSError:  # EAGAIN (another worker took it), ECONNABORTED
            return
        self.nr_conns += 1
        conn = TConn(self.cfg, PrefetchedSocket(client_sock), client_addr, listener.getsockname())
        conn.accepted_at = time.monotonic()
        self._start_reading(conn)
        self._reconsider_accepting()

    def on_client_socket_readable(self, conn, client) -> None:
        """A kept-alive connection has its next request coming: read it whole before a thread takes it."""
        if not isinstance(conn.sock, PrefetchedSocket):
            return super().on_client_socket_readable(conn, client)
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        conn.accepted_at = 0.0  # not a new connection: never holds back accepting
        self._start_reading(conn, readable=True)

    def _start_reading(self, conn, readable: bool = False) -> None:
        """Read the connection's next request on this thread, with a fresh deadline."""
        conn.sock.deadline = time.monotonic() + REQUEST_READ_SECONDS
        conn.prefetch = bytearray(conn.sock.pending)
        conn.sock.pending = b""
        if conn.prefetch and request_complete(conn.prefetch):  # a pipelined request, read with the previous one
            self._hand_over(conn)
            return
        self.reading[conn] = conn.sock.deadline
        if readable:  # bytes are waiting: a kept-alive request usually arrives whole, so no selector round trip
            self._on_request_bytes(conn, conn.sock.sock)
            if conn not in self.reading:
                return
        self.poller.register(conn.sock.sock, selectors.EVENT_READ, partial(self._on_request_bytes, conn))

    def _on_request_bytes(self, conn, client) -> None:
        """Collect what arrived; hand the connection to a thread once its request is complete."""
        try:
            data = client.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away, or half-closed after a partial request (its parser answers that)
            self._stop_reading(conn)
            if conn.prefetch:
                self._hand_over(conn)
            else:
                self.nr_conns -= 1
                conn.close()
            return
        conn.prefetch += data
        if b"100-continue" in conn.prefetch:
            self._continue(conn)
        if request_complete(conn.prefetch) or len(conn.prefetch) > PREFETCH_LIMIT:
            self._stop_reading(conn)
            self._hand_over(conn)
        else:
            self._reconsider_accepting()

    @staticmethod
    def _continue(conn) -> None:
        """Answer `Expect: 100-continue` here: the client holds its body back until it hears 100 (curl for a
        second, .NET's HttpWebRequest 350 ms), and no thread would say it before the body is read. The header is
        taken out of the request so that gunicorn does not send a second 100."""
        head_end = conn.prefetch.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head, count = EXPECT_CONTINUE.subn(b"", bytes(conn.prefetch[:head_end]))
        if count and b" HTTP/1.0\r\n" not in head[:head.find(b"\r\n") + 2]:
            conn.prefetch[:head_end] = head
            with contextlib.suppress(OSError):
                conn.sock.sock.send(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _hand_over(self, conn) -> None:
        """Give a thread the connection, with the bytes read so far in front of its socket."""
        conn.sock.pending = bytes(conn.prefetch)
        conn.prefetch = None
        conn.data_ready = True
        self.enqueue_req(conn)

    def _stop_reading(self, conn) -> None:
        self.reading.pop(conn, None)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock.sock)

    def murder_pending(self) -> None:
        """Also close the connections whose request did not arrive whole in time: 408 if they sent anything."""
        super().murder_pending()
        self._reconsider_accepting()  # fresh connections age
        now = time.monotonic()
        while self.reading:
            conn, deadline = next(iter(self.reading.items()))
            if deadline > now:
                break
            self._stop_reading(conn)
            self.nr_conns -= 1
            if conn.prefetch:
                with contextlib.suppress(OSError):  # non-blocking: a client that does not read gets nothing
                    conn.sock.sock.send(timeout_answer())
            conn.close()

    def enqueue_req(self, conn) -> None:
        """Count the request as in flight; stop listening when every thread has one."""
        self.in_flight += 1
        super().enqueue_req(conn)
        self._reconsider_accepting()

    def finish_request(self, conn, fs) -> None:
        """A thread is free again: listen again if the stock rules allow."""
        self.in_flight -= 1
        super().finish_request(conn, fs)
        if isinstance(conn.sock, PrefetchedSocket) and conn.sock.pending and conn in self.keepalived_conns:
            self.on_client_socket_readable(conn, conn.sock)  # the next request is already read: no wait for bytes
        self._reconsider_accepting()

    def _reconsider_accepting(self) -> None:
        self.set_accept_enabled(self.alive and self.nr_conns < self.worker_connections)


class ReceiverLogger(Logger):
    """gunicorn's logger without its access log: the receiver writes its own JSON line per request (with the
    request id and masked numbers), and gunicorn would otherwise format its access atoms for every request
    even when the line is filtered out."""

    def access(self, resp, req, environ, request_time) -> None:
        """No-op: see the class docstring."""
