"""drivers.osdp.secure: the OSDP secure channel, checked against the spec's and libosdp's
vectors and a recorded libosdp session, and between two of its own ends."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from drivers.errors import DriverError
from drivers.osdp.codes import Command, Reply, SecurityBlock
from drivers.osdp.frame import Frame, FrameDecoder, crc16, encode
from drivers.osdp.secure import (
    SCBK_D,
    BadMac,
    BadPadding,
    CryptogramMismatch,
    HandshakeError,
    NotEstablished,
    Phase,
    SecureChannel,
    SecureChannelError,
    SessionKeys,
    Side,
    WrongSecurityBlock,
    client_cryptogram,
    compute_mac,
    decrypt_data,
    derive_session_keys,
    encrypt_data,
    initial_rmac,
    server_cryptogram,
)

h = bytes.fromhex

# SIA OSDP 2.2 Annex E ("Examples") secure channel vectors, as transcribed in goToMain/libosdp
# tests/unit-tests/test-sc-sia-vectors.c: SCBK-D, RND.A (the ACU's) B0..B7, RND.B A0..A7.
RND_A = h("B0B1B2B3B4B5B6B7")
RND_B = h("A0A1A2A3A4A5A6A7")
ANNEX_E_S_ENC = h("BF8DC2A8329ACB8C67C6D0CD9A451682")
ANNEX_E_S_MAC1 = h("5E86C676603BDEE2D8BEAFE178637332")
ANNEX_E_S_MAC2 = h("6FDA86E857777E81132035758239172E")
ANNEX_E_CLIENT_CRYPTOGRAM = h("FDE5D2F428EC16312471EA3C02BD7796")
ANNEX_E_SERVER_CRYPTOGRAM = h("26D3356E07762D262801FC8E6665A891")
ANNEX_E_RMAC_I = h("B2A30057EB98BA2229EC1F875662B524")

# NIST SP 800-38A F.2.1 (AES-128-CBC) and the OSDP padding vectors derived from it, as used
# by goToMain/libosdp tests/unit-tests/test-sc.c (there S-MAC1 = S-MAC2 = S-ENC = the key).
NIST_KEY = h("2b7e151628aed2a6abf7158809cf4f3c")
NIST_IV = h("000102030405060708090a0b0c0d0e0f")
NIST_PLAIN = h(
    "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"
)
NIST_CBC_FIRST = h("7649abac8119b246cee98e9b12e9197d")
NIST_CBC_LAST = h("3ff1caa1681fac09120eca307586e1a7")
OSDP_15 = bytes(range(15))
OSDP_15_CIPHER = h("c5311f3d23d086ea86f5ee7f85247b40")
OSDP_16 = bytes(range(16))
OSDP_16_CIPHER = h("7df76b0c1ab899b33e42f047b91b546fe2fe5bd6c1dfcdd19124f03e1a134d3b")
OSDP_0_CIPHER = h("4c08220c79d9191022dc6674874ceaf8")

# A session between libosdp 3.2.9's CP and PD (PyPI `libosdp`, both sides in one process over
# an in-memory channel, PD address 101), every byte each side wrote, from osdp_CHLNG on. The
# commands: osdp_POLL, and osdp_BUZ 00 01 0A 0A 03 (encrypted); the PD answers osdp_ACK, and
# osdp_RAW 00 00 0020 12345678 (encrypted) once a card is read.
LIBOSDP_SCBK = bytes(range(0xA0, 0xB0))
LIBOSDP_SESSION = [
    ("cp", "ff536513000e03110176d764c8cce93255c4f105"),
    (
        "pd",
        "53e52b000e03120176beba0100afbeadde478d7aa05d83f3eaa5d26d512dfe10467d71154a123869e8f230",
    ),
    ("cp", "ff53651b000f03130177f3d1d469307e6164662a3ec429c2031963fa"),
    ("pd", "53e51b000f03140178b7688c250efb70d746e5a39a21fdc5086a9c"),
    ("cp", "ff53650e000d021560a7159dddc109"),
    ("pd", "53e50e000d021640e3d440447e82"),
    ("cp", "ff53650e000e021560302c752d367b"),
    ("pd", "53e50e000e021640654b5c592061"),
    ("cp", "ff53650e000f0215609e75bb2b0be1"),
    ("pd", "53e50e000f02164027b10cb6ea83"),
    ("cp", "ff53651e000d02176a0675c990d968827d9bcae093dab1a5d1212f4fb2df58"),
    ("pd", "53e50e000d021640236271e689de"),
    ("cp", "ff53650e000e02156061a205f6ad2a"),
    ("pd", "53e50e000e021640ed67405b20ac"),
    ("cp", "ff53650e000f021560ab0ac777d353"),
    ("pd", "53e50e000f021640d6e8e979a86d"),
    ("cp", "ff53650e000d021560afade94c598c"),
    ("pd", "53e50e000d021640b7115c38b609"),
    ("cp", "ff53650e000e021560a260d170ef62"),
    ("pd", "53e51e000e021850fceea9ae23ce1bb38e1e6e8a169b680ffe12ec8ac46c"),
]
# The same pair with the PD in install mode (no SCBK): libosdp's CP falls back to SCBK-D (key
# number 0x00) and sends osdp_KEYSET 01 10 <LIBOSDP_SCBK> (encrypted), which the PD acknowledges.
LIBOSDP_INSTALL_SESSION = [
    ("cp", "ff536513000f03110076d764c8cce93255c4d72f"),
    (
        "pd",
        "53e52b000f03120076beba0100afbeaddea2b7249b043e23cdf60110c08df8108f2a83408a264d2e155294",
    ),
    ("cp", "ff53651b000d031300778d69886eb402aa208ecb77ed26c4f46e51f7"),
    ("pd", "53e51b000d031401781c00198d0eecef11a4c71e0e2c596b803ff9"),
    (
        "cp",
        "ff53652e000e0217751f481843bfc4c14826c48a1e625a443e907bb179890"
        "52d38227b21d367a1335756e42dd1e95d",
    ),
    ("pd", "53e50e000e021640992234c75154"),
]

KEY = bytes(range(0x40, 0x50))
OTHER_KEY = bytes(range(0x50, 0x60))
CUID = h("0102030405060708")
ADDR = 5


def fixed(value: bytes) -> Callable[[int], bytes]:
    """A random source that always answers ``value`` (and checks the size asked for)."""

    def source(size: int) -> bytes:
        assert size == len(value)
        return value

    return source


def channels(
    cp_key: bytes = KEY, pd_key: bytes | None = KEY, *, install_mode: bool = False
) -> tuple[SecureChannel, SecureChannel]:
    cp = SecureChannel.for_cp(cp_key, random=fixed(RND_A))
    pd = SecureChannel.for_pd(
        pd_key,
        cuid=CUID,
        install_mode=install_mode,
        random=fixed(RND_B),
    )
    return cp, pd


def handshake(cp: SecureChannel, pd: SecureChannel) -> None:
    ccrypt = pd.accept_challenge(cp.challenge().frame(ADDR, 1)).frame(ADDR, 1)
    rmac_i = pd.accept_scrypt(cp.accept_ccrypt(ccrypt).frame(ADDR, 2)).frame(ADDR, 2)
    cp.accept_rmac_i(rmac_i)


def established(cp_key: bytes = KEY) -> tuple[SecureChannel, SecureChannel]:
    cp, pd = channels(cp_key)
    handshake(cp, pd)
    return cp, pd


def over_the_wire(frame: Frame, *, mark: bool = True) -> Frame:
    (back,) = FrameDecoder().feed(encode(frame, mark=mark))
    return back


def command(code: int = Command.LED, data: bytes = b"", sequence: int = 1) -> Frame:
    return Frame(address=ADDR, code=code, data=data, sequence=sequence)


def complement(value: bytes) -> bytes:
    return bytes(b ^ 0xFF for b in value)


def cbc(key: bytes, iv: bytes, data: bytes) -> bytes:
    """Plain AES-CBC, to build ciphertexts the channel would never send."""
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def reply(code: int = Reply.ACK, data: bytes = b"", sequence: int = 1) -> Frame:
    return Frame(address=ADDR, code=code, data=data, sequence=sequence, reply=True)


# Known answers.


def test_session_keys_match_annex_e() -> None:
    keys = derive_session_keys(SCBK_D, RND_A)
    assert (keys.enc, keys.mac1, keys.mac2) == (ANNEX_E_S_ENC, ANNEX_E_S_MAC1, ANNEX_E_S_MAC2)


def test_cryptograms_and_initial_rmac_match_annex_e() -> None:
    keys = derive_session_keys(SCBK_D, RND_A)
    assert client_cryptogram(keys, RND_A, RND_B) == ANNEX_E_CLIENT_CRYPTOGRAM
    assert server_cryptogram(keys, RND_A, RND_B) == ANNEX_E_SERVER_CRYPTOGRAM
    assert initial_rmac(keys, ANNEX_E_SERVER_CRYPTOGRAM) == ANNEX_E_RMAC_I


def test_a_handshake_on_scbk_d_carries_the_annex_e_values() -> None:
    cp, pd = channels(SCBK_D, None, install_mode=True)
    chlng = cp.challenge()
    assert chlng.data == RND_A and chlng.scb == bytes((3, SecurityBlock.SCS_11, 0x00))
    ccrypt = pd.accept_challenge(chlng.frame(ADDR, 1))
    assert ccrypt.data == CUID + RND_B + ANNEX_E_CLIENT_CRYPTOGRAM
    scrypt = cp.accept_ccrypt(ccrypt.frame(ADDR, 1))
    assert scrypt.data == ANNEX_E_SERVER_CRYPTOGRAM
    rmac_i = pd.accept_scrypt(scrypt.frame(ADDR, 2))
    assert rmac_i.data == ANNEX_E_RMAC_I and rmac_i.scb == bytes((3, SecurityBlock.SCS_14, 1))
    cp.accept_rmac_i(rmac_i.frame(ADDR, 2))
    assert cp.established and pd.established and cp.uses_default_key and pd.uses_default_key


NIST_KEYS = SessionKeys(enc=NIST_KEY, mac1=NIST_KEY, mac2=NIST_KEY)


@pytest.mark.parametrize(
    ("message", "mac"),
    [
        (NIST_PLAIN[:16], NIST_CBC_FIRST),  # one whole block: no padding
        (NIST_PLAIN, NIST_CBC_LAST),  # four whole blocks: no padding
        (OSDP_15, OSDP_15_CIPHER),  # 15 bytes: 0x80 pads the block
    ],
)
def test_mac_matches_libosdp_vectors(message: bytes, mac: bytes) -> None:
    assert compute_mac(NIST_KEYS, message, NIST_IV) == mac


def test_mac_uses_s_mac1_before_the_last_block_and_s_mac2_for_it() -> None:
    keys = SessionKeys(enc=bytes(16), mac1=NIST_KEY, mac2=OTHER_KEY)
    two_blocks = compute_mac(keys, NIST_PLAIN[:32], NIST_IV)
    # The first block under S-MAC1 is NIST's first ciphertext block; it chains the second.
    assert two_blocks == compute_mac(
        SessionKeys(enc=bytes(16), mac1=OTHER_KEY, mac2=OTHER_KEY),
        NIST_PLAIN[16:32],
        NIST_CBC_FIRST,
    )
    assert compute_mac(keys, NIST_PLAIN[:16], NIST_IV) != NIST_CBC_FIRST  # one block: S-MAC2


@pytest.mark.parametrize(
    ("plain", "cipher"),
    [(OSDP_15, OSDP_15_CIPHER), (OSDP_16, OSDP_16_CIPHER), (b"", OSDP_0_CIPHER)],
)
def test_data_encryption_matches_libosdp_vectors(plain: bytes, cipher: bytes) -> None:
    # libosdp's IV is the complement of the chain value: pass ~IV to get IV.
    chain = complement(NIST_IV)
    assert encrypt_data(NIST_KEYS, plain, chain) == cipher
    assert decrypt_data(NIST_KEYS, cipher, chain) == plain


def test_decryption_refuses_bad_lengths_and_missing_markers() -> None:
    chain = bytes(16)
    for data in (b"", bytes(15), bytes(17)):
        with pytest.raises(BadPadding):
            decrypt_data(NIST_KEYS, data, chain)
    assert decrypt_data(NIST_KEYS, encrypt_data(NIST_KEYS, bytes(15), chain), chain) == bytes(15)
    # No marker; a byte other than 0x80 before the zeros; the marker a whole block too early.
    for padded in (bytes(16), bytes(15) + b"\x81", b"\x80" + bytes(31)):
        cipher = cbc(NIST_KEY, complement(chain), padded)
        with pytest.raises(BadPadding):
            decrypt_data(NIST_KEYS, cipher, chain)


def _replay_recorded(
    recording: list[tuple[str, str]], cp: SecureChannel, pd: SecureChannel
) -> list[Frame]:
    """Runs our CP and PD through a recorded session; every byte they send must be the
    recorded one. Returns the plaintext of every message after the handshake."""
    wire = [(sender, h(text)) for sender, text in recording]
    frames = [FrameDecoder().feed(data)[0] for _, data in wire]

    def same(message_frame: Frame, index: int) -> None:
        data = wire[index][1]
        assert encode(message_frame, mark=data[0] == 0xFF) == data

    chlng, ccrypt, scrypt, rmac_i = frames[:4]
    same(cp.challenge().frame(chlng.address, chlng.sequence), 0)
    same(pd.accept_challenge(chlng).frame(ccrypt.address, ccrypt.sequence), 1)
    same(cp.accept_ccrypt(ccrypt).frame(scrypt.address, scrypt.sequence), 2)
    same(pd.accept_scrypt(scrypt).frame(rmac_i.address, rmac_i.sequence), 3)
    cp.accept_rmac_i(rmac_i)
    plain = []
    for index in range(4, len(frames)):
        receiver, sender = (pd, cp) if wire[index][0] == "cp" else (cp, pd)
        received = frames[index]
        opened = receiver.open(received)
        encrypted = received.security_type in (SecurityBlock.SCS_17, SecurityBlock.SCS_18)
        same(sender.seal(opened, encrypt=encrypted), index)
        plain.append(opened)
    return plain


def test_a_recorded_libosdp_session_is_reproduced_byte_for_byte() -> None:
    frames = [FrameDecoder().feed(h(text))[0] for _, text in LIBOSDP_SESSION]
    rnd_a, ccrypt = frames[0].data, frames[1].data
    cp = SecureChannel.for_cp(LIBOSDP_SCBK, random=fixed(rnd_a))
    pd = SecureChannel.for_pd(
        LIBOSDP_SCBK,
        cuid=ccrypt[:8],
        random=fixed(ccrypt[8:16]),
    )
    plain = _replay_recorded(LIBOSDP_SESSION, cp, pd)
    assert [f.code for f in plain[:8]] == [0x60, 0x40] * 3 + [Command.BUZ, Reply.ACK]
    assert plain[6].data == h("00010a0a03")
    assert plain[-1].code == Reply.RAW and plain[-1].data == h("0000200012345678")
    assert cp.cuid == ccrypt[:8]


def test_a_recorded_libosdp_install_mode_session_is_reproduced_byte_for_byte() -> None:
    frames = [FrameDecoder().feed(h(text))[0] for _, text in LIBOSDP_INSTALL_SESSION]
    rnd_a, ccrypt = frames[0].data, frames[1].data
    cp = SecureChannel.for_cp(SCBK_D, random=fixed(rnd_a))
    pd = SecureChannel.for_pd(
        None,
        cuid=ccrypt[:8],
        install_mode=True,
        random=fixed(ccrypt[8:16]),
    )
    keyset, ack = _replay_recorded(LIBOSDP_INSTALL_SESSION, cp, pd)
    assert keyset.code == Command.KEYSET and keyset.data == b"\x01\x10" + LIBOSDP_SCBK
    assert ack.code == Reply.ACK and pd.uses_default_key


# The handshake.


def test_a_cp_and_a_pd_establish_a_session_step_by_step() -> None:
    cp, pd = channels()
    assert (cp.side, pd.side) == (Side.CP, Side.PD)
    assert (cp.phase, pd.phase) == (Phase.IDLE, Phase.IDLE)
    chlng = cp.challenge()
    assert chlng.code == Command.CHLNG and not chlng.reply
    assert chlng.scb == bytes((3, SecurityBlock.SCS_11, 0x01)) and chlng.data == RND_A
    assert cp.phase is Phase.AWAIT_CCRYPT
    ccrypt = pd.accept_challenge(over_the_wire(chlng.frame(ADDR, 1)))
    assert ccrypt.code == Reply.CCRYPT and ccrypt.reply
    assert ccrypt.scb == bytes((3, SecurityBlock.SCS_12, 0x01))
    assert ccrypt.data[:16] == CUID + RND_B and pd.phase is Phase.AWAIT_SCRYPT
    scrypt = cp.accept_ccrypt(over_the_wire(ccrypt.frame(ADDR, 1)))
    assert scrypt.code == Command.SCRYPT and scrypt.scb == bytes((3, SecurityBlock.SCS_13, 1))
    assert (cp.phase, cp.cuid) == (Phase.AWAIT_RMAC_I, CUID)
    rmac_i = pd.accept_scrypt(over_the_wire(scrypt.frame(ADDR, 2)))
    assert rmac_i.code == Reply.RMAC_I and pd.established
    cp.accept_rmac_i(over_the_wire(rmac_i.frame(ADDR, 2)))
    assert cp.established and not cp.uses_default_key
    keys = derive_session_keys(KEY, RND_A)
    assert rmac_i.data == initial_rmac(keys, server_cryptogram(keys, RND_A, RND_B))


def test_a_wrong_key_is_refused_at_the_client_cryptogram() -> None:
    cp, pd = channels(OTHER_KEY, KEY)
    ccrypt = pd.accept_challenge(cp.challenge().frame(ADDR, 1))
    with pytest.raises(CryptogramMismatch, match="client cryptogram"):
        cp.accept_ccrypt(ccrypt.frame(ADDR, 1))
    assert cp.phase is Phase.IDLE
    with pytest.raises(NotEstablished):
        cp.seal(command())


def test_a_cp_on_its_key_is_told_when_the_pd_answers_on_scbk_d() -> None:
    cp = SecureChannel.for_cp(KEY, random=fixed(RND_A))
    keys = derive_session_keys(SCBK_D, RND_A)
    cp.challenge()
    ccrypt = Frame(
        address=ADDR,
        code=Reply.CCRYPT,
        reply=True,
        scb=bytes((3, SecurityBlock.SCS_12, 0x00)),
        data=CUID + RND_B + client_cryptogram(keys, RND_A, RND_B),
    )
    with pytest.raises(CryptogramMismatch, match="SCBK-D"):
        cp.accept_ccrypt(ccrypt)


def test_a_forged_server_cryptogram_is_refused_by_the_pd() -> None:
    cp, pd = channels()
    scrypt = cp.accept_ccrypt(pd.accept_challenge(cp.challenge().frame(ADDR, 1)).frame(ADDR, 1))
    forged = replace(scrypt.frame(ADDR, 2), data=bytes(16))
    with pytest.raises(CryptogramMismatch, match="server cryptogram"):
        pd.accept_scrypt(forged)
    assert pd.phase is Phase.IDLE


def test_the_cp_checks_the_initial_rmac_and_the_pds_verdict() -> None:
    for scb, data, match in (
        (bytes((3, SecurityBlock.SCS_14, 0x01)), bytes(16), "R-MAC_I"),
        (bytes((3, SecurityBlock.SCS_14, 0x00)), None, "did not accept"),
    ):
        cp, pd = channels()
        scrypt = cp.accept_ccrypt(pd.accept_challenge(cp.challenge().frame(ADDR, 1)).frame(ADDR, 1))
        rmac_i = pd.accept_scrypt(scrypt.frame(ADDR, 2)).frame(ADDR, 2)
        bad = replace(rmac_i, scb=scb, data=rmac_i.data if data is None else data)
        with pytest.raises(CryptogramMismatch, match=match):
            cp.accept_rmac_i(bad)
        assert cp.phase is Phase.IDLE


def test_install_mode_runs_on_scbk_d_and_only_when_the_pd_allows_it() -> None:
    cp, pd = channels(SCBK_D, None, install_mode=True)
    handshake(cp, pd)
    assert cp.uses_default_key and pd.uses_default_key and "SCBK-D" in repr(pd)
    sealed = cp.seal(command(Command.KEYSET, b"\x01\x10" + KEY))
    assert pd.open(over_the_wire(sealed)).data == b"\x01\x10" + KEY

    cp, pd = channels(SCBK_D, KEY)  # a PD that is not being installed
    with pytest.raises(HandshakeError, match="install"):
        pd.accept_challenge(cp.challenge().frame(ADDR, 1))

    cp, pd = channels(KEY, None, install_mode=True)  # installing, no key of its own yet
    with pytest.raises(HandshakeError, match="has none"):
        pd.accept_challenge(cp.challenge().frame(ADDR, 1))


def test_a_pd_in_install_mode_still_answers_on_its_own_key() -> None:
    cp, pd = channels(KEY, KEY, install_mode=True)
    handshake(cp, pd)
    assert pd.established and not pd.uses_default_key


def test_handshake_steps_out_of_order_or_misshapen_are_refused() -> None:
    cp, pd = channels()
    chlng = cp.challenge().frame(ADDR, 1)
    scrypt = replace(chlng, code=Command.SCRYPT, scb=bytes((3, 0x13, 1)), data=bytes(16))
    with pytest.raises(HandshakeError, match="while idle"):
        pd.accept_scrypt(scrypt)
    ccrypt = pd.accept_challenge(chlng).frame(ADDR, 1)
    for bad in (
        replace(chlng, data=bytes(7)),
        replace(chlng, scb=bytes((2, SecurityBlock.SCS_11))),
        replace(chlng, scb=bytes((3, SecurityBlock.SCS_11, 0x02))),
        replace(chlng, scb=bytes((3, SecurityBlock.SCS_13, 0x01))),
        replace(chlng, code=Command.POLL),
    ):
        with pytest.raises(HandshakeError):
            pd.accept_challenge(bad)
    with pytest.raises(HandshakeError, match="CP step"):
        pd.challenge()
    with pytest.raises(HandshakeError, match="PD step"):
        cp.accept_challenge(chlng)
    cp, pd = channels()
    with pytest.raises(HandshakeError, match="while idle"):
        cp.accept_ccrypt(ccrypt)
    cp.challenge()
    with pytest.raises(HandshakeError, match="data bytes"):
        cp.accept_ccrypt(replace(ccrypt, data=ccrypt.data[:-1]))


def test_scrypt_must_name_the_key_chlng_named() -> None:
    cp, pd = channels()
    scrypt = cp.accept_ccrypt(pd.accept_challenge(cp.challenge().frame(ADDR, 1)).frame(ADDR, 1))
    other = replace(scrypt.frame(ADDR, 2), scb=bytes((3, SecurityBlock.SCS_13, 0x00)))
    with pytest.raises(HandshakeError, match="another key"):
        pd.accept_scrypt(other)


def test_a_new_challenge_restarts_an_established_session() -> None:
    cp, pd = established()
    pd.open(cp.seal(command(data=b"x")))
    chlng = cp.challenge()
    assert cp.phase is Phase.AWAIT_CCRYPT
    pd.accept_challenge(chlng.frame(ADDR, 1))
    assert pd.phase is Phase.AWAIT_SCRYPT
    with pytest.raises(NotEstablished):
        pd.seal(reply())
    handshake(cp, pd)
    assert pd.open(cp.seal(command(data=b"y"))).data == b"y"


# The established session.


def test_commands_chain_from_the_last_reply_mac_and_replies_from_the_last_command_mac() -> None:
    cp, pd = established()
    keys = derive_session_keys(KEY, RND_A)
    rmac = initial_rmac(keys, server_cryptogram(keys, RND_A, RND_B))

    first = cp.seal(command(Command.POLL))
    cmac = compute_mac(keys, first.header_and_body(), rmac)  # from R-MAC_I
    assert first.mac == cmac[:4]
    pd.open(first)
    answer = pd.seal(reply(Reply.ACK))
    rmac = compute_mac(keys, answer.header_and_body(), cmac)  # from the command's C-MAC
    assert answer.mac == rmac[:4]
    cp.open(answer)

    second = cp.seal(command(Command.LED, b"\x00" * 14, sequence=2))
    assert second.security_type == SecurityBlock.SCS_17
    assert second.data == encrypt_data(keys, b"\x00" * 14, rmac)  # IV ~R-MAC
    cmac = compute_mac(keys, second.header_and_body(), rmac)
    assert second.mac == cmac[:4]
    pd.open(second)
    answer = pd.seal(reply(Reply.PDID, b"\x01" * 12, sequence=2))
    assert answer.data == encrypt_data(keys, b"\x01" * 12, cmac)  # IV ~C-MAC
    assert answer.mac == compute_mac(keys, answer.header_and_body(), cmac)[:4]
    assert cp.open(answer).data == b"\x01" * 12


@pytest.mark.parametrize("encrypt", [True, False])
def test_many_commands_and_replies_in_alternation_keep_the_chain(encrypt: bool) -> None:
    cp, pd = established()
    for n in range(60):
        sequence = n % 3 + 1
        data = bytes(range(n % 40))
        sealed = cp.seal(command(Command.TEXT, data, sequence), encrypt=encrypt)
        if data:
            expected = SecurityBlock.SCS_17 if encrypt else SecurityBlock.SCS_15
            assert sealed.security_type == expected
            assert (sealed.data != data) is encrypt
        opened = pd.open(over_the_wire(sealed))
        assert opened == command(Command.TEXT, data, sequence)
        answer = pd.seal(reply(Reply.KEYPAD, data[::-1], sequence), encrypt=encrypt)
        assert cp.open(over_the_wire(answer, mark=False)).data == data[::-1]
    assert cp.established and pd.established


def test_a_message_without_data_goes_as_scs_15_or_16() -> None:
    cp, pd = established()
    poll = cp.seal(command(Command.POLL))
    assert poll.scb == bytes((2, SecurityBlock.SCS_15)) and poll.data == b""
    pd.open(poll)
    ack = pd.seal(reply())
    assert ack.scb == bytes((2, SecurityBlock.SCS_16)) and ack.data == b""
    cp.open(ack)


def test_an_scs_17_message_without_data_is_taken_as_empty() -> None:
    _, pd = established()
    keys = derive_session_keys(KEY, RND_A)
    rmac = initial_rmac(keys, server_cryptogram(keys, RND_A, RND_B))
    frame = Frame(address=ADDR, code=Command.POLL, sequence=1, scb=bytes((2, 0x17)), mac=bytes(4))
    frame = replace(frame, mac=compute_mac(keys, frame.header_and_body(), rmac)[:4])
    assert pd.open(frame) == command(Command.POLL)


def test_bad_padding_under_a_good_mac_is_refused() -> None:
    _, pd = established()
    keys = derive_session_keys(KEY, RND_A)
    rmac = initial_rmac(keys, server_cryptogram(keys, RND_A, RND_B))
    data = cbc(keys.enc, complement(rmac), bytes(16))  # decrypts to zeros: no 0x80
    frame = Frame(address=ADDR, code=Command.TEXT, data=data, scb=bytes((2, 0x17)), mac=bytes(4))
    frame = replace(frame, mac=compute_mac(keys, frame.header_and_body(), rmac)[:4])
    with pytest.raises(BadPadding):
        pd.open(frame)
    assert pd.phase is Phase.IDLE


def _with_crc(body: bytes) -> bytes:
    crc = crc16(body)
    return body + bytes((crc & 0xFF, crc >> 8))


def test_any_altered_byte_of_a_sealed_frame_is_refused() -> None:
    cp, _ = established()
    sealed = cp.seal(command(Command.LED, bytes(range(20)), sequence=2))
    body = encode(sealed, mark=False)[:-2]  # SOM .. MAC; the CRC is recomputed below
    refused = 0
    for index in range(len(body)):
        for bit in (0x01, 0x80):
            _, pd = established()
            altered = bytearray(body)
            altered[index] ^= bit
            frames = FrameDecoder().feed(_with_crc(bytes(altered)))
            if not frames:  # the framing itself no longer holds (SOM, length, CTRL)
                refused += 1
                continue
            with pytest.raises(SecureChannelError):
                pd.open(frames[0])
            assert pd.phase is Phase.IDLE
            refused += 1
    assert refused == 2 * len(body)
    _, pd = established()
    assert pd.open(FrameDecoder().feed(_with_crc(body))[0]).data == bytes(range(20))


def test_altered_fields_of_a_frame_are_refused() -> None:
    cp, _ = established()
    sealed = over_the_wire(cp.seal(command(Command.LED, b"on", sequence=2)))
    assert sealed.mac is not None
    for altered in (
        replace(sealed, data=bytes(16), raw=b""),
        replace(sealed, address=ADDR + 1, raw=b""),
        replace(sealed, sequence=3, raw=b""),
        replace(sealed, mac=bytes(4), raw=b""),
        replace(sealed, scb=bytes((3, 0x17, 0)), raw=b""),
        replace(sealed, data=bytes(16)),  # fields no longer match the received bytes
    ):
        _, pd = established()
        with pytest.raises(BadMac):
            pd.open(altered)


def test_a_replayed_command_is_refused_and_ends_the_session() -> None:
    cp, pd = established()
    first = encode(cp.seal(command(Command.LED, b"open", sequence=1)))
    pd.open(FrameDecoder().feed(first)[0])
    cp.open(pd.seal(reply()))
    pd.open(cp.seal(command(Command.POLL, sequence=2)))
    cp.open(pd.seal(reply(sequence=2)))
    with pytest.raises(BadMac, match="replayed"):
        pd.open(FrameDecoder().feed(first)[0])
    assert pd.phase is Phase.IDLE
    with pytest.raises(NotEstablished):
        pd.seal(reply(sequence=3))


def test_a_replayed_reply_is_refused() -> None:
    cp, pd = established()
    pd.open(cp.seal(command(Command.ISTAT)))
    old = pd.seal(reply(Reply.ISTATR, b"\x01"))
    cp.open(old)
    pd.open(cp.seal(command(Command.ISTAT, sequence=2)))
    pd.seal(reply(Reply.ISTATR, b"\x00", sequence=2))  # lost; the old one comes instead
    with pytest.raises(BadMac):
        cp.open(old)
    assert cp.phase is Phase.IDLE


def test_a_frame_for_the_other_direction_or_of_another_block_type_is_refused() -> None:
    cp, pd = established()
    sealed = cp.seal(command(Command.POLL))
    with pytest.raises(WrongSecurityBlock, match="does not receive commands"):
        cp.open(sealed)
    for frame in (
        command(Command.POLL),  # plaintext inside a session
        replace(sealed, scb=bytes((2, SecurityBlock.SCS_16))),
        replace(sealed, scb=bytes((3, SecurityBlock.SCS_11, 1)), mac=None),
    ):
        _, pd = established()
        with pytest.raises(WrongSecurityBlock):
            pd.open(frame)
        assert pd.phase is Phase.IDLE


def test_seal_and_open_before_the_handshake_are_refused() -> None:
    cp, pd = channels()
    with pytest.raises(NotEstablished):
        cp.seal(command())
    with pytest.raises(NotEstablished):
        pd.open(command())
    cp.challenge()
    with pytest.raises(NotEstablished):
        cp.seal(command())
    assert cp.phase is Phase.IDLE  # any refusal ends the attempt as well
    cp, pd = established()
    with pytest.raises(NotEstablished, match="before any command"):
        pd.seal(reply())


def test_seal_takes_only_plaintext_frames_of_this_ends_direction() -> None:
    cp, _ = established()
    with pytest.raises(ValueError, match="does not send replies"):
        cp.seal(reply())
    with pytest.raises(ValueError, match="without a security block"):
        cp.seal(cp.seal(command()))
    assert cp.established  # a caller's mistake, not the peer's


def test_keys_and_randoms_stay_out_of_reprs_and_messages() -> None:
    keys = derive_session_keys(KEY, RND_A)
    secrets = [KEY, OTHER_KEY, RND_A, RND_B, keys.enc, keys.mac1, keys.mac2]
    cp, pd = channels(OTHER_KEY, KEY)
    chlng = cp.challenge()
    ccrypt = pd.accept_challenge(chlng.frame(ADDR, 1))
    texts = [repr(keys), repr(cp), repr(pd), repr(chlng), repr(ccrypt)]
    with pytest.raises(CryptogramMismatch) as wrong_key:
        cp.accept_ccrypt(ccrypt.frame(ADDR, 1))
    cp, pd = established()
    with pytest.raises(BadMac) as bad_mac:
        pd.open(replace(cp.seal(command(data=b"secret")), mac=bytes(4)))
    with pytest.raises(BadPadding) as bad_padding:
        decrypt_data(keys, bytes(16), bytes(16))
    texts += [str(error.value) for error in (wrong_key, bad_mac, bad_padding)]
    assert all(isinstance(e.value, DriverError) for e in (wrong_key, bad_mac, bad_padding))
    for text in texts:
        for secret in secrets:
            assert secret.hex() not in text.lower() and repr(secret) not in text


def test_randoms_come_from_the_source_given() -> None:
    asked: list[int] = []

    def source(size: int) -> bytes:
        asked.append(size)
        return bytes(size)

    SecureChannel.for_cp(KEY, random=source).challenge()
    assert asked == [8]
    bad = SecureChannel.for_cp(KEY, random=lambda size: bytes(size - 1))
    with pytest.raises(ValueError, match="random"):
        bad.challenge()
    first, second = SecureChannel.for_cp(KEY), SecureChannel.for_cp(KEY)
    assert first.challenge().data != second.challenge().data  # os.urandom by default


def test_constructors_check_their_keys() -> None:
    assert SCBK_D == b"0123456789:;<=>?"
    with pytest.raises(ValueError, match="16 bytes"):
        SecureChannel.for_cp(KEY[:15])
    with pytest.raises(ValueError, match="install mode"):
        SecureChannel.for_pd(None)
    with pytest.raises(ValueError, match="cUID"):
        SecureChannel.for_pd(KEY, cuid=b"short")
    with pytest.raises(ValueError):
        SessionKeys(enc=KEY, mac1=KEY, mac2=b"")


def test_reset_drops_the_session() -> None:
    cp, pd = established()
    pd.reset()
    assert pd.phase is Phase.IDLE
    with pytest.raises(NotEstablished):
        pd.open(cp.seal(command()))
