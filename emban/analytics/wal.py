"""The ingest write-ahead log: segment files of length-prefixed, CRC-checked records.

A record is one acknowledged ``POST /v1/events`` batch, already validated and with its event ids
fixed (generated ids included), so a replay stores exactly what was acknowledged. On disk::

    record  = length (u32 LE) | crc32 of payload (u32 LE) | payload (msgpack)
    payload = [org_id, environment_id, [[tenant_id, event_name, event_id, line], ...]]

``line`` is the row's ``JSONCompactEachRow`` text, so draining joins lines and never re-encodes.
Segments are ``<seq>.wal`` in the WAL directory, ``seq`` increasing; a segment is written only
while it is the current one, then sealed, drained into the engine and deleted. A reader keeps
whole records only: a torn tail (a write cut by a crash, never acknowledged because its fsync
had not returned) or a record whose CRC does not match ends the segment.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import msgspec

HEADER = struct.Struct("<II")
MAX_RECORD = 256 * 1024 * 1024  # a length above this is damage, not a record
SUFFIX = ".wal"


def remove_segment(path: Path) -> None:
    """Delete a drained (and forgotten) segment's file. Safe beside an append to another
    segment; should the deletion not survive a crash, the segment is replayed and every chunk
    of it is dropped by its INSERT token."""
    path.unlink(missing_ok=True)
    _fsync_dir(path.parent)


class WalLocked(RuntimeError):
    """Another process holds this WAL directory."""


@dataclass(frozen=True)
class WalEvent:
    """One row of a record: what de-duplication and live refresh need, and the encoded row."""

    tenant_id: str
    event_name: str
    event_id: str
    line: bytes


RecordRows = tuple[str, str, list[tuple[str, str, str, bytes]]]
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(tuple[str, str, list[tuple[str, str, str, bytes]]])


def encode_record(
    org_id: str, environment_id: str, rows: list[tuple[str, str, str, bytes]]
) -> bytes:
    """A framed record (header and payload) ready to append."""
    payload = _encoder.encode((org_id, environment_id, rows))
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def decode_payload(payload: bytes) -> RecordRows:
    return _decoder.decode(payload)


def read_records(path: Path) -> Iterator[RecordRows]:
    """Each whole record of a segment, decoded, in order, read one at a time; stops at the first
    torn or damaged record."""
    for record, _ in read_records_from(path, 0):
        yield record


def read_records_from(path: Path, offset: int) -> Iterator[tuple[RecordRows, int]]:
    """:func:`read_records` from ``offset`` (a record's start), each with the offset after it."""
    with path.open("rb") as file:
        file.seek(offset)
        while True:
            header = file.read(HEADER.size)
            if len(header) < HEADER.size:
                return
            length, crc = HEADER.unpack(header)
            if length > MAX_RECORD:
                return
            payload = file.read(length)
            if len(payload) < length or zlib.crc32(payload) != crc:
                return
            try:
                record = decode_payload(payload)
            except msgspec.DecodeError:
                return
            offset += HEADER.size + length
            yield record, offset


def read_chunks(path: Path, chunk_rows: int) -> Iterator[list[RecordRows]]:
    """A segment's records in chunks of whole records, each closed once it holds at least
    ``chunk_rows`` rows. The cut depends only on the segment's content, so a replay after a crash
    cuts the same chunks and chunk ``i`` can name its INSERT (deduplication token)."""
    offset = 0
    while True:
        chunk, offset = read_chunk_at(path, offset, chunk_rows)
        if not chunk:
            return
        yield chunk


def read_chunk_at(path: Path, offset: int, chunk_rows: int) -> tuple[list[RecordRows], int]:
    """The chunk of :func:`read_chunks` starting at ``offset``, and the offset of the next one
    (an empty chunk at the end): a chunk can be read again, by another process too."""
    chunk: list[RecordRows] = []
    rows = 0
    for record, end in read_records_from(path, offset):
        chunk.append(record)
        rows += len(record[2])
        offset = end
        if rows >= chunk_rows:
            break
    return chunk, offset


def segment_path(directory: Path, seq: int) -> Path:
    return directory / f"{seq:012d}{SUFFIX}"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WriteAheadLog:
    """The segments of one directory, owned by one process (an exclusive ``flock``).

    Blocking methods (``append``, ``seal``, ``delete``, ``retire``, ``prepare_next``) run on a
    worker thread, never two at once (the ingest writer serialises them); the event loop only
    reads ``backlog_bytes`` (bytes written and not yet drained), ``sealed`` and ``current``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = (directory / "lock").open("a+")
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise WalLocked(f"the ingest WAL {directory} is used by another process") from None
        self.sealed: list[int] = sorted(
            int(p.name.removesuffix(SUFFIX))
            for p in directory.iterdir()
            if p.name.endswith(SUFFIX) and p.name.removesuffix(SUFFIX).isdigit()
        )
        # The WAL's identity: with a segment's seq and a chunk index it names each INSERT
        # (insert_deduplication_token), unique across processes sharing one ClickHouse. Segments
        # left on disk keep the identity they were written under (a replay must repeat their
        # tokens). An empty WAL starts a new identity: its seqs start again at 1, and reusing
        # the old identity would repeat tokens the engine remembers, so it would drop new rows
        # as replays of old ones.
        id_file = directory / "id"
        if not id_file.exists() or not self.sealed:
            tmp = directory / "id.tmp"
            tmp.write_text(uuid.uuid4().hex)
            with tmp.open("rb") as f:
                os.fsync(f.fileno())
            tmp.rename(id_file)
            _fsync_dir(directory)
        self.id = id_file.read_text().strip()
        self.backlog_bytes = sum(segment_path(directory, s).stat().st_size for s in self.sealed)
        self._sizes = {s: segment_path(directory, s).stat().st_size for s in self.sealed}
        self._next = (self.sealed[-1] + 1) if self.sealed else 1
        self.current: int | None = None
        self._file: IO[bytes] | None = None
        # The next segment's file, created ahead of the append that starts it (``prepare_next``).
        self._spare: tuple[int, IO[bytes]] | None = None

    def append(self, records: list[bytes]) -> int:
        """Write framed records to the current segment (opened if needed) and fsync them once;
        returns the segment's seq. Durable when this returns."""
        if self._file is None:
            if self._spare is not None:  # created and its entry made durable already
                (self.current, self._file), self._spare = self._spare, None
            else:
                self.current = self._next
                self._next += 1
                self._file = segment_path(self.directory, self.current).open("ab")
                _fsync_dir(self.directory)  # the new file's entry is durable too
            self._sizes[self.current] = 0
        assert self.current is not None
        data = b"".join(records)
        try:
            self._file.write(data)
            self._file.flush()
            os.fdatasync(self._file.fileno())
        except BaseException:
            # A failed write may have left part of a record: end the segment here (readers stop
            # at the torn record) and let the next append start a new one.
            self._close_current()
            raise
        self._sizes[self.current] += len(data)
        self.backlog_bytes += len(data)
        return self.current

    @property
    def next_seq(self) -> int:
        """The seq the next segment gets: every segment below it was written already."""
        return self._spare[0] if self._spare is not None else self._next

    def prepare_next(self) -> None:
        """Create the next segment's (empty) file and make its directory entry durable now, so
        the append that starts the segment only writes and syncs its records: creating a file
        is the slow part of a small append where a filesystem has just deleted many (ext4
        without a journal scans the recently freed inodes on every creation)."""
        if self._file is not None or self._spare is not None:
            return
        seq = self._next
        path = segment_path(self.directory, seq)
        spare = path.open("ab")
        try:
            _fsync_dir(self.directory)
        except BaseException:
            spare.close()
            path.unlink(missing_ok=True)
            raise
        self._next += 1
        self._spare = (seq, spare)

    def seal(self) -> int | None:
        """End the current segment (it becomes drainable); its seq, or None when there is none."""
        return self._close_current()

    def _close_current(self) -> int | None:
        seq = self.current
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
            assert seq is not None
            self.sealed.append(seq)
        self.current = None
        return seq

    def delete(self, seq: int) -> None:
        """Remove a drained segment."""
        remove_segment(self.forget(seq))

    def forget(self, seq: int) -> Path:
        """Stop counting a drained segment (its file is left to :func:`remove_segment`, which
        needs no exclusion from the other methods); the file's path."""
        self.sealed.remove(seq)
        self.backlog_bytes -= self._sizes.pop(seq, 0)
        return segment_path(self.directory, seq)

    def retire(self, seq: int) -> None:
        """Remove a drained segment and have the next segment's file ready."""
        self.delete(seq)
        self.prepare_next()

    def close(self) -> None:
        self._close_current()
        if self._spare is not None:  # never written: nothing to replay
            seq, spare = self._spare
            self._spare = None
            with contextlib.suppress(OSError):
                spare.close()
                segment_path(self.directory, seq).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_UN)
            self._lock.close()
