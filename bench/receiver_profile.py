"""Receiver per-request cost in process, by stage: where our path spends its CPU beside the bare reference.

No gunicorn and no Kafka: both apps are called straight through WSGI with the same signed generic delivery receipt
as bench/receiver.py, the receiver with a publisher that acknowledges at once (a subclass of the real publisher
interface), behind the spooling publisher as production runs it. Each stage is then timed on its own with the
values a real request produces. Every figure is the minimum over many rounds of many calls, rounds alternating,
so a slow spell of the shared machine does not land on one side. Not a timed test: a measuring tool.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WORK = Path(tempfile.mkdtemp(prefix="smshooks-profile-"))
# what gunicorn runs with (docker/gunicorn.conf.py makes a private directory when unset): metrics in shared files
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(WORK / "metrics")
(WORK / "metrics").mkdir()

from bench.receiver import PAYLOAD, SECRET, signed_headers  # noqa: E402

CONFIG = WORK / "profile.toml"
CONFIG.write_text(
    'rate_limit_per_vendor = "1000000/second"\nrate_limit_per_source = "1000000/second"\nlog_level = "WARNING"\n'
    f'data_dir = "{WORK}"\n'
    f'[vendors.generic]\nauth = [{{ scheme = "standard_webhooks", secret = "whsec_{SECRET}", '
    'tolerance_seconds = 86400 }]\n')
os.environ["SMSHOOKS_CONFIG"] = str(CONFIG)

from werkzeug.test import EnvironBuilder  # noqa: E402

from receiver.publisher import Publisher, Record  # noqa: E402


class AckingPublisher(Publisher):
    """The publisher interface with a Kafka that acknowledges every record at once."""

    def __init__(self, settings):
        self.settings = settings
        self.records = 0

    def _send_and_wait(self, records: list[Record]) -> None:
        self.records += len(records)

    def ready(self) -> bool:
        return True

    def close(self) -> None:
        pass


PATH = "/v1/callbacks/generic/delivery-receipts"


def environ() -> dict[str, Any]:
    """The WSGI environ of the bench's request (its body stream is replaced per call)."""
    builder = EnvironBuilder(path=PATH, method="POST", data=PAYLOAD.encode(), headers=signed_headers())
    env = builder.get_environ()
    env["REMOTE_ADDR"] = "127.0.0.1"
    return env


def caller(app, env: dict[str, Any]) -> Callable[[], None]:
    """One request through the app's WSGI callable, its answer read, as gunicorn would."""
    body = PAYLOAD.encode()
    statuses = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    def call() -> None:
        request_env = dict(env)
        request_env["wsgi.input"] = io.BytesIO(body)
        for _ in app(request_env, start_response):
            pass

    call()
    if not statuses[-1].startswith("200"):
        raise RuntimeError(f"{app} answered {statuses[-1]}")
    return call


def best_us(functions: dict[str, Callable[[], Any]], rounds: int, calls: int) -> dict[str, float]:
    """CPU µs per call of each function (this thread's CPU time: other processes' load does not count): minimum
    over `rounds` alternating rounds of `calls` calls."""
    best = {name: float("inf") for name in functions}
    for _ in range(rounds):
        for name, function in functions.items():
            started = time.thread_time()
            for _ in range(calls):
                function()
            best[name] = min(best[name], (time.thread_time() - started) / calls * 1e6)
    return best


def build():
    """The receiver (spooling publisher over an acking fake), the plain-publisher variant, and the reference."""
    import dataclasses

    from bench import reference_app
    from core.settings import load_settings
    from receiver import create_app
    from receiver.spool import Spool
    from receiver.spooling import SpoolingPublisher

    settings = load_settings()
    quick = dataclasses.replace(settings, publish_timeout_seconds=settings.spool_after_seconds)
    spooling = SpoolingPublisher(settings, AckingPublisher(quick), AckingPublisher(settings),
                                 Spool(settings.effective_spool_path, settings.spool_max_bytes,
                                       settings.spool_max_age_seconds))
    receiver = create_app({"settings": settings, "publisher": spooling})
    plain = create_app({"settings": settings, "publisher": AckingPublisher(settings)})
    logging.getLogger().handlers[:] = []  # configure_logging's stderr handler; the request log is timed below
    return receiver, plain, reference_app.app, settings


def stages(receiver, settings) -> dict[str, Callable[[], Any]]:
    """Each stage of the view on its own, fed with what the bench's request produces."""
    from flask import g
    from smshooks.logs import json_handler

    from core.events import utc_now
    from receiver import observability, views
    from receiver.auth import authenticate, parse_query
    from receiver.parsing import parse_body
    from receiver.vendors.base import CallbackContext, shared_schema
    from receiver.vendors.generic import ReceiptSchema

    env = environ()
    body = PAYLOAD.encode()
    adapter = receiver.extensions["smshooks.adapters"]["generic"]
    spec = adapter.kinds["delivery-receipts"]
    schemes = settings.vendor("generic").auth
    limiter = receiver.extensions["smshooks.rate_limiter"]
    publisher = receiver.extensions["smshooks.publisher"]
    document = parse_body("json", body, "application/json", b"")
    schema = shared_schema(ReceiptSchema)
    ctx = CallbackContext(vendor="generic", kind="delivery-receipts", request_id="0" * 36, received_at=utc_now(),
                          method="POST", payload_format="json", signature_valid=True)
    payloads = views.normalize(spec, document, ctx)
    envelopes = views.events_from(spec, body, "application/json", b"", ctx)
    from werkzeug.wrappers import Request

    def signature() -> None:
        req = Request(dict(env, **{"wsgi.input": io.BytesIO(body)}))
        authenticate(schemes, views._callback_request(req, settings, body, parse_query(b""), None, "json", schemes))

    def records() -> None:
        from core.events import Envelope, topic_name

        for p in payloads:
            e = Envelope.wrap(p, "0" * 36)
            (topic_name(settings.topic_prefix, e.topic), e.key.encode(), e.headers(), e.value())

    def metrics() -> None:
        observability.child(observability.CALLBACKS, "generic", "delivery-receipts", "200").inc()
        observability.child(observability.REQUEST_SECONDS, "generic", "delivery-receipts").observe(0.001)
        observability.child(observability.CALLBACK_EVENTS, "generic", "delivery-receipts").inc(1)
        observability.child(observability.PUBLISH_SECONDS, "ok").observe(0.001)

    request_log = logging.getLogger("smshooks.requests.profile")
    handler = json_handler(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the script
    request_log.addHandler(handler)
    request_log.propagate = False
    request_log.setLevel(logging.INFO)  # production level; the bench config logs warnings only

    def log_line() -> None:
        request_log.info("request", extra={
            "method": "POST", "path": PATH, "status": 200, "duration_ms": 1.23, "vendor": "generic",
            "kind": "delivery-receipts", "event_count": 1, "request_id": "0" * 36})

    def request_object() -> None:
        Request(dict(env, **{"wsgi.input": io.BytesIO(body)}))

    with receiver.test_request_context(PATH, method="POST"):
        g.request_id = "0" * 36
        spool_wrapper = best_us({"spooling": lambda: publisher.publish(envelopes),
                                 "direct": lambda: publisher.direct.publish(envelopes)}, 20, 500)
    return {
        "rate limit": lambda: limiter.check("generic", "127.0.0.1"),
        "signature (+ werkzeug Request)": signature,
        "  werkzeug Request alone": request_object,
        "strict JSON parse": lambda: parse_body("json", body, "application/json", b""),
        "marshmallow validation": lambda: schema.load(document),
        "normalize (incl. validation)": lambda: views.normalize(spec, document, ctx),
        "envelope + CloudEvent record": records,
        "metrics (4 series)": metrics,
        "request log line (INFO, JSON)": log_line,
        "_spool_wrapper": lambda: spool_wrapper["spooling"] - spool_wrapper["direct"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--cprofile", type=int, default=0, metavar="N",
                        help="also print the top N functions of a cProfile of the receiver's requests")
    args = parser.parse_args()
    receiver, plain, reference, settings = build()
    env = environ()
    whole = best_us({"reference": caller(reference, env), "receiver": caller(receiver, env),
                     "receiver, plain publisher": caller(plain, env)}, args.rounds, args.calls)
    functions = stages(receiver, settings)
    spool = functions.pop("_spool_wrapper")()
    parts = best_us(functions, max(5, args.rounds // 3), args.calls)
    print(f"in process, CPU µs per request (min of {args.rounds} alternating rounds of {args.calls} calls)")
    for name, value in whole.items():
        print(f"  {name:32} {value:7.1f}")
    print(f"  {'reference / receiver':32} {whole['reference'] / whole['receiver']:7.3f}")
    print(f"  {'receiver - reference':32} {whole['receiver'] - whole['reference']:7.1f}")
    print("stages, µs per call")
    for name, value in parts.items():
        print(f"  {name:32} {value:7.1f}")
    print(f"  {'spool wrapper (stat per request)':32} {spool:7.1f}")
    if args.cprofile:
        call = caller(receiver, env)
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(2000):
            call()
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(args.cprofile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
