"""What every router of the REST API shares: the runner it serves, the bearer token check and
the role each operation needs, finding an import by id, name or external key, and reading a JSON
body by hand (so that a config's errors name the field the way the studio and the CLI do)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from studio.access import Who, acting, require
from studio.apitokens import verify
from studio.config.store import ConfigStore
from studio.errors import ConfigError, NotFound, StudioError
from studio.runhistory import RunHistory


class Unauthorized(StudioError):
    pass


@dataclass
class Runner:
    """The runner the API serves: its store, its daemon (whose queue runs what the API starts)
    and how long a synchronous call waits."""

    store: ConfigStore
    daemon: Any
    synchron_timeout: float

    @property
    def history(self) -> RunHistory:
        return self.daemon.history


def runner(request: Request) -> Runner:
    return request.app.state.runner


RunnerDep = Annotated[Runner, Depends(runner)]

bearer = HTTPBearer(
    auto_error=False,
    description="A token from `python -m runner api-token create NAME`",
)


async def caller(
    r: RunnerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> Who:
    """Who the token acts for; every route but OPTIONS needs one.

    Async on purpose: it runs in the request's own task, so ``acting`` set here is what the
    endpoint sees, and what a sync endpoint's thread (which starts from a copy of this
    context) and ``asyncio.to_thread`` see too; the store's audit trail records the user. A
    sync dependency would set it in a threadpool copy that the endpoint never sees."""
    token = credentials.credentials if credentials else ""
    who = await run_in_threadpool(verify, r.store, token)  # reads the store: off the loop
    if who is None:
        raise Unauthorized("a valid 'Authorization: Bearer <token>' header is required")
    acting.set(who)  # this request's task only: the next request starts from a clean context
    return who


CallerDep = Annotated[Who, Depends(caller)]


def _needs(role: str):
    """A dependency refusing (403, ``Forbidden``) a caller whose role is below ``role``; the
    sentence names the call, so a script's log says what it may not do."""

    async def check(request: Request, who: CallerDep) -> Who:
        return require(who, role, f"call {request.method} {request.url.path}")

    check.__name__ = f"needs_{role}"
    check.role = role  # type: ignore[attr-defined]  # read by openapi() to document 403
    return check


needs_viewer, needs_editor, needs_admin = _needs("viewer"), _needs("editor"), _needs("admin")
# One list per role, for a router's or a route's ``dependencies``: reads need a viewer, every
# change (and every start of a run) an editor, deleting a connection an admin.
VIEWER = [Depends(needs_viewer)]
EDITOR = [Depends(needs_editor)]
ADMIN = [Depends(needs_admin)]


def job_ref(store: ConfigStore, ref: str):
    """An import by id, name or external key."""
    try:
        return store.get("jobs", ref)
    except NotFound:
        for job in store.list("jobs"):
            if job.external_key and job.external_key.casefold() == ref.casefold():
                return job
        raise NotFound(f"No import called {ref!r} (id, name or external key)") from None


def dump(model) -> dict:
    return model.model_dump(mode="json", by_alias=True)


async def read_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return await request.json()
    except ValueError as e:
        raise ConfigError([f"the body is not valid JSON: {e}"]) from None


async def object_body(request: Request) -> dict:
    data = await read_body(request)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(["the body must be a JSON object"])
    return data
