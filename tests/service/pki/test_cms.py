"""The one CMS SignedData verifier behind every signed card object: what it accepts, and
each way a signature block can be wrong refused with the caller's code and words."""

from __future__ import annotations

import pytest
from asn1crypto import cms

from accessd.validation.cms import verify_signed_data
from accessd.validation.errors import ValidationError
from drivers.piv import oids
from simulators.pki import TestPki
from simulators.pki.cms import signed_data


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return TestPki.create("http://127.0.0.1:1")


def _signed(pki: TestPki, content: bytes, *, detached: bool, content_type: str) -> bytes:
    signer = pki.content_signer
    return signed_data(
        content_type=content_type,
        content=content,
        detached=detached,
        signer=signer.cert,
        key=signer.key,
    )


def _refusal(data: bytes, **kwargs: object) -> str:
    options: dict[str, object] = {
        "content_types": {oids.CONTENT_BIOMETRIC},
        "detached": b"record",
        "code": "fingerprints_signature",
        "what": "fingerprints signature",
        **kwargs,
    }
    with pytest.raises(ValidationError) as caught:
        verify_signed_data(data, **options)  # type: ignore[arg-type]
    assert caught.value.code == options["code"]
    assert caught.value.detail.startswith(f"{options['what']} refused: ")
    return caught.value.detail


def test_detached_and_attached_signatures_verify(pki: TestPki) -> None:
    detached = _signed(pki, b"record", detached=True, content_type=oids.CONTENT_BIOMETRIC)
    result = verify_signed_data(
        detached,
        content_types={oids.CONTENT_BIOMETRIC},
        detached=b"record",
        code="fingerprints_signature",
        what="fingerprints signature",
    )
    assert result.signer == pki.content_signer.cert and result.content == b"record"
    assert "1.2.840.113549.1.9.4" in result.attributes  # message digest, as DER
    attached = _signed(pki, b"lds", detached=False, content_type=oids.CONTENT_LDS_SECURITY_OBJECT)
    result = verify_signed_data(
        attached,
        content_types={oids.CONTENT_LDS_SECURITY_OBJECT},
        detached=None,
        code="security_object_signature",
        what="security object signature",
    )
    assert result.content == b"lds"


def test_other_content_is_refused_by_its_digest(pki: TestPki) -> None:
    data = _signed(pki, b"record", detached=True, content_type=oids.CONTENT_BIOMETRIC)
    assert "message digest" in _refusal(data, detached=b"other record")


def test_another_content_type_is_refused(pki: TestPki) -> None:
    data = _signed(pki, b"record", detached=True, content_type=oids.CONTENT_CHUID)
    assert "eContentType" in _refusal(data)


def test_attached_content_where_detached_is_expected_is_refused(pki: TestPki) -> None:
    data = _signed(pki, b"record", detached=False, content_type=oids.CONTENT_BIOMETRIC)
    assert "attached" in _refusal(data)
    detached = _signed(pki, b"lds", detached=True, content_type=oids.CONTENT_BIOMETRIC)
    assert "no encapsulated content" in _refusal(detached, detached=None)


def test_a_signer_left_out_is_found_among_the_known_signers_only(pki: TestPki) -> None:
    info = cms.ContentInfo.load(
        _signed(pki, b"record", detached=True, content_type=oids.CONTENT_BIOMETRIC)
    )
    info["content"]["certificates"] = []
    bare = info.dump(force=True)
    assert "neither in the CMS" in _refusal(bare)
    result = verify_signed_data(
        bare,
        content_types={oids.CONTENT_BIOMETRIC},
        detached=b"record",
        known_signers=[pki.other_content_signer.cert, pki.content_signer.cert],
        code="fingerprints_signature",
        what="fingerprints signature",
    )
    assert result.signer == pki.content_signer.cert


def test_a_broken_signature_is_refused(pki: TestPki) -> None:
    info = cms.ContentInfo.load(
        _signed(pki, b"record", detached=True, content_type=oids.CONTENT_BIOMETRIC)
    )
    signer_info = info["content"]["signer_infos"][0]
    signature = bytearray(signer_info["signature"].native)
    signature[-1] ^= 1
    signer_info["signature"] = bytes(signature)
    assert "does not verify" in _refusal(info.dump(force=True))


def test_sha1_and_garbage_are_refused(pki: TestPki) -> None:
    info = cms.ContentInfo.load(
        _signed(pki, b"record", detached=True, content_type=oids.CONTENT_BIOMETRIC)
    )
    info["content"]["signer_infos"][0]["digest_algorithm"] = {"algorithm": "sha1"}
    assert "sha1 is not allowed" in _refusal(info.dump(force=True))
    assert "does not parse" in _refusal(b"\x30\x03\x02\x01\x00")
