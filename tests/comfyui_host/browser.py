"""A headless Chromium driven over the DevTools protocol on a pipe (standard library only): open a page, evaluate
JavaScript in it. The host tests use it to load the UI workflows into ComfyUI's real frontend."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time


def _above_nine(fd: int) -> int:
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


class Browser:
    """`chromium --headless --remote-debugging-pipe`: commands in on fd 3, replies out on fd 4 (JSON + NUL)."""

    def __init__(self, executable: str):
        self.profile = tempfile.mkdtemp(prefix="a124-chromium-")
        to_chrome, self._write = os.pipe()
        self._read, from_chrome = os.pipe()
        # bash maps them onto fds 3 and 4 (dash reads only one-digit fds); were either already 3 or 4, the
        # first redirection would overwrite the other. Move both above 9 first.
        to_chrome, from_chrome = (_above_nine(fd) for fd in (to_chrome, from_chrome))
        # WebGL (Preview 3D's three.js viewer) through SwiftShader on the CPU; no background connections (the
        # machine's network is closed).
        flags = ["--headless", "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
        flags += ["--no-first-run", "--remote-debugging-pipe", "--disable-background-networking"]
        flags += ["--disable-component-update", "--disable-sync"]
        command = " ".join([executable, *flags, f"--user-data-dir={self.profile}", "--window-size=1600,1000"])
        self.proc = subprocess.Popen(
            ["bash", "-c", f"exec {command} 3<&{to_chrome} 4>&{from_chrome}"],
            pass_fds=(to_chrome, from_chrome),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome)
        os.close(from_chrome)
        self._next_id, self._buffer, self.session = 0, b"", None

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        end = time.time() + timeout
        while time.time() < end:
            while b"\0" not in self._buffer:
                chunk = os.read(self._read, 1 << 16)
                if not chunk:
                    raise RuntimeError(f"Chromium closed the pipe (exit {self.proc.poll()})")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
        raise TimeoutError(f"{method}: no reply in {timeout} s")

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", {"url": url})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]

    def evaluate(self, expression: str, timeout: float = 120):
        """The JSON value of `expression` (awaited when it is a promise); raises with the page's exception."""
        params = {"expression": expression, "awaitPromise": True, "returnByValue": True, "timeout": timeout * 1000}
        result = self.send("Runtime.evaluate", params, self.session, timeout=timeout + 10)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise RuntimeError(details.get("exception", {}).get("description") or details.get("text"))
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 120):
        end = time.time() + timeout
        while time.time() < end:
            try:
                value = self.evaluate(expression, timeout=30)
            except RuntimeError:
                value = None
            if value:
                return value
            time.sleep(0.5)
        raise TimeoutError(f"{expression!r} stayed false for {timeout} s")

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.send("Browser.close", timeout=10)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._write)
        os.close(self._read)
        shutil.rmtree(self.profile, ignore_errors=True)
