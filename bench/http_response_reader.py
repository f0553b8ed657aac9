"""Incremental HTTP/1.1 response reader for the bench's small Python clients.

Just enough HTTP to find where a keep-alive response ends: Content-Length,
chunked transfer coding, and body-less statuses. Not a validating parser.
"""


class ProtocolError(Exception):
    pass


class ResponseReader:
    def __init__(self, head_request=False):
        self.buf = bytearray()
        self.head_request = head_request

    def feed(self, data):
        """Adds received bytes; returns the statuses of the responses completed."""
        self.buf += data
        done = []
        while True:
            status = self._take_one()
            if status is None:
                return done
            if status >= 200:  # 1xx interim responses are skipped
                done.append(status)

    def _take_one(self):
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > 65536:
                raise ProtocolError("response head too long")
            return None
        head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        parts = head[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"bad status line {head[0]!r}")
        status = int(parts[1])
        length, chunked = None, False
        for line in head[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value.strip())
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        body_start = end + 4
        if status < 200 or status in (204, 304) or self.head_request:
            del self.buf[:body_start]
            return status
        if chunked:
            stop = self._chunked_end(body_start)
            if stop is None:
                return None
            del self.buf[:stop]
            return status
        if length is None:
            raise ProtocolError("response without Content-Length on a keep-alive connection")
        if len(self.buf) - body_start < length:
            return None
        del self.buf[:body_start + length]
        return status

    def _chunked_end(self, pos):
        buf = self.buf
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                return None
            size = int(bytes(buf[pos:eol]).split(b";")[0].strip() or b"0", 16)
            pos = eol + 2
            if size == 0:
                # Trailers (if any) end with an empty line.
                while True:
                    eol = buf.find(b"\r\n", pos)
                    if eol < 0:
                        return None
                    if eol == pos:
                        return eol + 2
                    pos = eol + 2
            if len(buf) < pos + size + 2:
                return None
            pos += size + 2
