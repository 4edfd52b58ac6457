#!/usr/bin/python3
"""The OpenZFS guest's command agent: one per virtio-serial port (a udev rule starts it).

It runs one command at a time, exec'ing argv directly (no shell, so quoting is exact), and
streams stdin, stdout and stderr as frames over the port. A frame is one type byte, a 4-byte
big-endian length and the payload.

  host -> guest: E argv (each item a 4-byte length and its bytes)   start a command
                 I bytes                                            stdin
                 C                                                  stdin closed
                 K signal number (ASCII)                            signal the command's group
                 D                                                  the host is done with it
  guest -> host: H                                                  agent (re)started, idle
                 O bytes / R bytes                                  stdout / stderr
                 X exit status (ASCII; 128+N for signal N)          the command ended

After X the agent drops frames until D (stdin frames may still be in flight), then waits for
the next E. Stdin is written to the command from the port's reading loop, so a command that
neither reads its stdin nor exits holds back a K sent after that stdin (known limit: the
host only sends K after stdin when its client goes away mid-stream). The host side (openzfs_vm_broker.ts) keeps the port open for good: a virtio-serial
port drops bytes in flight when the host closes it.
"""

import os
import struct
import subprocess
import sys
import threading
import time

CHUNK = 65536
ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LC_ALL": "C",
}


class Port:
    def __init__(self, path):
        self.fd = os.open(path, os.O_RDWR)
        self.lock = threading.Lock()
        self.buf = b""

    def send(self, kind, payload=b""):
        data = kind + struct.pack(">I", len(payload)) + payload
        with self.lock:
            view = memoryview(data)
            while view:
                try:
                    n = os.write(self.fd, view)
                except OSError:
                    # The host is not connected: nobody to tell.
                    time.sleep(0.2)
                    return
                view = view[n:]

    def _read(self, n):
        while len(self.buf) < n:
            data = os.read(self.fd, max(CHUNK, n - len(self.buf)))
            if not data:
                # No host connected: a virtio port reads as end of file. Wait for one.
                time.sleep(0.2)
                continue
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        head = self._read(5)
        (length,) = struct.unpack(">I", head[1:5])
        return head[0:1], self._read(length) if length else b""


def parse_argv(payload):
    argv, at = [], 0
    while at < len(payload):
        (n,) = struct.unpack(">I", payload[at : at + 4])
        argv.append(payload[at + 4 : at + 4 + n])
        at += 4 + n
    return argv


class Session:
    """One command: its child, the pumps of its output, and the exit frame."""

    def __init__(self, port, argv, agent):
        self.port = port
        self.agent = agent
        self.stdin_open = True
        try:
            self.child = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=ENV,
                cwd="/root",
                start_new_session=True,
            )
        except OSError as err:
            name = argv[0].decode(errors="replace") if argv else ""
            self.child = None
            port.send(b"R", f"zvm-agent: cannot run '{name}': {err.strerror}\n".encode())
            agent.finish(127 if isinstance(err, FileNotFoundError) else 126)
            return
        pumps = [
            threading.Thread(target=self.pump, args=(self.child.stdout, b"O"), daemon=True),
            threading.Thread(target=self.pump, args=(self.child.stderr, b"R"), daemon=True),
        ]
        for p in pumps:
            p.start()
        threading.Thread(target=self.wait, args=(pumps,), daemon=True).start()

    def pump(self, stream, kind):
        fd = stream.fileno()
        while True:
            data = os.read(fd, CHUNK)
            if not data:
                break
            self.port.send(kind, data)
        stream.close()

    def wait(self, pumps):
        code = self.child.wait()
        for p in pumps:
            p.join()
        self.close_stdin()
        self.agent.finish(128 - code if code < 0 else code)

    def stdin(self, data):
        if not self.stdin_open or self.child is None:
            return
        try:
            self.child.stdin.write(data)
            self.child.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            self.stdin_open = False

    def close_stdin(self):
        if self.stdin_open and self.child is not None:
            self.stdin_open = False
            try:
                self.child.stdin.close()
            except OSError:
                pass

    def kill(self, sig):
        if self.child is None:
            return
        try:
            os.killpg(self.child.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


class Agent:
    def __init__(self, path):
        self.port = Port(path)
        self.lock = threading.Lock()
        self.state = "idle"  # idle -> running -> draining (until D) -> idle
        self.session = None

    def finish(self, status):
        with self.lock:
            self.state = "draining"
        self.port.send(b"X", str(status).encode())

    def serve(self):
        self.port.send(b"H")
        while True:
            kind, payload = self.port.recv()
            with self.lock:
                state = self.state
            if kind == b"E" and state == "idle":
                with self.lock:
                    self.state = "running"
                self.session = Session(self.port, parse_argv(payload), self)
            elif kind == b"D":
                if state == "draining":
                    with self.lock:
                        self.state = "idle"
                    self.session = None
            elif state == "running" and self.session is not None:
                if kind == b"I":
                    self.session.stdin(payload)
                elif kind == b"C":
                    self.session.close_stdin()
                elif kind == b"K":
                    self.session.kill(int(payload or b"9"))
            # Anything else is a frame of a session that has ended: dropped.


if __name__ == "__main__":
    Agent(sys.argv[1]).serve()
