"""Websocket frames built once and written to many connections.

A frame of the live feed goes to up to thousands of websockets. Tornado's `WebSocketHandler.write_message`
builds the frame again for every connection and wraps each write in a coroutine task; measured on this kind
of machine, that is ~57 µs of CPU per connection and frame, `IOStream.write` ~25 µs, and a `send` on the
socket ~8 µs. So the frame is built once (`text_frame`) and `FrameWriter` sends it straight to the socket
when the connection's stream has nothing queued, and hands only what the kernel did not take to the stream
(`IOStream.write`, in order behind anything already queued), counting those bytes until the stream has written
them out: that count is what the slow-client rule looks at.
"""

from __future__ import annotations

import struct
from typing import Any

from tornado.iostream import IOStream, StreamClosedError


def text_frame(text: str) -> bytes:
    """A complete, unmasked websocket text frame (RFC 6455 5.2), as a server sends it."""
    data = text.encode()
    n = len(data)
    if n < 126:
        head = struct.pack("!BB", 0x81, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x81, 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 127, n)
    return head + data


class FrameWriter:
    """Writes complete frames to one websocket's stream; `unsent` is the bytes queued and not yet written out.

    `stream` is the connection's IOStream (Tornado's `WebSocketHandler.ws_connection.stream`). A TLS stream is
    written through `IOStream.write` only (its socket must not be written to directly).
    """

    __slots__ = ("stream", "socket", "unsent", "_queued")

    def __init__(self, stream: IOStream) -> None:
        self.stream = stream
        self.socket: Any = stream.socket if type(stream) is IOStream else None
        self.unsent = 0
        self._queued = 0

    def write(self, frame: bytes) -> None:
        """Send `frame` (or queue it behind what is already queued); StreamClosedError once the connection is gone."""
        stream = self.stream
        if stream.closed():
            raise StreamClosedError()
        sent = 0
        if self.socket is not None and not stream.writing():
            try:
                sent = self.socket.send(frame)
            except (BlockingIOError, InterruptedError):
                sent = 0  # the kernel's buffer is full: the stream queues the frame
            except OSError as exc:
                raise StreamClosedError(real_error=exc) from exc
            if sent == len(frame):
                return
        rest = memoryview(frame)[sent:] if sent else frame
        self._queued += len(rest)
        self.unsent += len(rest)
        queued = self._queued
        future = stream.write(rest)
        # The stream resolves a write's future once everything up to it is written out.
        future.add_done_callback(lambda f: self._written(f, queued))

    def _written(self, future: Any, queued: int) -> None:
        if not future.cancelled() and future.exception() is None:
            self.unsent = min(self.unsent, self._queued - queued)
