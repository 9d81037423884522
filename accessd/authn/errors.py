"""Why presented authentication evidence was not accepted; ``code`` is machine-readable.

AuthnError (an AccessdError, 422 when it reaches HTTP)
├── ChallengeRejected   malformed, forged, expired, replayed, wrong reader
└── ProofRejected       bad signature, certificate refused, card/credential mismatch, bio
"""

from __future__ import annotations

from accessd.errors import AccessdError


class AuthnError(AccessdError):
    status = 422
    title = "Authentication evidence rejected"
    code = "authentication_failed"


class ChallengeRejected(AuthnError):
    code = "challenge_rejected"


class ProofRejected(AuthnError):
    code = "proof_rejected"
