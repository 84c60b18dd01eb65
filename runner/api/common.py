"""What every router of the REST API shares: the runner it serves, the bearer token check,
finding an import by id, name or external key, and reading a JSON body by hand (so that a
config's errors name the field the way the studio and the CLI do)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

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


def caller(
    r: RunnerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> str:
    """The token's name; every route but OPTIONS needs one."""
    token = credentials.credentials if credentials else ""
    name = verify(r.store, token)
    if name is None:
        raise Unauthorized("a valid 'Authorization: Bearer <token>' header is required")
    return name


AUTH = [Depends(caller)]


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
