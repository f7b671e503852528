#!/usr/bin/env python3
"""A TCP proxy that adds a fixed latency to every response, for benchmarks.

    python3 benches/latency_proxy.py --upstream 127.0.0.1:8200 --delay-ms 25 \
        --port-file port.txt --log events.jsonl

Every chunk that comes back from the upstream server is passed on to the client
DELAY ms after it arrived, in order. The delay is scheduled from each chunk's
arrival time (not from when the previous chunk was sent), so it adds latency
without limiting throughput: one request/response round trip costs one DELAY,
however many bytes it carries and however many run at once. The client ->
server direction is forwarded at once. The client's TCP connection to the
proxy is local, so opening a connection costs no simulated round trip unless
--connect-delay-ms is given (which holds a new connection's traffic that long,
like a TCP handshake over the link).

--log FILE appends one JSON object per line (append mode, so truncating the
file between measurements is safe; flushed every 50 ms and at each close):
    {"ev": "open",    "conn": N, "t": SECONDS}
    {"ev": "request", "conn": N, "t": SECONDS, "method": "GET", "path": "/v1/..."}
                                  (AWS JSON calls add "op": the X-Amz-Target
                                  header, e.g. "secretsmanager.GetSecretValue")
    {"ev": "close",   "conn": N, "t": SECONDS, "requests": K, "chunks": C,
     "late_max_ms": L}
    {"ev": "answer",  "conn": N, "t": SECONDS, "bytes": B}   (with --trace: a
                                  chunk from the server, before the delay)
t is the wall clock (seconds since the epoch, comparable with bash's
$EPOCHREALTIME). Requests are counted by parsing the HTTP/1.x request heads
the client sends (Content-Length bodies are skipped; header values, and so
tokens, are never logged, but for X-Amz-Target, an operation name). late_max_ms is how far behind
schedule the proxy delivered a chunk at worst (its own fidelity: it should stay
near 0; it grows when the machine is too busy to run the proxy on time).

Loopback addresses only; standard library only (asyncio protocols, no
threads).
"""

import argparse
import asyncio
import collections
import json
import os
import signal
import socket
import sys
import time

LOOPBACK = ("127.0.0.1", "::1", "localhost")


class Log:
    def __init__(self, path):
        self.file = open(path, "a") if path else None
        self.dirty = False

    def write(self, **event):
        if self.file:
            event["t"] = round(time.time(), 6)
            self.file.write(json.dumps(event) + "\n")
            self.dirty = True

    def flush(self):
        if self.file and self.dirty:
            self.file.flush()
            self.dirty = False


class RequestCounter:
    """Finds HTTP/1.x request heads in the client's byte stream."""

    def __init__(self, conn, log):
        self.conn, self.log = conn, log
        self.buf = b""
        self.skip = 0  # body bytes still to skip
        self.count = 0
        self.gave_up = False

    def feed(self, data):
        if self.gave_up:
            return
        if self.skip:
            n = min(self.skip, len(data))
            self.skip -= n
            data = data[n:]
        self.buf += data
        while not self.skip and self.buf:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > 1 << 16:
                    self.gave_up = True  # not HTTP/1 or a huge head: stop counting
                return
            head, self.buf = self.buf[:end].decode("latin-1"), self.buf[end + 4 :]
            lines = head.split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3 or not parts[2].startswith("HTTP/1"):
                self.gave_up = True
                self.log.write(ev="unparsed", conn=self.conn)
                return
            self.count += 1
            length, target = 0, None
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value.strip())
                elif name == "x-amz-target":
                    target = value.strip()  # an AWS operation name, not a credential
            event = dict(ev="request", conn=self.conn, method=parts[0], path=parts[1])
            if target:
                event["op"] = target
            self.log.write(**event)
            n = min(length, len(self.buf))
            self.buf = self.buf[n:]
            self.skip = length - n


def nodelay(transport):
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Proxy:
    def __init__(self, upstream, delay, connect_delay, log, trace):
        self.upstream, self.delay, self.connect_delay, self.log = upstream, delay, connect_delay, log
        self.trace = trace
        self.next_conn = 0


class Upstream(asyncio.Protocol):
    """The proxy's connection to the server: every chunk goes to the client
    after the delay."""

    def __init__(self, client):
        self.client = client

    def connection_made(self, transport):
        nodelay(transport)

    def data_received(self, data):
        if self.client.proxy.trace:
            self.client.proxy.log.write(ev="answer", conn=self.client.conn, bytes=len(data))
        self.client.deliver(data)

    def eof_received(self):
        self.client.deliver(None)
        return False

    def connection_lost(self, exc):
        self.client.deliver(None)


class Client(asyncio.Protocol):
    """One client connection."""

    def __init__(self, proxy):
        self.proxy = proxy
        self.loop = asyncio.get_running_loop()
        proxy.next_conn += 1
        self.conn = proxy.next_conn
        self.counter = RequestCounter(self.conn, proxy.log)
        self.transport = None
        self.up = None  # the upstream transport, once connected
        self.pending = []  # client bytes that arrived before it
        self.client_eof = False
        self.queue = collections.deque()  # (due, bytes or None) for the client
        self.timer = None
        self.closed = False
        self.chunks = 0
        self.late_max = 0.0

    def connection_made(self, transport):
        self.transport = transport
        nodelay(transport)
        self.proxy.log.write(ev="open", conn=self.conn)
        if self.proxy.connect_delay:
            self.loop.call_later(self.proxy.connect_delay, self.connect)
        else:
            self.connect()

    def connect(self):
        host, port = self.proxy.upstream
        task = self.loop.create_task(self.loop.create_connection(lambda: Upstream(self), host, port))
        task.add_done_callback(self.connected)

    def connected(self, task):
        if self.closed:
            if not task.cancelled() and task.exception() is None:
                task.result()[0].close()
            return
        if task.cancelled() or task.exception() is not None:
            self.close()
            return
        self.up = task.result()[0]
        for data in self.pending:
            self.up.write(data)
        self.pending = []
        if self.client_eof and self.up.can_write_eof():
            self.up.write_eof()

    def data_received(self, data):
        self.counter.feed(data)
        if self.up is not None:
            self.up.write(data)
        else:
            self.pending.append(data)

    def eof_received(self):
        self.client_eof = True
        if self.up is not None and self.up.can_write_eof():
            self.up.write_eof()
        return True  # keep sending the delayed answers

    def connection_lost(self, exc):
        self.close()

    def deliver(self, data):
        """Schedules upstream bytes (None: end of stream) for DELAY from now."""
        if self.closed or (data is None and self.queue and self.queue[-1][1] is None):
            return
        self.queue.append((self.loop.time() + self.proxy.delay, data))
        if self.timer is None:
            self.timer = self.loop.call_at(self.queue[0][0], self.flush)

    def flush(self):
        self.timer = None
        now = self.loop.time()
        while self.queue and self.queue[0][0] <= now:
            due, data = self.queue.popleft()
            self.late_max = max(self.late_max, now - due)
            if data is None:
                self.close()
                return
            self.chunks += 1
            self.transport.write(data)
        if self.queue:
            self.timer = self.loop.call_at(self.queue[0][0], self.flush)

    def close(self):
        if self.closed:
            return
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
        self.queue.clear()
        self.transport.close()
        if self.up is not None:
            self.up.close()
        self.proxy.log.write(
            ev="close",
            conn=self.conn,
            requests=self.counter.count,
            chunks=self.chunks,
            late_max_ms=round(self.late_max * 1e3, 3),
        )
        self.proxy.log.flush()


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT to listen on (port 0: a free port)")
    parser.add_argument("--upstream", required=True, help="HOST:PORT of the server")
    parser.add_argument("--delay-ms", type=float, default=25.0, help="latency added to every response chunk (25)")
    parser.add_argument("--connect-delay-ms", type=float, default=0.0, help="latency of opening a connection (0)")
    parser.add_argument("--port-file", help="write the port listened on here once ready")
    parser.add_argument("--log", help="append connection and request events here (JSON lines)")
    parser.add_argument("--trace", action="store_true", help="also log every chunk the server sends (ev: answer)")
    args = parser.parse_args()

    listen_host, listen_port = args.listen.rsplit(":", 1)
    up_host, up_port = args.upstream.rsplit(":", 1)
    if listen_host not in LOOPBACK or up_host not in LOOPBACK:
        sys.exit("latency_proxy: loopback addresses only")
    log = Log(args.log)
    proxy = Proxy((up_host, int(up_port)), args.delay_ms / 1e3, args.connect_delay_ms / 1e3, log, args.trace)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Client(proxy), listen_host, int(listen_port), backlog=1024, reuse_address=True
    )
    port = server.sockets[0].getsockname()[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)

    def flush_log():
        log.flush()
        loop.call_later(0.05, flush_log)

    flush_log()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    log.flush()


if __name__ == "__main__":
    asyncio.run(main())
