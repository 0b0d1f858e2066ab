"""The HTTP layer: an OpenAI-compatible API over `sla_engine` (which never imports this package)."""
