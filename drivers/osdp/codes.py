"""OSDP 2.2 command, reply and security-block codes (SIA OSDP 2.2, tables 4, 5 and 6)."""

from __future__ import annotations

from enum import IntEnum


class Command(IntEnum):
    """Control panel (CP, "ACU" in the standard) to reader (PD)."""

    POLL = 0x60
    ID = 0x61
    CAP = 0x62
    LSTAT = 0x64
    ISTAT = 0x65
    OSTAT = 0x66
    RSTAT = 0x67
    OUT = 0x68
    LED = 0x69
    BUZ = 0x6A
    TEXT = 0x6B
    COMSET = 0x6E
    BIOREAD = 0x73
    BIOMATCH = 0x74
    KEYSET = 0x75
    CHLNG = 0x76
    SCRYPT = 0x77
    ACURXSIZE = 0x7B
    FILETRANSFER = 0x7C
    MFG = 0x80
    XWR = 0xA1
    ABORT = 0xA2
    PIVDATA = 0xA3
    GENAUTH = 0xA4
    CRAUTH = 0xA5
    KEEPACTIVE = 0xA7


class Reply(IntEnum):
    """Reader (PD) to control panel."""

    ACK = 0x40
    NAK = 0x41
    PDID = 0x45
    PDCAP = 0x46
    LSTATR = 0x48
    ISTATR = 0x49
    OSTATR = 0x4A
    RSTATR = 0x4B
    RAW = 0x50
    FMT = 0x51
    KEYPAD = 0x53
    COM = 0x54
    BIOREADR = 0x57
    BIOMATCHR = 0x58
    CCRYPT = 0x76
    RMAC_I = 0x78
    BUSY = 0x79
    FTSTAT = 0x7A
    PIVDATAR = 0x80
    GENAUTHR = 0x81
    CRAUTHR = 0x82
    MFGSTATR = 0x83
    MFGERRR = 0x84
    MFGREP = 0x90
    XRD = 0xB1


class SecurityBlock(IntEnum):
    """SEC_BLK_TYPE: SCS_11..14 are the handshake, 15..18 carry a MAC (17 and 18 also
    encrypted data); odd types travel CP to PD, even ones PD to CP."""

    SCS_11 = 0x11  # CP: osdp_CHLNG
    SCS_12 = 0x12  # PD: osdp_CCRYPT
    SCS_13 = 0x13  # CP: osdp_SCRYPT
    SCS_14 = 0x14  # PD: osdp_RMAC_I
    SCS_15 = 0x15  # CP: MAC, data in the clear
    SCS_16 = 0x16  # PD: MAC, data in the clear
    SCS_17 = 0x17  # CP: MAC, data encrypted
    SCS_18 = 0x18  # PD: MAC, data encrypted


class NakReason(IntEnum):
    """The first data byte of osdp_NAK."""

    NONE = 0x00
    BAD_CHECK = 0x01  # CRC or checksum
    BAD_LENGTH = 0x02  # command length
    UNKNOWN_COMMAND = 0x03
    BAD_SEQUENCE = 0x04
    UNSUPPORTED_SECURITY = 0x05
    SECURITY_REQUIRED = 0x06  # encrypted communication required
    BIO_TYPE_UNSUPPORTED = 0x07
    BIO_FORMAT_UNSUPPORTED = 0x08
    UNABLE_TO_PROCESS = 0x09
