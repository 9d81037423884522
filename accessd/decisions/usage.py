"""Whether the door used a decision: the panel's access event names the request it asked
(``data.request``) and says whether it decided offline; a decision answered after the
panel's timeout is then marked unused (``used`` False), one the door acted on used.

Both rows arrive on their own schedule (decisions in batches, events uploaded when the
panel can), so the marking is one idempotent statement a pass, run over a recent window
rather than following either stream: whichever row comes second, the next pass matches it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from accessd.models import DecisionEvent, PanelEvent

#: How far back a pass looks: a panel's backlog uploaded after a long outage is still
#: matched when it arrives within this of the decision.
WINDOW = timedelta(hours=24)


async def mark_usage(session: AsyncSession, now: datetime, window: timedelta = WINDOW) -> int:
    """Marks the recent decisions whose access event has arrived; returns rows marked."""
    since = now - window
    request = PanelEvent.data["request"].as_string()
    offline = PanelEvent.data["offline"].as_boolean()
    marked = 0
    for used in (True, False):
        named = select(request).where(
            PanelEvent.type == "access",
            PanelEvent.received_at >= since,
            request.is_not(None),
            offline.is_(not used),
        )
        result = await session.execute(
            update(DecisionEvent)
            .where(
                and_(
                    DecisionEvent.used.is_(None),
                    DecisionEvent.request_id.is_not(None),
                    DecisionEvent.at >= since,
                    DecisionEvent.request_id.in_(named),
                )
            )
            .values(used=used)
            .execution_options(synchronize_session=False)
        )
        marked += int(getattr(result, "rowcount", 0) or 0)
    await session.commit()
    return marked
