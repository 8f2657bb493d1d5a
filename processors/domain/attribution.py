"""Attribution: tie link clicks to their sent message and campaign, whichever of the two arrived first."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select, update

from processors.db.chunks import among, in_chunks
from processors.db.models import Click, SentMessage
from processors.db.uow import UnitOfWork
from processors.domain import aggregates
from processors.domain.delivery import sent_message_by_id


def attribute_earlier_clicks(uow: UnitOfWork, sent: SentMessage) -> None:
    """Clicks can be consumed before their sent message (another topic): attribute them when it arrives."""
    if sent.id is None:
        uow.session.flush()  # a send of this unit not inserted yet: the UPDATE below needs its id
    attributed = uow.session.execute(
        update(Click)
        .where(Click.vendor == sent.vendor, Click.message_id == sent.message_id, Click.sent_message_id.is_(None))
        .values(sent_message_id=sent.id, campaign_id=sent.campaign_id, batch_id=sent.batch_id)
        .execution_options(synchronize_session=False)
    ).rowcount
    if attributed:  # rare: clicks before their send; a concurrent attribution of the same clicks updates none
        total = uow.session.scalar(select(func.count()).where(Click.sent_message_id == sent.id))
        aggregates.record_clicks(uow, sent, attributed, first=total == attributed)



def attribute_clicks_of(uow: UnitOfWork, sent: SentMessage) -> None:
    """attribute_earlier_clicks for a send being stored: at once without a batch prefetch; with one, only if it
    found clicks waiting, and at commit (its UPDATE needs the new sent message inserted, see UnitOfWork.defer)."""
    if uow.waiting_clicks is None:
        attribute_earlier_clicks(uow, sent)
    elif (sent.vendor, sent.message_id) in uow.waiting_clicks:
        uow.defer(lambda: attribute_earlier_clicks(uow, sent))


def attribute_waiting_clicks(uow: UnitOfWork, keys: Iterable[tuple[str, str]]) -> int:
    """Attribute the clicks of each (vendor, message id) whose sent message exists by now; returns how many did."""
    attributed = 0
    for vendor, message_id in keys:
        sent = sent_message_by_id(uow.session, vendor, message_id)
        if sent is not None:
            attribute_earlier_clicks(uow, sent)
            attributed += 1
    return attributed


def clicks_waiting_for(uow: UnitOfWork, keys: dict[str, dict[str, set]]) -> list[tuple[str, str]]:
    """(vendor, message id) of unattributed clicks on these sent messages (keys as in domain.parked.stored_keys)."""
    waiting: set[tuple[str, str]] = set()
    for vendor, wanted in keys.items():
        for chunk in in_chunks(wanted["message_id"]):
            statement = select(Click.message_id).where(
                Click.vendor == vendor, among(uow.session, Click.message_id, chunk), Click.sent_message_id.is_(None)
            )
            waiting.update((vendor, message_id) for message_id in uow.session.scalars(statement))
    return sorted(waiting)
