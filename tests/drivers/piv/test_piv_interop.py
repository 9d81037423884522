"""Real PIV middleware reads and uses the virtual PIV card: OpenSC and yubico-piv-tool.

The card sits in vpcd's first reader; the tools talk to it through pcscd. Signatures made
through the tools must verify with `cryptography` against the card's certificates.
Skipped, saying why, when pcscd/vpcd or a tool is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from drivers.errors import PcscError
from drivers.piv import objects
from drivers.piv.challenge import verify_challenge
from simulators.piv_card import PivReaderSlot, VirtualPivCard
from simulators.pki import Algorithm, CardMaterial, TestPki
from tests.drivers.piv.test_piv_vpcd import PCSCD_IDLE_POWER_OFF, port_listening

try:
    from drivers.pcsc import PcscTransport
except ImportError:  # pragma: no cover - the pcsc extra is not installed
    PcscTransport = None  # type: ignore[assignment,misc]

READER = "Virtual PCD 00 00"
PORT = 35963
PIN = "123456"
NONCE = b"interop nonce \xff\x00"
TOOL_TIMEOUT = 60.0
VPCD_SETTLE = 0.6
OPENSC_PKCS11 = next(
    (
        p
        for p in (
            "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
            "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so",
            "/usr/lib/opensc-pkcs11.so",
            "/usr/lib64/opensc-pkcs11.so",
        )
        if Path(p).exists()
    ),
    None,
)
# OpenSC's PIV emulation numbers the objects 01 (9A), 02 (9C), 03 (9D), 04 (9E).
PKCS11_ID = {"9a": "01", "9c": "02", "9d": "03", "9e": "04"}
MECHANISM = {"rsa2048": "SHA256-RSA-PKCS", "p256": "ECDSA-SHA256", "p384": "ECDSA-SHA384"}


def _vpcd_missing() -> str | None:
    if PcscTransport is None:
        return "pyscard is not installed (pip install .[pcsc])"
    if not port_listening(PORT):
        return f"vpcd is not listening on 127.0.0.1:{PORT} (run tests/services.sh)"
    return None


_VPCD = _vpcd_missing()
pytestmark = [pytest.mark.vpcd, pytest.mark.skipif(_VPCD is not None, reason=_VPCD or "")]


def needs(tool: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(shutil.which(tool) is None, reason=f"{tool} is not installed")


needs_pkcs11 = pytest.mark.skipif(OPENSC_PKCS11 is None, reason="opensc-pkcs11.so not found")


async def run(*argv: str, stdin: bytes = b"") -> tuple[int, str]:
    """Run a tool; its exit code and stdout+stderr as text."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(stdin), TOOL_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return process.returncode or 0, out.decode(errors="replace")


async def card_present() -> None:
    """Wait until pcscd has noticed the card, so a tool started now finds it."""
    await asyncio.sleep(PCSCD_IDLE_POWER_OFF)
    deadline = time.monotonic() + 10
    while True:
        try:
            transport = await PcscTransport.connect(READER)
        except PcscError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
        else:
            await transport.close()
            return


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return TestPki.create()


@contextlib.asynccontextmanager
async def inserted(material: CardMaterial) -> AsyncIterator[VirtualPivCard]:
    virtual = VirtualPivCard(material)
    slot = PivReaderSlot(PORT, virtual)
    await slot.insert()
    await card_present()
    try:
        yield virtual
    finally:
        await slot.remove()
        await asyncio.sleep(VPCD_SETTLE)


@pytest.fixture(scope="module")
def mixed(pki: TestPki) -> CardMaterial:
    return pki.issue_card(
        algorithms={"9a": "rsa2048", "9c": "p384", "9d": "p256", "9e": "p256"}, pin=PIN
    )


@pytest.fixture
async def card(mixed: CardMaterial) -> AsyncIterator[VirtualPivCard]:
    async with inserted(mixed) as virtual:
        yield virtual


def pem(material: CardMaterial, slot: str) -> bytes:
    return material.certificates[slot].public_bytes(serialization.Encoding.PEM)


@needs("opensc-tool")
async def test_opensc_names_it_a_piv_card(card: VirtualPivCard) -> None:
    code, out = await run("opensc-tool", "--reader", READER, "--name")
    assert code == 0, out
    assert "Personal Identity Verification Card" in out


@needs("pkcs15-tool")
async def test_pkcs15_tool_lists_and_reads_the_certificates(
    card: VirtualPivCard, mixed: CardMaterial
) -> None:
    code, out = await run("pkcs15-tool", "--reader", READER, "--dump")
    assert code == 0, out
    for label in (
        "Certificate for PIV Authentication",
        "Certificate for Digital Signature",
        "Certificate for Key Management",
        "Certificate for Card Authentication",
    ):
        assert f"X.509 Certificate [{label}]" in out
    code, out = await run("pkcs15-tool", "--reader", READER, "--read-certificate", "01")
    assert code == 0, out
    assert pem(mixed, "9a").decode().strip() in out


@needs("yubico-piv-tool")
async def test_yubico_piv_tool_reads_the_status(card: VirtualPivCard, mixed: CardMaterial) -> None:
    code, out = await run("yubico-piv-tool", "--reader", "Virtual PCD", "--action", "status")
    assert code == 0, out
    chuid_content = objects.tlv.decode_one(mixed.chuid).value
    assert f"CHUID:\t{chuid_content.hex()}" in out
    assert "PIN tries left:\t3" in out
    for slot, algorithm in (("9a", "RSA2048"), ("9c", "ECCP384"), ("9d", "ECCP256")):
        assert f"Slot {slot}:\t\n\tAlgorithm:\t{algorithm}" in out


@needs("yubico-piv-tool")
async def test_yubico_piv_tool_wrong_pin_counts_down(card: VirtualPivCard) -> None:
    code, out = await run(
        "yubico-piv-tool", "--reader", "Virtual PCD", "-a", "verify-pin", "-P", "000000"
    )
    assert code != 0
    assert "2 tries left" in out
    assert card.pin_tries == 2


@needs("yubico-piv-tool")
@pytest.mark.parametrize(("slot", "algorithm"), [("9a", "rsa2048"), ("9a", "p384"), ("9e", "p256")])
async def test_yubico_piv_tool_test_signature(
    pki: TestPki, slot: str, algorithm: Algorithm
) -> None:
    material = pki.issue_card(algorithms={slot: algorithm}, pin=PIN)
    async with inserted(material) as virtual:
        argv = ["yubico-piv-tool", "--reader", "Virtual PCD"]
        if slot != "9e":
            argv += ["-a", "verify-pin", "-P", PIN]
        code, out = await run(*argv, "-a", "test-signature", "-s", slot, stdin=pem(material, slot))
        assert code == 0, out
        assert "verification" in out and "Successful" in out
        assert virtual.operations == 1


@needs("pkcs11-tool")
@needs_pkcs11
@pytest.mark.parametrize(
    ("slot", "algorithm"),
    [
        ("9a", "rsa2048"),
        ("9a", "p256"),
        ("9a", "p384"),
        ("9e", "rsa2048"),
        ("9e", "p256"),
        ("9e", "p384"),
    ],
)
async def test_pkcs11_signatures_verify(
    pki: TestPki, tmp_path: Path, slot: str, algorithm: Algorithm
) -> None:
    material = pki.issue_card(algorithms={slot: algorithm}, pin=PIN)
    message, signature = tmp_path / "nonce", tmp_path / "signature"
    message.write_bytes(NONCE)
    assert OPENSC_PKCS11 is not None
    async with inserted(material) as virtual:
        # pkcs11-tool logs in whenever the token has a PIN, even for the 9E key.
        code, out = await run(
            "pkcs11-tool",
            "--module",
            OPENSC_PKCS11,
            "--login",
            "--pin",
            PIN,
            "--sign",
            "--id",
            PKCS11_ID[slot],
            "--mechanism",
            MECHANISM[algorithm],
            "--signature-format",
            "openssl",
            "--input-file",
            str(message),
            "--output-file",
            str(signature),
        )
        assert code == 0, out
        assert virtual.operations == 1
    verify_challenge(material.certificates[slot], NONCE, signature.read_bytes())


@needs("pkcs11-tool")
@needs_pkcs11
async def test_pkcs11_login_with_a_wrong_pin_is_refused(card: VirtualPivCard) -> None:
    assert OPENSC_PKCS11 is not None
    code, out = await run(
        "pkcs11-tool", "--module", OPENSC_PKCS11, "--login", "--pin", "000000", "--list-objects"
    )
    assert code != 0
    assert "CKR_PIN_INCORRECT" in out
    assert card.pin_tries == 2
