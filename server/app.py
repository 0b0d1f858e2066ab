"""The FastAPI application: routes, middleware, error handlers and the engine's lifetime."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sse_starlette import EventSourceResponse
from starlette.background import BackgroundTask

from server import chat
from server.admission import Admission, Overloaded
from server.config import ServerConfig
from server.errors import APIError, engine_dead, install_handlers, parse_body
from server.metrics import ServerMetrics
from server.middleware import ApiKeyMiddleware, BodySizeLimitMiddleware, RequestCounterMiddleware
from server.protocol import ChatCompletion, ChatCompletionRequest, ModelCard, ModelList
from sla_engine.engine import Engine, EngineConfig, start_engines

T = TypeVar("T")
log = logging.getLogger(__name__)
WATCHDOG_S = 2.0  # how often the server checks that its engines are alive
# On SIGTERM: how long a stream admitted before it may run on before it is cut (its branches aborted). Without it
# sse-starlette ends every open stream the moment uvicorn sees the signal (found by deploy/smoke.sh).
DRAIN_S = 30.0


async def watch_engines(engines: list[Engine], on_death: Callable[[], None]) -> None:
    """Calls `on_death` once when an engine has died. A dead engine never comes back, so the server stops (as
    vLLM's own does) and whatever supervises it — Compose's `restart:`, Kubernetes — starts a fresh one."""
    while all(e.healthy for e in engines):
        await asyncio.sleep(WATCHDOG_S)
    log.error("the vLLM engine died; stopping the server (exit code 1) so that its supervisor restarts it")
    on_death()


async def until_disconnect(request: Request, work: Awaitable[T], metrics: ServerMetrics) -> T:
    """Runs `work`, cancelling it (and so aborting its generation) if the client goes away first."""

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    task, watcher = asyncio.ensure_future(work), asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        metrics.disconnects.inc()
        raise APIError(499, "Client closed the request.", code="client_closed_request")
    finally:
        task.cancel()
        watcher.cancel()


def create_app(settings: ServerConfig, engine_config: EngineConfig, target_config: EngineConfig | None = None,
               on_engine_death: Callable[[], None] = lambda: None) -> FastAPI:
    """`target_config`: the second engine of the `rsd` strategy (a larger model with the same tokenizer).
    `on_engine_death`: called once if an engine dies (`sla serve` stops the server then)."""
    metrics = ServerMetrics()
    admission = Admission(settings.max_concurrent_requests, settings.max_live_branches)
    metrics.live_branches.set_function(lambda: admission.branches)
    metrics.live_branches_cap.set(settings.max_live_branches)
    metrics.admitted_requests.set_function(lambda: admission.requests)
    metrics.admitted_requests_cap.set(settings.max_concurrent_requests)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        engine, target = await start_engines(engine_config, target_config)
        watchdog = asyncio.ensure_future(watch_engines([e for e in (engine, target) if e], on_engine_death))
        try:
            app.state.engine, app.state.target = engine, target
            app.state.started = int(time.time())
            metrics.bind(engine, target)
            yield
        finally:
            watchdog.cancel()
            engine.shutdown()
            if target:
                target.shutdown()

    app = FastAPI(title="sla-server", version="0.1.0", lifespan=lifespan)
    install_handlers(app)
    # The middleware added last runs first: the key is checked before the body is read.
    app.add_middleware(BodySizeLimitMiddleware, limit=settings.max_body_bytes)
    if settings.api_key:
        app.add_middleware(ApiKeyMiddleware, api_key=settings.api_key)

    app.add_middleware(RequestCounterMiddleware, counter=metrics.requests)

    def healthy(request: Request) -> bool:
        target: Engine | None = request.app.state.target
        return request.app.state.engine.healthy and (target is None or target.healthy)

    def engine_of(request: Request) -> Engine:
        if not healthy(request):
            raise engine_dead()
        return request.app.state.engine

    @app.post(
        "/v1/chat/completions",
        response_model=ChatCompletion,
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/ChatCompletionRequest"}}}}},
    )
    async def chat_completions(request: Request):
        arrived = time.perf_counter()
        body = parse_body(ChatCompletionRequest, await request.body())
        engine = engine_of(request)
        prepared = chat.prepare(body, engine, settings.search, settings.max_tokens_cap, request.app.state.target)
        try:
            ticket = admission.admit(prepared.search.max_live_branches)
        except Overloaded as e:
            metrics.rejected.labels(e.reason).inc()
            raise APIError(429, str(e), type="rate_limit_error", code="rate_limit_exceeded",
                           headers={"Retry-After": "1"}) from None
        if body.stream:
            started = False

            async def events():
                nonlocal started
                started = True
                try:
                    async for event in chat.stream(engine, prepared, body.include_usage, metrics, arrived):
                        yield event
                finally:
                    ticket.release()

            def after() -> None:
                """Runs however the response ends, also when the stream never started (a client gone at once:
                nothing was generated, but the client did go away)."""
                if not started:
                    metrics.disconnects.inc()
                ticket.release()

            return EventSourceResponse(events(), sep="\n", ping=15, background=BackgroundTask(after),
                                       shutdown_grace_period=DRAIN_S)
        try:
            with metrics.timed():
                return JSONResponse(await until_disconnect(request, chat.complete(engine, prepared, metrics), metrics))
        finally:
            ticket.release()

    def openapi() -> dict:
        """FastAPI's schema plus the request body's models: the route reads its body itself (to answer bad
        JSON in OpenAI's error shape), so FastAPI does not register them."""
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            body = ChatCompletionRequest.model_json_schema(ref_template="#/components/schemas/{model}")
            schema["components"]["schemas"].update(body.pop("$defs", {}), ChatCompletionRequest=body)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi

    @app.get("/v1/models", response_model=ModelList)
    async def models(request: Request) -> ModelList:
        engine: Engine = request.app.state.engine
        return ModelList(data=[ModelCard(id=engine.config.served_name, created=request.app.state.started)])

    @app.get("/health")
    async def health(request: Request) -> Response:
        if not healthy(request):
            return engine_dead().response()
        return JSONResponse({"status": "ok"})

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return app
