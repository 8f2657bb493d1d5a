"""The processors by name, and running several of them in one process (threads) for local use."""

from __future__ import annotations

import logging
import threading

from core.events import (
    TOPIC_DELIVERY_RECEIPTS,
    TOPIC_INBOUND_MESSAGES,
    TOPIC_LINK_CLICKS,
    TOPIC_MESSAGE_STATUS,
    TOPIC_OPT_OUTS,
    TOPIC_SENT_MESSAGES,
    DeliveryReceipt,
    InboundMessage,
    LinkClick,
    SentMessage,
)
from core.settings import Settings
from processors import observability
from processors.clients import KafkaClients
from processors.db.uow import CanonicalId
from processors.domain.delivery import prefetch_sent_messages
from processors.handlers.clicks import handle_click, prefetch_clicks, settle_clicks, sweep_unattributed_clicks
from processors.handlers.opt_outs import handle_inbound_message
from processors.handlers.reconciliation import handle_receipt, settle_parked, sweep_parked
from processors.handlers.sent_messages import handle_sent_message, prefetch_sends, settle_sent_messages
from processors.runtime import Processor, Stats, run

log = logging.getLogger(__name__)

PROCESSORS: dict[str, Processor] = {
    "sent-messages": Processor(
        "sent-messages",
        (TOPIC_SENT_MESSAGES,),
        {SentMessage.ce_type: handle_sent_message},
        (TOPIC_MESSAGE_STATUS,),
        prefetch=prefetch_sends,
        settle=settle_sent_messages,
    ),
    "reconciliation": Processor(
        "reconciliation",
        (TOPIC_DELIVERY_RECEIPTS,),
        {DeliveryReceipt.ce_type: handle_receipt},
        (TOPIC_MESSAGE_STATUS,),
        prefetch=prefetch_sent_messages,
        periodic=sweep_parked,
        settle=settle_parked,
    ),
    "opt-outs": Processor(
        "opt-outs",
        (TOPIC_INBOUND_MESSAGES,),
        {InboundMessage.ce_type: handle_inbound_message},
        (TOPIC_OPT_OUTS,),
    ),
    "clicks": Processor(
        "clicks",
        (TOPIC_LINK_CLICKS,),
        {LinkClick.ce_type: handle_click},
        prefetch=prefetch_clicks,
        periodic=sweep_unattributed_clicks,
        settle=settle_clicks,
    ),
}


def run_processors(
    names: list[str] | tuple[str, ...], settings: Settings, stop_flag: threading.Event, *,
    clients: KafkaClients, canonical_id: CanonicalId,
) -> dict[str, Stats]:
    """Run the named processors (all when empty), one thread each, until `stop_flag` is set.

    The caller hands in the Kafka clients' maker and the vendors' message-id rules (see `smshooks process`).

    If one processor dies of a non-transient error the others are stopped and the error is re-raised.
    Production runs one processor per process (same call, one name); scale up to the partition count.
    """
    unknown = [name for name in names if name not in PROCESSORS]
    if unknown:
        raise ValueError(f"unknown processors {unknown}; known: {sorted(PROCESSORS)}")
    results: dict[str, Stats] = {}
    failures: list[BaseException] = []
    observability.serve_metrics(settings)

    def _target(name: str) -> None:
        try:
            results[name] = run(PROCESSORS[name], settings, stop_flag, clients=clients, canonical_id=canonical_id)
        except BaseException as error:
            log.exception("processor %s died", name)
            failures.append(error)
            stop_flag.set()

    threads = [
        threading.Thread(target=_target, args=(name,), name=f"processor-{name}", daemon=True)
        for name in (names or list(PROCESSORS))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return results
