# GPU image: the official vLLM 0.32 image (CUDA, torch, vllm) + this package.
# Not built on the development machine (no Docker engine there); the deployment issue (#7) adds the
# CPU variant, compose file and healthcheck tests.
FROM vllm/vllm-openai:v0.32.0

WORKDIR /app
COPY pyproject.toml README.md ./
COPY sla_engine ./sla_engine
COPY server ./server
RUN pip install --no-cache-dir '.[gpu]'

RUN useradd --create-home --uid 1000 sla && mkdir -p /models && chown sla /models
USER sla
ENV SLA_CACHE_DIR=/models SLA_HOST=0.0.0.0 SLA_PORT=8000
VOLUME ["/models"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s --retries=3 \
  CMD python3 -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health').status != 200)"
ENTRYPOINT ["sla", "serve"]
