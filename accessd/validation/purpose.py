"""What a certificate is being validated for: the policies and usages each PIV key needs."""

from __future__ import annotations

from dataclasses import dataclass, field

from drivers.piv import oids

ANY_POLICY = "any_policy"


@dataclass(frozen=True, slots=True)
class Purpose:
    """Policy and usage requirements; hashable, so it is part of the result-cache key.

    `policies` is RFC 5280's user-initial-policy-set (``{"any_policy"}`` accepts any);
    the three flags are its initial-explicit-policy, -policy-mapping-inhibit and
    -any-policy-inhibit inputs. `key_usage` names are asn1crypto's (``digital_signature``).
    """

    name: str
    policies: frozenset[str] = frozenset({ANY_POLICY})
    explicit_policy: bool = True
    policy_mapping_inhibit: bool = False
    any_policy_inhibit: bool = False
    key_usage: frozenset[str] = field(default_factory=frozenset)
    extended_key_usage: str | None = None


#: The 9A key: PIV Authentication certificate under id-fpki-common-authentication.
PIV_AUTH = Purpose(
    "piv_auth",
    policies=frozenset({oids.POLICY_PIV_AUTH}),
    key_usage=frozenset({"digital_signature"}),
)
#: The 9E key: Card Authentication certificate; FPKI profile demands EKU id-PIV-cardAuth.
CARD_AUTH = Purpose(
    "card_auth",
    policies=frozenset({oids.POLICY_CARD_AUTH}),
    key_usage=frozenset({"digital_signature"}),
    extended_key_usage=oids.EKU_PIV_CARD_AUTH,
)
#: The issuer's signer of the CHUID and security object (id-PIV-content-signing EKU).
CONTENT_SIGNING = Purpose(
    "content_signing",
    policies=frozenset({oids.POLICY_PIV_CONTENT_SIGNING}),
    key_usage=frozenset({"digital_signature"}),
    extended_key_usage=oids.EKU_PIV_CONTENT_SIGNING,
)
#: A PIV-I issuer's content signer: the PIV-I content-signing EKU and policy instead.
CONTENT_SIGNING_PIV_I = Purpose(
    "content_signing_piv_i",
    policies=frozenset({oids.POLICY_PIVI_CONTENT_SIGNING}),
    key_usage=frozenset({"digital_signature"}),
    extended_key_usage=oids.EKU_PIVI_CONTENT_SIGNING,
)
