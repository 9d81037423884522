"""Why an enrollment station refused a card."""

from __future__ import annotations

from accessd.errors import AccessdError


class CardRefused(AccessdError):
    """The card failed a check; ``code`` names which (expired, revoked, untrusted, …)."""

    status = 422
    title = "Card refused"
    code = "card_refused"
