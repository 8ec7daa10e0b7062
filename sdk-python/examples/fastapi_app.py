"""A FastAPI service reading flags through Flagwire (walked through in sdk-python/README.md).

    pip install './sdk-python[fastapi]' uvicorn
    FLAGWIRE_URL=http://127.0.0.1:7070 FLAGWIRE_TOKEN=$SDK_TOKEN \
        uvicorn fastapi_app:app --app-dir sdk-python/examples --port 8000
    curl -H 'x-user-id: user-42' http://127.0.0.1:8000/checkout

Every request is measured by the middleware and attributed to the variants of the flags the
handler read, so the server's usage metrics compare `on` and `off` with no code in handlers.
`?simulate_error=true` makes the new checkout fail with a 500, to see errors reach the metrics.
"""

import os
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from flagwire import AsyncClient, Context
from flagwire.fastapi import (
    FlagwireMiddleware,
    RequestFlags,
    flags_dependency,
    flagwire_lifespan,
)

client = AsyncClient(
    os.environ.get("FLAGWIRE_URL", "http://127.0.0.1:7070"),
    os.environ["FLAGWIRE_TOKEN"],
    bootstrap_file=os.environ.get("FLAGWIRE_BOOTSTRAP_FILE"),
)


def context_of(request: Request) -> Context:
    """Who the flags are evaluated for: here, the user id and plan from headers."""
    return Context(
        request.headers.get("x-user-id", ""),
        {"plan": request.headers.get("x-plan", "free")},
    )


Flags = Annotated[RequestFlags, Depends(flags_dependency(client, context_of))]

app = FastAPI(lifespan=flagwire_lifespan(client))
app.add_middleware(FlagwireMiddleware)


@app.get("/checkout")
async def checkout(flags: Flags, simulate_error: bool = False) -> dict[str, str]:
    if flags.get_bool("new-checkout", False):
        if simulate_error:
            raise RuntimeError("the new checkout failed")
        return {"checkout": "new"}
    return {"checkout": "classic"}


@app.get("/banner")
def banner(flags: Flags) -> dict[str, str]:
    # A sync handler runs in the thread pool; its reads are attributed to the request too.
    return {"banner": flags.get_str("banner-text", "Welcome!")}
