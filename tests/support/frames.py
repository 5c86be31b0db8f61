"""Raw Kafka request frames for hostile-input tests: record what stock clients send, mutate it, build bombs.

- `RecordingProxy`: a TCP forwarder (threads) in front of a broker; while `recording` is on it keeps every
  complete client→broker request frame (the body after the 4-byte big-endian length prefix).
- `select_corpus(bodies)`: the recorded bodies deduplicated (correlation id ignored), at most a few per
  (api key, api version), small ones only.
- `Mutator(corpus, seed)`: `mutator.mutant(i)` is the i-th mutated frame, a pure function of the corpus, the seed
  and i, so a run can be replayed from its seed (given the same corpus).
- `decompression_bombs(...)`: Produce requests whose one record batch (magic 2, valid CRC-32C) holds a gzip or
  zstd stream that inflates to 2 GiB: zeros, or one valid record whose value fills the 2 GiB.
- wire helpers: `api_versions_request`, `produce_request`, `record_batch`, `crc32c`, `ResponseReader`.
Frames live in memory only; nothing recorded here is written to the repository.
"""

from __future__ import annotations

import collections
import random
import socket
import struct
import threading
import time
import zlib
from dataclasses import dataclass

# Kafka api keys used by name below.
PRODUCE = 0
API_VERSIONS = 18

# The broker's default socket.request.max.bytes (100 MiB); lengths around it are worth sending.
DEFAULT_SOCKET_REQUEST_MAX_BYTES = 104_857_600

# Record batch attributes: the compression codec in the low three bits.
CODEC_GZIP = 1
CODEC_ZSTD = 4
INT32_MAX = 2**31 - 1


# -- wire encoding ----------------------------------------------------------------------------------------------
def frame(body: bytes) -> bytes:
    """The body with its 4-byte big-endian length prefix."""
    return struct.pack(">i", len(body)) + body


def _string(value: str | None) -> bytes:
    if value is None:
        return struct.pack(">h", -1)
    data = value.encode()
    return struct.pack(">h", len(data)) + data


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _compact_string(value: str) -> bytes:
    data = value.encode()
    return _uvarint(len(data) + 1) + data


def request_header(api_key: int, api_version: int, correlation_id: int, client_id: str | None,
                   flexible: bool) -> bytes:
    """Request header v1 (or v2 with its empty tagged-field section when `flexible`)."""
    header = struct.pack(">hhi", api_key, api_version, correlation_id) + _string(client_id)
    return header + (b"\x00" if flexible else b"")


def api_versions_request(correlation_id: int, version: int = 3, client_id: str = "skein-hostile") -> bytes:
    """A whole ApiVersions frame (length prefix included): v0 has an empty body, v3 names the client software."""
    if version >= 3:
        body = request_header(API_VERSIONS, version, correlation_id, client_id, flexible=True)
        body += _compact_string("skein-hostile-input") + _compact_string("1.0") + b"\x00"
    else:
        body = request_header(API_VERSIONS, version, correlation_id, client_id, flexible=False)
    return frame(body)


def parse_api_versions_response(payload: bytes) -> tuple[int, dict[int, tuple[int, int]]]:
    """(error_code, {api_key: (min_version, max_version)}) of an ApiVersions v3 response payload (after the length
    prefix; its header is v0, the correlation id only)."""
    error_code = struct.unpack_from(">h", payload, 4)[0]
    ranges: dict[int, tuple[int, int]] = {}
    if error_code != 0:
        return error_code, ranges
    offset = 6
    count, offset = _read_uvarint(payload, offset)
    for _ in range(count - 1):
        api_key, low, high = struct.unpack_from(">hhh", payload, offset)
        offset += 6
        offset = _skip_tagged_fields(payload, offset)
        ranges[api_key] = (low, high)
    return error_code, ranges


def _read_uvarint(data: bytes, offset: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
        shift += 7


def _skip_tagged_fields(data: bytes, offset: int) -> int:
    count, offset = _read_uvarint(data, offset)
    for _ in range(count):
        _, offset = _read_uvarint(data, offset)
        size, offset = _read_uvarint(data, offset)
        offset += size
    return offset


def produce_request(correlation_id: int, topic: str, partition: int, records: bytes, version: int = 7,
                    acks: int = -1, timeout_ms: int = 5000) -> bytes:
    """A whole Produce frame in one of the non-flexible versions 3-8 (they share one layout)."""
    if not 3 <= version <= 8:
        raise ValueError(f"produce_request encodes versions 3-8, not {version}")
    body = request_header(PRODUCE, version, correlation_id, "skein-hostile", flexible=False)
    body += _string(None) + struct.pack(">hi", acks, timeout_ms)
    body += struct.pack(">i", 1) + _string(topic)
    body += struct.pack(">i", 1) + struct.pack(">i", partition) + struct.pack(">i", len(records)) + records
    return frame(body)


# -- checksums ---------------------------------------------------------------------------------------------------
def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        crc = n
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC-32C (Castagnoli), the checksum of a v2 record batch. Pure Python: about 2 MB/s."""
    table = _CRC32C_TABLE
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _gf2_times(matrix: list[int], vector: int) -> int:
    total = 0
    index = 0
    while vector:
        if vector & 1:
            total ^= matrix[index]
        vector >>= 1
        index += 1
    return total


def _gf2_square(matrix: list[int]) -> list[int]:
    return [_gf2_times(matrix, matrix[n]) for n in range(32)]


CRC32_POLYNOMIAL = 0xEDB88320   # reflected; zlib's CRC-32 (gzip trailers)
CRC32C_POLYNOMIAL = 0x82F63B78  # reflected; CRC-32C (record batches)


def crc_combine(crc1: int, crc2: int, length2: int, polynomial: int = CRC32_POLYNOMIAL) -> int:
    """zlib's crc32_combine for any reflected 32-bit CRC: the CRC of A || B from crc(A), crc(B) and len(B)."""
    if length2 <= 0:
        return crc1
    odd = [polynomial] + [1 << n for n in range(31)]
    even = _gf2_square(odd)
    odd = _gf2_square(even)
    while True:
        even = _gf2_square(odd)
        if length2 & 1:
            crc1 = _gf2_times(even, crc1)
        length2 >>= 1
        if not length2:
            break
        odd = _gf2_square(even)
        if length2 & 1:
            crc1 = _gf2_times(odd, crc1)
        length2 >>= 1
        if not length2:
            break
    return crc1 ^ crc2


def crc_of_parts(parts: list[tuple[bytes, int]], crc_function, polynomial: int) -> int:
    """The CRC of the concatenation of `data * repeat` for each (data, repeat) part, reading each data once."""
    crc = 0
    for data, repeat in parts:
        part_crc, part_length = crc_function(data), len(data)
        while repeat:  # by doubling
            if repeat & 1:
                crc = crc_combine(crc, part_crc, part_length, polynomial)
            repeat >>= 1
            if repeat:
                part_crc = crc_combine(part_crc, part_crc, part_length, polynomial)
                part_length *= 2
    return crc


# -- record batches and decompression bombs -----------------------------------------------------------------------
Parts = list[tuple[bytes, int]]  # (data, repeat): the bytes data * repeat, concatenated in order


def join_parts(parts: Parts) -> bytes:
    return b"".join(data * repeat for data, repeat in parts)


def record_batch(payload: bytes | Parts, record_count: int, codec: int = 0, timestamp_ms: int | None = None) -> bytes:
    """A magic-2 record batch around `payload` (the records, compressed by `codec`; bytes, or parts to join), with
    a correct CRC-32C over the bytes from attributes to the end. lastOffsetDelta is record_count - 1, as a producer
    would write it."""
    parts = [(payload, 1)] if isinstance(payload, (bytes, bytearray)) else list(payload)
    timestamp_ms = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    fields = struct.pack(">hiqqqhii", codec, record_count - 1, timestamp_ms, timestamp_ms, -1, -1, -1, record_count)
    parts = [(fields, 1)] + parts
    crc = crc_of_parts(parts, crc32c, CRC32C_POLYNOMIAL)
    after_crc = join_parts(parts)
    batch_length = 4 + 1 + 4 + len(after_crc)  # partitionLeaderEpoch, magic, crc, then the rest
    return struct.pack(">qiibI", 0, batch_length, -1, 2, crc) + after_crc


# One valid record, repeated: length 7, attributes 0, timestampDelta 0, offsetDelta 0, key "k", null value, no
# headers. Valid on its own; repeated, every copy after the first has a wrong offsetDelta.
KEYED_RECORD = bytes([0x0E, 0x00, 0x00, 0x00, 0x02, ord("k"), 0x01, 0x00])
_BOMB_CHUNK_BYTES = 1 << 20


def _zigzag_varint(value: int) -> bytes:
    return _uvarint((value << 1) ^ (value >> 63))


def one_record_prefix(inflated_bytes: int) -> bytes:
    """The start of a single valid record (key "k") that is exactly `inflated_bytes` long: its value is all zero
    bytes up to the end, and its header count (0) is the last zero byte. A decoder that takes the value's length
    at its word allocates or inflates ~2 GiB for it."""
    key = b"k"
    for length_bytes in range(1, 6):
        record_length = inflated_bytes - length_bytes
        for value_length_bytes in range(1, 6):
            value_length = record_length - (3 + len(_zigzag_varint(len(key))) + len(key) + value_length_bytes + 1)
            if len(_zigzag_varint(record_length)) == length_bytes and \
                    len(_zigzag_varint(value_length)) == value_length_bytes:
                return (_zigzag_varint(record_length) + b"\x00\x00\x00" + _zigzag_varint(len(key)) + key
                        + _zigzag_varint(value_length))
    raise ValueError(f"no single record is {inflated_bytes} bytes long")


def _bomb_chunks(content: str, inflated_bytes: int) -> tuple[bytes, bytes]:
    """(first chunk, every later chunk) of `content`, 1 MiB each."""
    zeros = bytes(_BOMB_CHUNK_BYTES)
    if content == "zeros":
        return zeros, zeros
    if content == "records":
        records = KEYED_RECORD * (_BOMB_CHUNK_BYTES // len(KEYED_RECORD))
        return records, records
    if content == "one-record":
        prefix = one_record_prefix(inflated_bytes)
        return prefix + zeros[len(prefix):], zeros
    raise ValueError(content)


def gzip_bomb_parts(inflated_bytes: int, content: str = "zeros") -> Parts:
    """A gzip stream inflating to `inflated_bytes` (a multiple of 1 MiB) of `content`, as parts, built in well
    under a second: one full-flushed deflate piece per MiB is byte-aligned and does not depend on what came
    before, so it is compressed once and repeated; the trailer's CRC-32 is combined arithmetically."""
    first_chunk, chunk = _bomb_chunks(content, inflated_bytes)
    chunks, remainder = divmod(inflated_bytes, len(chunk))
    if remainder or chunks < 3:
        raise ValueError("gzip_bomb needs a whole number (>= 3) of MiB")
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = compressor.compress(first_chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    piece = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    if compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH) != piece:
        raise AssertionError("full-flushed deflate pieces differ; cannot repeat them")
    final = compressor.flush(zlib.Z_FINISH)  # an empty final block
    crc = crc_of_parts([(first_chunk, 1), (chunk, chunks - 1)], zlib.crc32, CRC32_POLYNOMIAL)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    trailer = struct.pack("<II", crc, inflated_bytes & 0xFFFFFFFF)
    return [(header + first, 1), (piece, chunks - 1), (final + trailer, 1)]


def gzip_bomb(inflated_bytes: int, content: str = "zeros") -> bytes:
    return join_parts(gzip_bomb_parts(inflated_bytes, content))


def zstd_bomb(inflated_bytes: int, content: str = "zeros", declare_size: bool = False) -> bytes:
    """A zstd frame inflating to `inflated_bytes` of `content`; with `declare_size` the frame header states the
    inflated size (tempting a decoder to allocate it up front)."""
    import zstandard  # from .tools/venv

    first_chunk, chunk = _bomb_chunks(content, inflated_bytes)
    chunks, remainder = divmod(inflated_bytes, len(chunk))
    if remainder:
        raise ValueError("zstd_bomb needs a whole number of MiB")
    compressor = zstandard.ZstdCompressor(level=3, write_content_size=declare_size)
    stream = compressor.compressobj(size=inflated_bytes if declare_size else -1)
    out = [stream.compress(first_chunk)] + [stream.compress(chunk) for _ in range(chunks - 1)]
    out.append(stream.flush())
    return b"".join(out)


@dataclass(frozen=True)
class Bomb:
    description: str
    data: bytes  # a whole Produce frame, length prefix included


def decompression_bombs(topics: list[str], inflated_bytes: int = 2 << 30, produce_version: int = 7) -> list[Bomb]:
    """Produce requests (acks=-1) whose record batch inflates to `inflated_bytes`, for each topic (partition 0):
    gzip and zstd of zeros, and of one valid record whose value is zeros up to the end (zstd also with the
    inflated size declared in its frame header), each with a record count of 1 and of 2^31-1."""
    payloads: list[tuple[str, int, Parts]] = [
        ("gzip zeros", CODEC_GZIP, gzip_bomb_parts(inflated_bytes, "zeros")),
        ("gzip one-record", CODEC_GZIP, gzip_bomb_parts(inflated_bytes, "one-record")),
        ("zstd zeros", CODEC_ZSTD, [(zstd_bomb(inflated_bytes, "zeros"), 1)]),
        ("zstd one-record", CODEC_ZSTD, [(zstd_bomb(inflated_bytes, "one-record"), 1)]),
        ("zstd one-record declared-size", CODEC_ZSTD,
         [(zstd_bomb(inflated_bytes, "one-record", declare_size=True), 1)]),
    ]
    bombs = []
    correlation_id = 0x0B0B0000
    for name, codec, payload in payloads:
        compressed_bytes = sum(len(data) * repeat for data, repeat in payload)
        for record_count in (1, INT32_MAX):
            batch = record_batch(payload, record_count, codec)
            for topic in topics:
                correlation_id += 1
                description = (f"bomb {name} ({compressed_bytes} bytes inflating to {inflated_bytes}) "
                               f"record_count={record_count} topic={topic}")
                bombs.append(Bomb(description, produce_request(correlation_id, topic, 0, batch, produce_version)))
    return bombs


# -- responses ---------------------------------------------------------------------------------------------------
# A response frame longer than this is taken for garbage (the test brokers hold a few MB of data).
MAX_SANE_RESPONSE_BYTES = 256 << 20


class MalformedResponse(Exception):
    """The broker wrote a response frame whose length prefix is not positive or absurdly large."""


class ResponseReader:
    """Splits what a broker sends on one connection into response frames."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = bytearray()

    def next_response(self, deadline: float) -> bytes | None:
        """The next response payload (after its length prefix), or None at EOF. Raises socket.timeout past
        `deadline`, ConnectionError on a reset, MalformedResponse on a bad length prefix."""
        while True:
            if len(self.buffer) >= 4:
                length = struct.unpack_from(">i", self.buffer)[0]
                if length < 4 or length > MAX_SANE_RESPONSE_BYTES:
                    raise MalformedResponse(f"response length prefix {length}")
                if len(self.buffer) >= 4 + length:
                    payload = bytes(self.buffer[4:4 + length])
                    del self.buffer[:4 + length]
                    return payload
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout("response deadline passed")
            self.sock.settimeout(remaining)
            data = self.sock.recv(1 << 20)
            if not data:
                return None
            self.buffer += data


def correlation_id_of(payload: bytes) -> int:
    return struct.unpack_from(">i", payload)[0]


def api_versions_ok(host: str, port: int, timeout: float = 5.0) -> tuple[bool, str]:
    """Whether a fresh connection gets an ApiVersions v3 answer with error_code 0 within `timeout`, and why not."""
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(api_versions_request(0x4EA1_7800))
            payload = ResponseReader(sock).next_response(deadline)
    except (OSError, MalformedResponse) as error:
        return False, f"ApiVersions v3 on a fresh connection failed: {error!r}"
    if payload is None:
        return False, "the broker closed a fresh connection instead of answering ApiVersions v3"
    if correlation_id_of(payload) != 0x4EA1_7800:
        return False, f"ApiVersions v3 answered with correlation id {correlation_id_of(payload)}"
    error_code, _ = parse_api_versions_response(payload)
    if error_code != 0:
        return False, f"ApiVersions v3 answered with error_code {error_code}"
    return True, ""


def supported_versions(host: str, port: int, timeout: float = 5.0) -> dict[int, tuple[int, int]]:
    deadline = time.monotonic() + timeout
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(api_versions_request(1))
        payload = ResponseReader(sock).next_response(deadline)
    if payload is None:
        raise ConnectionError("broker closed the connection instead of answering ApiVersions")
    error_code, ranges = parse_api_versions_response(payload)
    if error_code != 0:
        raise ConnectionError(f"ApiVersions error_code {error_code}")
    return ranges


# -- recording proxy ---------------------------------------------------------------------------------------------
class RecordingProxy:
    """Listens on a free 127.0.0.1 port and forwards every connection to 127.0.0.1:target_port. While `recording`
    is true, each complete client→broker request frame's body is appended to `frames`. Stop it with close()."""

    def __init__(self, target_port: int | None = None):
        self.target_port = target_port
        self.recording = True
        self.frames: list[bytes] = []
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port = self._listener.getsockname()[1]
        self._sockets: set[socket.socket] = set()
        self._closed = False
        self._thread = threading.Thread(target=self._accept_loop, name="recording-proxy", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def recorded(self) -> list[bytes]:
        with self._lock:
            return list(self.frames)

    def close(self) -> None:
        self._closed = True
        try:
            self._listener.close()
        except OSError:
            pass
        with self._lock:
            sockets = list(self._sockets)
            self._sockets.clear()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self._thread.join(timeout=5)

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.target_port is None:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._closed:
                    client.close()
                    upstream.close()
                    return
                self._sockets.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, requests: bool) -> None:
        buffer = bytearray()
        try:
            while True:
                data = source.recv(1 << 16)
                if not data:
                    break
                if requests and self.recording:
                    buffer += data
                    self._take_frames(buffer)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _take_frames(self, buffer: bytearray) -> None:
        while len(buffer) >= 4:
            length = struct.unpack_from(">i", buffer)[0]
            if length <= 0 or len(buffer) < 4 + length:
                return
            body = bytes(buffer[4:4 + length])
            del buffer[:4 + length]
            with self._lock:
                self.frames.append(body)


# -- corpus ------------------------------------------------------------------------------------------------------
def api_key_version(body: bytes) -> tuple[int, int]:
    return struct.unpack_from(">hh", body)


def select_corpus(bodies: list[bytes], per_version: int = 6, max_bytes: int = 64 * 1024) -> list[bytes]:
    """Recorded request bodies without duplicates (two bodies differing only in correlation id are one), at most
    `per_version` per (api key, api version) spread over their sizes, none larger than `max_bytes`; ordered by
    api key and version."""
    seen: set[bytes] = set()
    groups: dict[tuple[int, int], list[bytes]] = collections.defaultdict(list)
    for body in bodies:
        if len(body) < 8 or len(body) > max_bytes:
            continue
        normalized = body[:4] + b"\0\0\0\0" + body[8:]
        if normalized in seen:
            continue
        seen.add(normalized)
        groups[api_key_version(body)].append(body)
    corpus = []
    for key in sorted(groups):
        group = sorted(groups[key], key=len)
        if len(group) > per_version:
            group = [group[round(i * (len(group) - 1) / (per_version - 1))] for i in range(per_version)]
        corpus.extend(group)
    return corpus


# -- mutations ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Mutant:
    index: int
    description: str
    source: tuple[int, int]  # (api key, api version) of the recorded frame it came from
    data: bytes              # exactly the bytes to write, length prefix included
    # True when the length prefix matches the bytes after it: the broker answers or closes. False when it does
    # not (the broker waits for more bytes, or reads the rest as another frame): the sender half-closes after it.
    complete: bool


VARINT_BOMBS = (
    b"\xff\xff\xff\xff\x0f",                      # u32 max as an unsigned varint
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # u64 max
    b"\xff" * 10,                                 # never terminates within 10 bytes
)
INT16_VALUES = (0, 0xFFFF, 0x7FFF)
INT32_VALUES = (0, 0xFFFFFFFF, 0x7FFFFFFF)
KINDS = ("bitflip", "int16", "int32", "varint", "truncate", "append", "api_swap", "length")
# Frame sizes a truncation tries one by one before it picks random ones.
TRUNCATE_EVERY_OFFSET_BELOW = 64


class Mutator:
    """The i-th mutant cycles through the corpus, then through KINDS: every (frame, kind) pair comes up once
    every len(corpus) * len(KINDS) mutants, and its n-th turn takes the n-th step of a systematic walk
    (every 2- and 4-byte position with each special value, every truncation offset below 64, ...) before
    falling back to random choices. The walk order is shuffled per frame, by the seed."""

    def __init__(self, corpus: list[bytes], seed: int):
        if not corpus:
            raise ValueError("empty corpus")
        self.corpus = corpus
        self.seed = seed
        self.keys = sorted({api_key_version(body)[0] for body in corpus})
        self.versions = sorted({api_key_version(body)[1] for body in corpus})
        self._positions: dict[tuple[int, int], list[int]] = {}
        self._lock = threading.Lock()

    def _shuffled_positions(self, frame_index: int, width: int) -> list[int]:
        key = (frame_index, width)
        with self._lock:
            positions = self._positions.get(key)
            if positions is None:
                positions = list(range(max(1, len(self.corpus[frame_index]) - width + 1)))
                random.Random(f"{self.seed}/positions/{frame_index}/{width}").shuffle(positions)
                self._positions[key] = positions
        return positions

    def mutant(self, index: int) -> Mutant:
        frame_index = index % len(self.corpus)
        kind = KINDS[(index // len(self.corpus)) % len(KINDS)]
        step = index // (len(self.corpus) * len(KINDS))
        body = self.corpus[frame_index]
        rng = random.Random(f"{self.seed}/{index}")
        description, data, complete = getattr(self, f"_{kind}")(body, frame_index, step, rng)
        return Mutant(index, f"{kind} {description}", api_key_version(body), data, complete)

    # Each returns (description, bytes to send, complete).
    def _bitflip(self, body: bytes, frame_index: int, step: int, rng: random.Random):
        mutated = bytearray(body)
        bits = sorted(rng.randrange(len(body) * 8) for _ in range(rng.choice((1, 1, 2, 3, 8))))
        for bit in bits:
            mutated[bit // 8] ^= 0x80 >> (bit % 8)
        return f"bits={bits}", frame(bytes(mutated)), True

    def _int(self, body: bytes, frame_index: int, step: int, rng: random.Random, width: int, specials: tuple):
        positions = self._shuffled_positions(frame_index, width)
        choices = len(specials) + 1
        position = positions[(step // choices) % len(positions)]
        pick = step % choices
        value = specials[pick] if pick < len(specials) else rng.randrange(1 << (8 * width))
        mutated = bytearray(body)
        mutated[position:position + width] = value.to_bytes(width, "big")
        return f"at={position} value={value:#x}", frame(bytes(mutated[:len(body)])), True

    def _int16(self, body, frame_index, step, rng):
        return self._int(body, frame_index, step, rng, 2, INT16_VALUES)

    def _int32(self, body, frame_index, step, rng):
        return self._int(body, frame_index, step, rng, 4, INT32_VALUES)

    def _varint(self, body: bytes, frame_index: int, step: int, rng: random.Random):
        bomb = rng.choice(VARINT_BOMBS + (b"\x80" * rng.randint(10, 64),))
        position = rng.randrange(4, len(body) + 1) if len(body) > 4 else len(body)
        if rng.random() < 0.5:
            mutated = body[:position] + bomb + body[position:]
            how = "insert"
        else:
            mutated = body[:position] + bomb + body[position + len(bomb):]
            how = "replace"
        return f"{how} at={position} bytes={bomb[:12].hex()}{'...' if len(bomb) > 12 else ''}", frame(mutated), True

    def _truncate(self, body: bytes, frame_index: int, step: int, rng: random.Random):
        systematic = min(TRUNCATE_EVERY_OFFSET_BELOW, len(body))
        if step < 2 * systematic:
            size, fixed = step // 2, step % 2 == 0
        else:
            size = rng.randrange(systematic, len(body)) if len(body) > systematic else rng.randrange(len(body))
            fixed = rng.random() < 0.5
        if fixed:
            return f"to={size} prefix=fixed", frame(body[:size]), True
        return f"to={size} prefix=unfixed({len(body)})", struct.pack(">i", len(body)) + body[:size], False

    def _append(self, body: bytes, frame_index: int, step: int, rng: random.Random):
        junk = rng.choice((
            bytes(rng.randrange(256) for _ in range(rng.randint(1, 64))),
            rng.choice(VARINT_BOMBS),
            bytes(rng.randint(1, 32)),
            b"\xff" * rng.randint(1, 32),
        ))
        if rng.random() < 0.5:
            return f"junk={junk.hex()} prefix=fixed", frame(body + junk), True
        return f"junk={junk.hex()} prefix=unfixed", frame(body) + junk, False

    def _api_swap(self, body: bytes, frame_index: int, step: int, rng: random.Random):
        api_key, api_version = api_key_version(body)
        what = rng.choice(("key", "version", "both"))
        if what in ("key", "both"):
            api_key = rng.choice(self.keys) if rng.random() < 0.7 else rng.randrange(-32768, 32768)
        if what in ("version", "both"):
            api_version = rng.choice(self.versions) if rng.random() < 0.7 else rng.randrange(-32768, 32768)
        mutated = struct.pack(">hh", api_key, api_version) + body[4:]
        return f"{what} -> key={api_key} version={api_version}", frame(mutated), True

    def _length(self, body: bytes, frame_index: int, step: int, rng: random.Random):
        lengths = (0, -1, -(2**31), INT32_MAX, len(body) + 1, len(body) - 1, DEFAULT_SOCKET_REQUEST_MAX_BYTES,
                   DEFAULT_SOCKET_REQUEST_MAX_BYTES + 1, rng.randrange(-(2**31), 2**31))
        length = lengths[step % len(lengths)]
        return f"prefix={length} body={len(body)}", struct.pack(">i", length) + body, length == len(body)


INIT_PRODUCER_ID = 22
COORDINATOR_LOAD_IN_PROGRESS_ERROR = 14


def init_producer_id(bootstrap: str, correlation_id: int, timeout: float = 30) -> tuple[int, int, int]:
    """InitProducerId v1 (no transactional id) sent straight to one node: (error_code, producer_id, epoch).
    Retried while the node answers COORDINATOR_LOAD_IN_PROGRESS, as Kafka does until its first producer-id block
    arrives from the controller (clients retry it too)."""
    host, port = bootstrap.split(":")
    body = request_header(INIT_PRODUCER_ID, 1, correlation_id, "skein-test", flexible=False)
    body += struct.pack(">h", -1) + struct.pack(">i", 60_000)  # transactional_id null, transaction_timeout_ms
    deadline = time.monotonic() + timeout
    while True:
        with socket.create_connection((host, int(port)), timeout=timeout) as sock:
            sock.sendall(frame(body))
            payload = ResponseReader(sock).next_response(deadline)
        assert payload is not None, f"{bootstrap} closed the connection instead of answering InitProducerId"
        got_correlation_id, _throttle, error_code, producer_id, epoch = struct.unpack_from(">iihqh", payload)
        assert got_correlation_id == correlation_id
        if error_code != COORDINATOR_LOAD_IN_PROGRESS_ERROR or time.monotonic() > deadline:
            return error_code, producer_id, epoch
        time.sleep(0.2)
