"""A hostile API on 127.0.0.1 for the hardening tests: bombs, endless pages, token thieves.

A stdlib ``ThreadingHTTPServer`` (not the sandbox's FastAPI app) because these answers must be
exactly what an attacker would send: gzip that inflates a thousand times, a ZIP whose member
claims its size, a 307 on the token endpoint. The same server is reachable as ``127.0.0.1``
and as ``localhost``: two origins, so that what crosses from one to the other can be seen in
``captured``.
"""

from __future__ import annotations

import gzip
import io
import json
import threading
import zipfile
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MB = 1024 * 1024


def zip_of(name: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr(name, data)
    return out.getvalue()


def json_array(records: int) -> bytes:
    """A JSON document ``{"items": [...]}`` of distinct records (compresses ~10x, not 1000x)."""
    parts = [
        json.dumps({"id": f"P{i:08d}", "name": f"Product {i * 7919 % 1000003}", "n": i})
        for i in range(records)
    ]
    return ('{"items": [' + ", ".join(parts) + "]}").encode()


class HostileServer:
    def __init__(self) -> None:
        self.captured: dict[str, list[dict]] = defaultdict(list)
        self.files: dict[str, tuple[bytes, dict]] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                server.handle(self)

            def do_POST(self) -> None:
                server.handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.other = f"http://localhost:{self.port}"  # another origin, same server
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()

    def reset(self) -> None:
        self.captured.clear()

    # --- answers ---------------------------------------------------------------------------

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length).decode("utf-8", "replace") if length else ""
        seen = {
            "host": h.headers.get("Host", ""),
            "headers": {k.lower(): v for k, v in h.headers.items()},
            "query": query,
            "body": body,
        }
        self.captured[parts.path].append(seen)
        route = parts.path
        if route in self.files:
            data, headers = self.files[route]
            return self.send(h, data, headers=headers)
        if route == "/echo":
            return self.send_json(h, {"headers": seen["headers"], "items": [{"id": "e1"}]})
        if route == "/values":  # three variables of ``n`` values each
            n = int(query.get("n", "2500"))
            return self.send_json(h, {k: list(range(n)) for k in ("a", "b", "c")})
        if route == "/item":
            return self.send_json(h, {"items": [{"id": f"{query}"}]})
        if route == "/clamped":  # pages past the last answer the last page again
            page = min(int(query.get("page", "1")), 3)
            items = [{"id": f"p{page}-{i}"} for i in range(10)]
            return self.send_json(h, {"page": int(query.get("page", "1")), "items": items})
        if route == "/token-redirect":
            return self.send(h, b"", status=307, headers={"Location": f"{self.other}/capture"})
        if route == "/login":
            return self.send_json(h, {"session": "sess-8f2c1a9e-77"})
        if route == "/paged":  # page 1 links to page 2 on another origin
            if query.get("page") == "2":
                return self.send_json(h, {"items": [{"id": "b"}]})
            link = f"{self.other}/paged?page=2"
            return self.send_json(h, {"items": [{"id": "a"}], "next": link})
        if route == "/file-elsewhere":
            return self.send_json(h, {"url": f"{self.other}/files/data.jsonl"})
        if route == "/poll":
            return self.send_json(h, {"status": "pending"})
        return self.send_json(h, {"ok": True})

    def send_json(self, h, data, status: int = 200) -> None:
        self.send(h, json.dumps(data).encode(), status, {"Content-Type": "application/json"})

    def send(self, h, data: bytes, status: int = 200, headers: dict | None = None) -> None:
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    # --- files the tests put up ------------------------------------------------------------

    def put(self, path: str, data: bytes, **headers: str) -> str:
        self.files[path] = (data, {k.replace("_", "-"): v for k, v in headers.items()})
        return f"{self.url}{path}"

    def put_gzip_bomb(self, path: str, inflated: int) -> str:
        """``inflated`` bytes of zeros, sent gzip-encoded (about a thousandth on the wire)."""
        data = gzip.compress(b"0" * inflated, compresslevel=9)
        return self.put(path, data, Content_Encoding="gzip", Content_Type="text/csv")
