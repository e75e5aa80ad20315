"""Reading members of a split zip archive (``name.z01``, ``name.z02`` ... ``name.zip``) in place.

Large files of the paper's Dataverse release are split archives, which Python's ``zipfile``
refuses ("zipfiles that span multiple disks are not supported"). In a split archive every
local header's offset in the central directory is relative to the start of its own part
(its "disk"), and the end records say on which part the central directory starts. Read as
one stream of the parts in order (``.z01`` is disk 0, ``.zip`` the last), with each part's
start added to those offsets, the members decompress like any zip's: no joining on disk.
Stored and deflated members are supported (what ``zip -s`` and 7-Zip write), ZIP64 included.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from imageattributionbench import BenchmarkError

_EOCD = b"PK\x05\x06"
_EOCD64 = b"PK\x06\x06"
_LOCATOR64 = b"PK\x06\x07"
_CENTRAL = b"PK\x01\x02"
_LOCAL = b"PK\x03\x04"
_MAX_COMMENT = 65535


@dataclass(frozen=True)
class Member:
    name: str
    method: int
    compressed: int
    size: int
    crc: int
    disk: int
    offset: int
    flags: int

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/")


def split_parts(zip_path: Path) -> list[Path]:
    """The parts of the archive whose last part is ``zip_path``, in disk order (``.z01`` ...
    then ``.zip``); just ``[zip_path]`` when it is not split."""
    stem = zip_path.with_suffix("")
    numbered = sorted((p for p in zip_path.parent.glob(f"{stem.name}.[zZ][0-9]*")
                       if re.fullmatch(r"\.[zZ]\d+", p.suffix)),
                      key=lambda p: int(p.suffix[2:]))
    for k, p in enumerate(numbered, start=1):
        if int(p.suffix[2:]) != k:
            raise BenchmarkError(f"{zip_path}: split archive part {stem.name}.z{k:02d} is "
                                 f"missing (found {', '.join(q.name for q in numbered)}); "
                                 "download every part")
    return numbered + [zip_path]


class SplitZip:
    """The members of a (possibly split) zip archive, read without unpacking it."""

    def __init__(self, parts: list[Path]):
        self.parts = parts
        self.sizes = [p.stat().st_size for p in parts]
        self.starts = [sum(self.sizes[:i]) for i in range(len(parts))]
        self._files = [p.open("rb") for p in parts]
        try:
            self.members = self._central_directory()
        except (struct.error, IndexError, ValueError) as e:
            self.close()
            raise BenchmarkError(f"{parts[-1]}: not a readable zip archive ({e})") from e

    def close(self) -> None:
        for f in self._files:
            f.close()

    def __enter__(self) -> SplitZip:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _read(self, position: int, n: int) -> bytes:
        """``n`` bytes from an absolute position in the parts read as one stream."""
        out = bytearray()
        for f, start, size in zip(self._files, self.starts, self.sizes):
            if n <= 0:
                break
            if position >= start + size:
                continue
            f.seek(position - start)
            chunk = f.read(min(n, start + size - position))
            out += chunk
            position += len(chunk)
            n -= len(chunk)
        if n > 0:
            raise ValueError("archive data ends early (a part is truncated or missing)")
        return bytes(out)

    def _at(self, disk: int, offset: int) -> int:
        if not 0 <= disk < len(self.parts):
            raise ValueError(f"the archive refers to part {disk + 1} of {len(self.parts)}")
        return self.starts[disk] + offset

    def _central_directory(self) -> list[Member]:
        last = len(self.parts) - 1
        tail_len = min(self.sizes[last], 22 + _MAX_COMMENT)
        tail = self._read(self.starts[last] + self.sizes[last] - tail_len, tail_len)
        pos = tail.rfind(_EOCD)
        if pos < 0:
            raise ValueError("no end-of-central-directory record")
        (_, _, cd_disk, _, entries, cd_size, cd_offset, _) = struct.unpack(
            "<4s4H2LH", tail[pos:pos + 22])
        if pos >= 20 and tail[pos - 20:pos - 16] == _LOCATOR64:
            _, disk64, offset64, _ = struct.unpack("<4sLQL", tail[pos - 20:pos])
            rec = self._read(self._at(disk64, offset64), 56)
            if rec[:4] != _EOCD64:
                raise ValueError("bad ZIP64 end-of-central-directory record")
            (_, _, _, _, _, cd_disk, _, entries, cd_size, cd_offset) = struct.unpack(
                "<4sQ2H2L4Q", rec)
        data = self._read(self._at(cd_disk, cd_offset), cd_size)
        members, i = [], 0
        for _ in range(entries):
            if data[i:i + 4] != _CENTRAL:
                raise ValueError("bad central directory entry")
            fields = struct.unpack("<4s6H3L5H2L", data[i:i + 46])
            flags, method, crc = fields[3], fields[4], fields[7]
            compressed, size = fields[8], fields[9]
            n_name, n_extra, n_comment, disk = fields[10], fields[11], fields[12], fields[13]
            offset = fields[16]
            name = data[i + 46:i + 46 + n_name].decode("utf-8" if flags & 0x800 else "cp437")
            extra = data[i + 46 + n_name:i + 46 + n_name + n_extra]
            size, compressed, offset, disk = _zip64(extra, size, compressed, offset, disk)
            members.append(Member(name, method, compressed, size, crc, disk, offset, flags))
            i += 46 + n_name + n_extra + n_comment
        return members

    def read(self, m: Member, max_size: int | None = None) -> bytes:
        """A member's bytes, CRC-checked; refuses encrypted members and ones over max_size."""
        if m.flags & 0x1:
            raise BenchmarkError(f"{m.name}: encrypted zip member, not supported")
        if max_size is not None and m.size > max_size:
            raise BenchmarkError(f"{m.name}: {m.size:,} bytes, over the {max_size:,}-byte "
                                 "limit for one image")
        start = self._at(m.disk, m.offset)
        header = self._read(start, 30)
        if header[:4] != _LOCAL:
            raise BenchmarkError(f"{m.name}: bad local header in the archive")
        n_name, n_extra = struct.unpack("<2H", header[26:30])
        raw = self._read(start + 30 + n_name + n_extra, m.compressed)
        if m.method == 0:
            data = raw
        elif m.method == 8:
            d = zlib.decompressobj(-15)
            data = d.decompress(raw, m.size + 1) + d.flush()
        else:
            raise BenchmarkError(f"{m.name}: compression method {m.method} not supported "
                                 "(stored and deflate are)")
        if len(data) != m.size or zlib.crc32(data) != m.crc:
            raise BenchmarkError(f"{m.name}: CRC or size mismatch (damaged archive part?)")
        return data


def _zip64(extra: bytes, size: int, compressed: int, offset: int, disk: int
           ) -> tuple[int, int, int, int]:
    """Apply a ZIP64 extended-information field: each value there replaces a 0xFFFFFFFF (or
    0xFFFF for the disk) in the fixed fields, in this order."""
    i = 0
    while i + 4 <= len(extra):
        tag, length = struct.unpack("<2H", extra[i:i + 4])
        body = extra[i + 4:i + 4 + length]
        if tag == 0x0001:
            j = 0
            values = []
            for wanted, width, fmt in ((size == 0xFFFFFFFF, 8, "<Q"),
                                       (compressed == 0xFFFFFFFF, 8, "<Q"),
                                       (offset == 0xFFFFFFFF, 8, "<Q"),
                                       (disk == 0xFFFF, 4, "<L")):
                if wanted:
                    values.append(struct.unpack(fmt, body[j:j + width])[0])
                    j += width
                else:
                    values.append(None)
            size, compressed, offset, disk = (v if v is not None else old for v, old in
                                              zip(values, (size, compressed, offset, disk)))
        i += 4 + length
    return size, compressed, offset, disk
