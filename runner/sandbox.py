"""The demo sandbox API: something real to import from, for new users and for the tests.

``python -m runner up`` serves it on 127.0.0.1:8765; the demo connection and jobs in
``configs/examples`` point at it. It has paginated products in five styles (and with nested
variants), suppliers, a product detail endpoint, an OAuth 2.0 token endpoint with a demo
client, an asynchronous export (POST to start it, poll its status, download the file), and
switches for the failures an importer must survive: 429 with Retry-After, 503, slow answers
and malformed JSON.

Credentials it accepts: OAuth 2.0 client ``demo-client`` / ``demo-secret`` (client credentials)
or user ``demo`` / ``demo`` (password grant), HTTP basic ``demo`` / ``demo``, bearer token
``demo-token``, or API key ``X-API-Key: demo-key`` (header or ``api_key`` query parameter).
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import secrets
import threading
import time
import zipfile
from dataclasses import dataclass, field
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Request, Response

CLIENT_ID, CLIENT_SECRET = "demo-client", "demo-secret"
USER, PASSWORD = "demo", "demo"
STATIC_TOKEN, API_KEY = "demo-token", "demo-key"


@dataclass
class Fault:
    """Answer ``status`` (with optional Retry-After) to the next ``times`` requests of a path."""

    status: int
    times: int
    retry_after: str | None = None
    body: str = ""


@dataclass
class SandboxState:
    products: int = 95
    token_ttl: int = 3600
    export_polls: int = 2  # status answers PENDING this many times, then AVAILABLE
    files_base: str = ""  # where file URLs point (default: the sandbox itself), e.g. a CDN
    tokens: dict[str, float] = field(default_factory=dict)
    exports: dict[str, int] = field(default_factory=dict)
    faults: dict[str, Fault] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.products, self.token_ttl, self.export_polls = 95, 3600, 2
            self.files_base = ""
            self.tokens.clear()
            self.exports.clear()
            self.faults.clear()
            self.hits.clear()


def product(i: int) -> dict:
    """Product ``i`` (1-based): deterministic, about 400 bytes of JSON."""
    return {
        "id": f"P{i:05d}",
        "title": f"Product {i}",
        "category": {"code": f"cat-{i % 7}", "label": f"Category {i % 7}"},
        "price": {"amount": round(5 + (i * 37 % 1000) / 10, 2), "currency": "EUR"},
        "stock": i * 13 % 50,
        "active": i % 5 != 0,
        "updatedAt": f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T08:00:00Z",
        "description": f"A sturdy demo product number {i}, made for importing.",
        "supplierId": f"S{1 + i % 4:03d}",
    }


def variants(i: int) -> list[dict]:
    """Product ``i``'s variants: 1 to 3 (``i % 3 + 1``), each with a sku but the second of
    product 7, whose missing sku makes a reject of a job that maps variants."""
    return [
        {"id": f"P{i:05d}-{n}", "name": f"Product {i} / {color}", "color": color}
        | ({} if (i, n) == (7, 2) else {"sku": f"SKU-{i:05d}-{n}"})
        for n, color in enumerate(["red", "blue", "green"][: i % 3 + 1], 1)
    ]


SUPPLIERS = [
    {
        "supplierId": f"S{i:03d}",
        "companyName": name,
        "email": f"orders@{name.lower()}.example",
        "country": country,
    }
    for i, (name, country) in enumerate(
        [("Acme", "FR"), ("Globex", "DE"), ("Initech", "US"), ("Umbrella", "GB")], 1
    )
]


def dumps(data: object, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(data), status, headers, media_type="application/json")


def page_of(state: SandboxState, start: int, count: int) -> list[dict]:
    return [product(i) for i in range(start + 1, min(start + count, state.products) + 1)]


def authorized(state: SandboxState, request: Request) -> bool:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        token = header[7:].strip()
        if token == STATIC_TOKEN:
            return True
        with state.lock:
            expiry = state.tokens.get(token)
        return expiry is not None and expiry > time.time()
    if header.lower().startswith("basic "):
        try:
            user, _, pw = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return (user, pw) == (USER, PASSWORD)
    key = request.headers.get("x-api-key") or request.query_params.get("api_key")
    return key == API_KEY


def _switches(app: FastAPI, state: SandboxState) -> None:
    """Faults set by the tests, ``?fail=``, ``?slow=`` and ``?malformed=`` on any URL, and
    credentials asked for on ``/api``."""

    @app.middleware("http")
    async def switches(request: Request, call_next):
        path = request.url.path
        with state.lock:
            state.hits[path] = state.hits.get(path, 0) + 1
            fault = state.faults.get(path)
            if fault and fault.times > 0:
                fault.times -= 1
            else:
                fault = None
        if fault:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return Response(fault.body or f"fault {fault.status}", fault.status, headers)
        q = request.query_params
        if "slow" in q:
            await asyncio.sleep(float(q["slow"]))
        if q.get("fail") in ("429", "503"):
            return Response("try later", int(q["fail"]), {"Retry-After": q.get("retry_after", "1")})
        if (path == "/api" or path.startswith("/api/")) and not authorized(state, request):
            return Response(
                json.dumps({"error": "unauthorized"}),
                401,
                {"WWW-Authenticate": "Bearer"},
                media_type="application/json",
            )
        if q.get("malformed"):
            return Response(
                '{"items": [{"id": "P00001", "title": "Unterminated',
                200,
                media_type="application/json",
            )
        return await call_next(request)


def _oauth(state: SandboxState) -> APIRouter:
    """The OAuth 2.0 token endpoint: client credentials and password grants."""
    router = APIRouter()

    @router.post("/oauth/token")
    async def token(request: Request) -> Response:
        form = dict((await request.form()).items())
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            client_id, _, client_secret = base64.b64decode(header[6:]).decode().partition(":")
        if (client_id, client_secret) != (CLIENT_ID, CLIENT_SECRET):
            return dumps(
                {"error": "invalid_client", "error_description": "Bad client credentials"}, 401
            )
        grant = form.get("grant_type")
        if grant == "password":
            if (form.get("username"), form.get("password")) != (USER, PASSWORD):
                return dumps(
                    {"error": "invalid_grant", "error_description": "Bad user password"}, 400
                )
        elif grant != "client_credentials":
            return dumps({"error": "unsupported_grant_type"}, 400)
        issued = secrets.token_urlsafe(16)
        with state.lock:
            state.tokens[issued] = time.time() + state.token_ttl
        return dumps(
            {
                "access_token": issued,
                "token_type": "Bearer",
                "expires_in": state.token_ttl,
                "scope": form.get("scope", ""),
            }
        )

    return router


def _products(state: SandboxState) -> APIRouter:
    """Products in five pagination styles, and one product's details."""
    router = APIRouter()

    @router.get("/api/products")
    def products_by_page(page: int = 1, size: int = 20) -> Response:
        size = max(1, min(size, 1000))
        total_pages = -(-state.products // size)
        return dumps(
            {
                "items": page_of(state, (page - 1) * size, size),
                "page": page,
                "size": size,
                "total_pages": total_pages,
                "total": state.products,
            }
        )

    @router.get("/api/products-offset")
    def products_by_offset(offset: int = 0, limit: int = 20) -> Response:
        return dumps(
            {
                "data": {"results": page_of(state, offset, max(1, min(limit, 1000)))},
                "total": state.products,
            }
        )

    @router.get("/api/products-cursor")
    def products_by_cursor(cursor: str = "", limit: int = 20) -> Response:
        start = int(base64.urlsafe_b64decode(cursor.encode()).decode()) if cursor else 0
        items = page_of(state, start, max(1, min(limit, 1000)))
        end = start + len(items)
        nxt = base64.urlsafe_b64encode(str(end).encode()).decode() if end < state.products else None
        return dumps({"items": items, "next_cursor": nxt}, headers={"X-Next-Cursor": nxt or ""})

    @router.get("/api/products-links")
    def products_by_link(request: Request, page: int = 1, size: int = 20) -> Response:
        items = page_of(state, (page - 1) * size, size)
        headers, links = {}, {"next": None}
        if page * size < state.products:
            nxt = str(request.url.replace_query_params(page=page + 1, size=size))
            headers["Link"] = f'<{nxt}>; rel="next"'
            links["next"] = nxt
        return dumps({"items": items, "links": links}, headers=headers)

    @router.get("/api/products-next")
    def products_with_next(
        request: Request, page: int = 1, size: int = 20, end: str = "null"
    ) -> Response:
        """Page numbers with a ``next`` URL, as Django REST framework answers. ``end`` is how the
        last page says nothing follows, as APIs differ: ``null`` (DRF), ``missing`` (the key
        is left out, as HubSpot's ``paging`` is), ``string``, ``list`` or ``object`` (empty)."""
        size = max(1, min(size, 1000))
        body: dict = {"count": state.products, "results": page_of(state, (page - 1) * size, size)}
        if page * size < state.products:
            body["next"] = str(request.url.include_query_params(page=page + 1))
        elif end != "missing":
            body["next"] = {"string": "", "list": [], "object": {}}.get(end)
        return dumps(body)

    @router.get("/api/products/{product_id}")
    def product_detail(product_id: str) -> Response:
        try:
            i = int(product_id.lstrip("P"))
        except ValueError:
            i = 0
        if not 1 <= i <= state.products:
            return dumps({"error": f"no product {product_id}"}, 404)
        return dumps({"product": product(i) | {"details": {"weight_kg": i % 9 + 0.5}}})

    return router


def _variants(state: SandboxState) -> APIRouter:
    """Products with a nested array, for jobs that write a second entity from it."""
    router = APIRouter()

    @router.get("/api/products-variants")
    def products_with_variants(page: int = 1, size: int = 20) -> Response:
        """Page numbers, as /api/products, each product with its ``variants`` array."""
        size = max(1, min(size, 1000))
        items = [
            p | {"variants": variants(int(p["id"][1:]))}
            for p in page_of(state, (page - 1) * size, size)
        ]
        return dumps({"items": items, "page": page, "total_pages": -(-state.products // size)})

    return router


def _tools(state: SandboxState) -> APIRouter:
    """The index, suppliers, and what tests of headers, redirects and several files need."""
    router = APIRouter()

    @router.get("/api")
    def index() -> Response:
        return dumps(
            {
                "name": "Connector Studio demo sandbox",
                "endpoints": [
                    "/api/products",
                    "/api/products-offset",
                    "/api/products-cursor",
                    "/api/products-links",
                    "/api/products-next",
                    "/api/products-variants",
                    "/api/products/{id}",
                    "/api/suppliers",
                    "/api/exports",
                ],
            }
        )

    @router.api_route("/api/echo", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def echo(request: Request) -> Response:
        """What the request looked like: for checking headers, query and body rendering."""
        body = (await request.body()).decode("utf-8", "replace")
        return dumps(
            {
                "method": request.method,
                "query": list(request.query_params.multi_items()),
                "headers": dict(request.headers),
                "body": body,
            }
        )

    @router.get("/api/file-index")
    def file_index(request: Request, count: int = 2, format: str = "jsonl") -> Response:
        """Several ready files at once: for downloads that fetch every URL a response lists."""
        base = state.files_base or str(request.base_url)
        return dumps(
            {"files": [{"url": f"{base}files/part-{i}.{format}"} for i in range(1, count + 1)]}
        )

    @router.get("/api/redirect")
    def redirect(to: str) -> Response:
        """302 to ``to``: like a download that answers with a signed URL elsewhere."""
        return Response(status_code=302, headers={"Location": to})

    @router.get("/public/echo")
    async def public_echo(request: Request) -> Response:
        """The headers as received, without asking for credentials (another "host")."""
        return dumps({"headers": dict(request.headers), "query": str(request.url.query)})

    @router.get("/api/suppliers")
    def suppliers() -> Response:
        return dumps({"suppliers": SUPPLIERS, "count": len(SUPPLIERS)})

    return router


def _exports(state: SandboxState) -> APIRouter:
    """An asynchronous export: start it, poll it, download its file."""
    router = APIRouter()

    @router.post("/api/exports")
    async def start_export(request: Request) -> Response:
        export_id = secrets.token_hex(6)
        fmt = request.query_params.get("format", "csv")
        with state.lock:
            state.exports[f"{export_id}.{fmt}"] = 0
        return dumps({"exportId": f"{export_id}.{fmt}", "status": "PENDING"}, 202)

    @router.get("/api/exports/{export_id}")
    def export_status(request: Request, export_id: str) -> Response:
        with state.lock:
            if export_id not in state.exports:
                return dumps({"error": f"no export {export_id}"}, 404)
            state.exports[export_id] += 1
            ready = state.exports[export_id] > state.export_polls
        if not ready:
            return dumps({"exportId": export_id, "status": "PENDING"})
        base = state.files_base or str(request.base_url)
        url = base + f"files/{export_id}?" + urlencode({"token": "signed"})
        return dumps({"exportId": export_id, "status": "AVAILABLE", "file": {"url": url}})

    @router.get("/files/{name}")
    def export_file(name: str) -> Response:
        fmt = name.rsplit(".", 1)[-1]
        rows = [product(i) for i in range(1, state.products + 1)]
        flat = [
            {
                "id": r["id"],
                "title": r["title"],
                "category": r["category"]["code"],
                "price": r["price"]["amount"],
                "stock": r["stock"],
            }
            for r in rows
        ]
        if fmt == "json":
            return dumps({"products": rows})
        if fmt == "jsonl":
            return Response(
                "\n".join(json.dumps(r) for r in rows) + "\n", media_type="application/x-ndjson"
            )
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(flat[0]), delimiter=";")
        writer.writeheader()
        writer.writerows(flat)
        if fmt == "zip":
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
                z.writestr("products-1.csv", text.getvalue())
                z.writestr("products-2.jsonl", json.dumps(rows[0]) + "\n")
            return Response(buf.getvalue(), media_type="application/zip")
        return Response(text.getvalue(), media_type="text/csv")

    return router


def _control(state: SandboxState) -> APIRouter:
    """What the tests steer the sandbox with."""
    router = APIRouter()

    @router.get("/_sandbox/stats")
    def stats() -> Response:
        with state.lock:
            return dumps({"hits": dict(state.hits), "tokens": len(state.tokens)})

    @router.post("/_sandbox/settings")
    async def settings(request: Request) -> Response:
        body = await request.json()
        with state.lock:
            for key in ("products", "token_ttl", "export_polls"):
                if key in body:
                    setattr(state, key, int(body[key]))
            if "files_base" in body:
                state.files_base = str(body["files_base"])
            if body.get("revoke_tokens"):
                state.tokens.clear()
            if "fault" in body:
                f = body["fault"]
                state.faults[f["path"]] = Fault(
                    int(f["status"]),
                    int(f.get("times", 1)),
                    f.get("retry_after"),
                    f.get("body", ""),
                )
        return dumps({"ok": True})

    @router.post("/_sandbox/reset")
    def reset() -> Response:
        state.reset()
        return dumps({"ok": True})

    return router


def create_app(state: SandboxState | None = None) -> FastAPI:
    state = state or SandboxState()
    app = FastAPI(title="Connector Studio demo sandbox", docs_url="/docs")
    app.state.sandbox = state
    _switches(app, state)
    for part in (_oauth, _products, _variants, _tools, _exports, _control):
        app.include_router(part(state))
    return app


def serve(host: str = "127.0.0.1", port: int = 8765) -> None:
    import uvicorn

    uvicorn.run(create_app(), host=host, port=port, log_level="warning")
