"""drivers.osdp.frame: the OSDP packet format, and a decoder that survives any input."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.osdp.codes import Command, Reply, SecurityBlock
from drivers.osdp.frame import MAX_PACKET, Frame, FrameDecoder, checksum, crc16, encode


def test_crc_is_crc16_aug_ccitt() -> None:
    assert crc16(b"123456789") == 0xE5CC


def test_a_poll_is_encoded_as_the_standard_shows() -> None:
    # osdp_POLL to address 0, sequence 1, CRC: FF 53 00 08 00 05 60 <crc lo> <crc hi>
    wire = encode(Frame(address=0, code=Command.POLL, sequence=1))
    assert wire[:7] == bytes.fromhex("ff530008000560")
    crc = crc16(wire[1:7])
    assert wire[7:] == bytes((crc & 0xFF, crc >> 8))
    assert len(wire) == 1 + 8


def test_checksum_mode_and_reply_bit() -> None:
    frame = Frame(address=5, code=Reply.ACK, sequence=2, reply=True, use_crc=False)
    wire = encode(frame, mark=False)
    assert wire[1] == 0x85 and wire[4] == 0x02 and len(wire) == 7
    assert (sum(wire[:-1]) + wire[-1]) & 0xFF == 0
    assert checksum(wire[:-1]) == wire[-1]
    (back,) = FrameDecoder().feed(wire)
    assert back == frame


def test_secure_frames_round_trip_with_their_block_and_mac() -> None:
    frame = Frame(
        address=1,
        code=Command.LED,
        data=bytes(16),
        sequence=3,
        scb=bytes((2, SecurityBlock.SCS_17)),
        mac=b"\x01\x02\x03\x04",
    )
    wire = encode(frame)
    (back,) = FrameDecoder().feed(wire)
    assert back == frame
    assert back.raw == frame.header_and_body()
    assert back.security_type == SecurityBlock.SCS_17


def test_handshake_block_has_no_mac() -> None:
    frame = Frame(address=1, code=Command.CHLNG, data=bytes(8), scb=bytes((3, 0x11, 0x00)))
    (back,) = FrameDecoder().feed(encode(frame))
    assert back.scb == bytes((3, 0x11, 0x00)) and back.mac is None and back.data == bytes(8)


def test_frames_split_anywhere_and_joined_come_out_whole() -> None:
    frames = [Frame(address=a, code=Command.POLL, sequence=(a % 3) + 1) for a in range(5)]
    stream = b"".join(encode(f) for f in frames)
    decoder = FrameDecoder()
    out: list[Frame] = []
    for i in range(len(stream)):
        out += decoder.feed(stream[i : i + 1])
    assert out == frames
    assert decoder.stats.garbage == 0 and decoder.pending == 0


def test_bad_frames_are_counted_and_the_next_good_one_is_found() -> None:
    good = encode(Frame(address=2, code=Command.ID, data=b"\x00", sequence=1))
    corrupt = bytearray(good)
    corrupt[-3] ^= 0x40  # a data bit: the CRC fails
    truncated = good[:-2]  # its length promises bytes that never come... then a SOM does
    oversized = bytes.fromhex("53 00 ff ff 04 60")
    garbage = b"\x00\x13\x37hello"
    decoder = FrameDecoder()
    out = decoder.feed(bytes(corrupt) + garbage + oversized + truncated + good + good)
    # The truncated packet swallows the start of the next; the decoder resynchronises on
    # the SOM after it and loses only what the broken packets covered.
    assert out.count(Frame(address=2, code=Command.ID, data=b"\x00", sequence=1)) >= 1
    stats = decoder.stats
    assert stats.bad_check >= 1 and stats.bad_length >= 1 and stats.garbage >= len(garbage)


def test_a_declared_length_too_short_for_a_packet_is_refused() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(bytes.fromhex("53 00 03 00 04")) == []
    assert decoder.stats.bad_length == 1


def test_invalid_frames_cannot_be_built() -> None:
    import pytest

    with pytest.raises(ValueError):
        Frame(address=0x80, code=0x60)
    with pytest.raises(ValueError):
        Frame(address=1, code=0x60, sequence=4)
    with pytest.raises(ValueError):
        Frame(address=1, code=0x60, scb=bytes((2, SecurityBlock.SCS_15)))  # no MAC
    with pytest.raises(ValueError):
        encode(Frame(address=1, code=0x60, data=bytes(MAX_PACKET)))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600), st.lists(st.integers(0, 599), max_size=8))
def test_the_decoder_never_raises_and_never_invents_a_frame(noise: bytes, cuts: list[int]) -> None:
    decoder = FrameDecoder()
    pos = 0
    out: list[Frame] = []
    for cut in [*sorted(set(cuts)), len(noise)]:
        out += decoder.feed(noise[pos:cut])
        pos = max(pos, cut)
    for frame in out:
        # Anything it accepted has a valid check: encoding it again reproduces the bytes.
        again = encode(frame, mark=False)
        assert again in noise


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 0x7E),
    st.integers(0, 255),
    st.binary(max_size=200),
    st.integers(0, 3),
    st.booleans(),
    st.binary(max_size=40),
)
def test_any_frame_survives_noise_around_it(
    address: int, code: int, data: bytes, seq: int, crc: bool, noise: bytes
) -> None:
    frame = Frame(address=address, code=code, data=data, sequence=seq, use_crc=crc)
    clean = noise.replace(b"\x53", b"")  # noise without a SOM cannot start a packet
    out = FrameDecoder().feed(clean + encode(frame) + clean)
    assert out == [frame]
