"""Build small ICC v2 display profiles for tests (a matrix/TRC RGB profile and a grey TRC profile), so the
colour-management tests need no profile files from the system. Layout: ICC.1:2001-04, sections 6 and 6.5."""

from __future__ import annotations

import struct

D50 = (0.9642, 1.0, 0.8249)
# Adobe RGB (1998) primaries adapted to D50, as in its published profile; gamma 2.2 (563/256 in u8Fixed8)
ADOBE_RGB_D50 = ((0.6097, 0.3111, 0.0195), (0.2053, 0.6257, 0.0609), (0.1492, 0.0632, 0.7446))


def _s15f16(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _xyz(xyz) -> bytes:
    return b"XYZ " + bytes(4) + b"".join(_s15f16(v) for v in xyz)


def _curve(gamma: float) -> bytes:
    return b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256)) + bytes(2)


def _desc(text: str) -> bytes:
    ascii_ = text.encode("ascii") + b"\0"
    return (b"desc" + bytes(4) + struct.pack(">I", len(ascii_)) + ascii_
            + bytes(8)  # Unicode language code and count: none
            + bytes(3) + bytes(67))  # ScriptCode code, count, and its fixed 67 bytes


def _text(text: str) -> bytes:
    return b"text" + bytes(4) + text.encode("ascii") + b"\0"


def _profile(space: bytes, tags: list[tuple[bytes, bytes]]) -> bytes:
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    entries, blobs = [], b""
    for sig, data in tags:
        data += bytes(-len(data) % 4)
        entries.append(struct.pack(">4sII", sig, offset + len(blobs), len(data)))
        blobs += data
    size = offset + len(blobs)
    header = (struct.pack(">I4sI4s4s4s", size, b"none", 0x02100000, b"mntr", space, b"XYZ ")
              + struct.pack(">6H", 2026, 1, 1, 0, 0, 0) + b"acsp" + bytes(4) + struct.pack(">I", 0) + bytes(8)
              + bytes(8) + struct.pack(">I", 0) + b"".join(_s15f16(v) for v in D50) + bytes(4) + bytes(44))
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + b"".join(entries) + blobs


def rgb_profile(name: str = "Wide test RGB", primaries=ADOBE_RGB_D50, gamma: float = 563 / 256) -> bytes:
    r, g, b = primaries
    curve = _curve(gamma)
    return _profile(b"RGB ", [(b"desc", _desc(name)), (b"cprt", _text("No copyright, test profile")),
                              (b"wtpt", _xyz(D50)), (b"rXYZ", _xyz(r)), (b"gXYZ", _xyz(g)), (b"bXYZ", _xyz(b)),
                              (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)])


def gray_profile(name: str = "Gray gamma 1.0", gamma: float = 1.0) -> bytes:
    return _profile(b"GRAY", [(b"desc", _desc(name)), (b"cprt", _text("No copyright, test profile")),
                              (b"wtpt", _xyz(D50)), (b"kTRC", _curve(gamma))])
