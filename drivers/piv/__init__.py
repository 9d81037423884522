"""PIV card edge (NIST SP 800-73-4): data codecs shared by the reader and the simulator."""

from drivers.piv.chuid import Chuid
from drivers.piv.fascn import Fascn
from drivers.piv.tlv import Tlv

__all__ = ["Chuid", "Fascn", "Tlv"]
