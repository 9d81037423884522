"""Object identifiers of the PIV profile (FIPS 201-3, SP 800-73-4, SP 800-78-5, FPKI policy).

Dotted strings, so that both `cryptography` (``x509.ObjectIdentifier``) and `asn1crypto`
users can take them as they are.
"""

from __future__ import annotations

#: Federal PKI Common Policy: certificates for the PIV Authentication key (9A).
POLICY_PIV_AUTH = "2.16.840.1.101.3.2.1.3.13"  # id-fpki-common-authentication
#: Federal PKI Common Policy: certificates for the Card Authentication key (9E).
POLICY_CARD_AUTH = "2.16.840.1.101.3.2.1.3.17"  # id-fpki-common-cardAuth
#: Federal PKI Common Policy: hardware-protected certificates (digital signature 9C,
#: key management 9D).
POLICY_HARDWARE = "2.16.840.1.101.3.2.1.3.7"  # id-fpki-common-hardware
#: Federal PKI Common Policy: PIV content signing (CHUID, security object, biometrics).
POLICY_PIV_CONTENT_SIGNING = "2.16.840.1.101.3.2.1.3.39"  # id-fpki-common-piv-contentSigning

#: Extended key usage a content-signing certificate must carry.
EKU_PIV_CONTENT_SIGNING = "2.16.840.1.101.3.6.7"  # id-PIV-content-signing
#: Extended key usage a card-authentication certificate must carry.
EKU_PIV_CARD_AUTH = "2.16.840.1.101.3.6.8"  # id-PIV-cardAuth

#: otherName in subjectAltName holding the 25-byte FASC-N.
SAN_FASCN = "2.16.840.1.101.3.6.6"  # id-PIV-FASC-N

#: eContentType of the CHUID signature (CMS SignedData, detached content).
CONTENT_CHUID = "2.16.840.1.101.3.6.1"  # id-PIV-CHUIDSecurityObject
#: eContentType of the biometric signature block (also used for the security object's
#: LDS content in practice is id-icao-ldsSecurityObject).
CONTENT_BIOMETRIC = "2.16.840.1.101.3.6.2"  # id-PIV-biometricObject
#: ICAO 9303 LDS security object, the eContentType of the PIV security object (5FC106).
CONTENT_LDS_SECURITY_OBJECT = "2.23.136.1.1.1"  # id-icao-ldsSecurityObject
#: The same LDS security object under ICAO's earlier arc (ISO identified-organization 27),
#: which GSA's ICAM test cards and their builder still write as the eContentType.
CONTENT_LDS_SECURITY_OBJECT_ISO = "1.3.27.1.1.1"

#: Extended key usage of a PIV-I content signer (in place of id-PIV-content-signing).
EKU_PIVI_CONTENT_SIGNING = "2.16.840.1.101.3.8.7"  # id-fpki-pivi-content-signing
#: Federal Bridge PIV-I policy for content signing certificates.
POLICY_PIVI_CONTENT_SIGNING = "2.16.840.1.101.3.2.1.3.20"  # id-fpki-certpcy-pivi-contentSigning

#: Signed attributes of the biometric signature block (SP 800-76-2): the signer's DN, the
#: FASC-N, and the card UUID (entryUUID, RFC 4530) of the card it belongs to.
ATTR_PIV_SIGNER_DN = "2.16.840.1.101.3.6.5"  # pivSigner-DN
ATTR_PIV_FASCN = "2.16.840.1.101.3.6.6"  # pivFASC-N
ATTR_ENTRY_UUID = "1.3.6.1.1.16.4"  # entryUUID
