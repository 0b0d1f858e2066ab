# GPU image: the official vLLM 0.32 image (CUDA, torch, vllm) + this package with the `gpu` extra.
# CPU machines: Dockerfile.cpu. Compose file, Kubernetes manifests and what was (not) run: deploy/README.md.
ARG BASE_IMAGE=vllm/vllm-openai:v0.32.0
FROM ${BASE_IMAGE}

# deploy/ca/*.crt: extra CA certificates (a TLS-intercepting proxy's), added to the system bundle pip reads
COPY deploy/ca/ /usr/local/share/ca-certificates/sla/
RUN update-ca-certificates
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt
WORKDIR /app
COPY pyproject.toml README.md ./
COPY sla ./sla
COPY sla_engine ./sla_engine
COPY sla_pipeline ./sla_pipeline
COPY server ./server
# the repository's reward heads: `sla serve` loads the served model's own (heads/MODEL) unless told otherwise
COPY heads ./heads
RUN pip install --no-cache-dir '.[gpu]'

RUN useradd --create-home --uid 1000 sla && mkdir -p /models && chown sla /models
USER sla
# Model cache (packaged models are pulled here on first start): mount a volume to keep it.
ENV SLA_CACHE_DIR=/models SLA_HEADS_DIR=/app/heads SLA_HOST=0.0.0.0 SLA_PORT=8000
VOLUME ["/models"]
EXPOSE 8000
# /health answers 200 once the engine is up, 503 if it died; the first start pulls and converts the model.
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s --retries=3 \
  CMD python3 -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health').status != 200)"
# The base image's entry point is vLLM's own server; ours replaces it. Arguments after the image name are
# `sla serve` flags (e.g. --model qwen2.5-coder-1.5b-instruct --reward-head /heads/...).
ENTRYPOINT ["sla", "serve"]
