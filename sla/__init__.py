"""The `sla` command (cli.py); the code it runs lives in `server`, `sla_engine` and `sla_pipeline`."""
