"""Deployment files, checked as far as this machine can (no Docker engine, no cluster): the compose file's
structure, the images' entry point against `sla serve`'s parser, the Kubernetes manifests rendered by
kustomize, and the Grafana dashboard's queries against a live server's metric names."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from server.app import DRAIN_S
from sla.cli import build_parser
from tests.helpers.paths import ROOT

DEPLOY = ROOT / "deploy"


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def dockerfile_json(path: Path, instruction: str) -> list[str]:
    line = next(row for row in path.read_text().splitlines() if row.startswith(instruction + " "))
    return json.loads(line[len(instruction) + 1:])


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.cpu"])
def test_images_run_sla_serve_as_non_root_with_a_health_check_and_a_model_volume(name):
    path = ROOT / name
    text = path.read_text()
    assert dockerfile_json(path, "ENTRYPOINT") == ["sla", "serve"]
    assert dockerfile_json(path, "VOLUME") == ["/models"]
    assert re.search(r"^USER (?!root)\w+", text, re.M)
    assert "HEALTHCHECK" in text and "/health" in text and "--start-period=" in text
    assert ("'.[gpu]'" if name == "Dockerfile" else "'.[cpu]'") in text


def test_the_entry_point_accepts_what_compose_and_kubernetes_pass():
    statefulset = next(d for d in rendered_or_raw() if d["kind"] == "StatefulSet")
    args = statefulset["spec"]["template"]["spec"]["containers"][0]["args"]
    parsed = build_parser().parse_args(["serve", *args])
    assert parsed.model == "qwen2.5-coder-0.5b-instruct"


def test_every_variable_in_env_example_reaches_sla_serve(monkeypatch):
    compose_only = {"SLA_PUBLISH"}  # read by docker compose itself
    names = set(re.findall(r"^#?\s*(SLA_[A-Z_]+)=(.*)$", (DEPLOY / "env.example").read_text(), re.M))
    assert len(names) >= 6
    for name, value in names:
        if name in compose_only:
            continue
        default = vars(build_parser().parse_args(["serve"]))
        monkeypatch.setenv(name, value)
        changed = {k for k, v in vars(build_parser().parse_args(["serve"])).items() if v != default[k]}
        monkeypatch.delenv(name)
        assert changed or value == str(default.get(name[4:].lower())), f"{name} is not read by sla serve"


def test_compose_gpu_service_reserves_gpus_and_both_profiles_share_name_volume_health_and_key():
    c = compose()
    gpu, cpu = c["services"]["sla-gpu"], c["services"]["sla-cpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and devices[0]["capabilities"] == ["gpu"]
    assert isinstance(devices[0]["count"], int)  # docker-compose 1.29 refuses an interpolated (string) count
    assert gpu["ipc"] == "host" and cpu["shm_size"]
    assert gpu["profiles"] == ["gpu"] and cpu["profiles"] == ["cpu"]
    for s in (gpu, cpu):
        assert s["networks"]["default"]["aliases"] == ["sla"]  # Prometheus scrapes `sla:8000` either way
        assert "/health" in " ".join(s["healthcheck"]["test"]) and s["healthcheck"]["start_period"].endswith("s")
        assert "models:/models" in s["volumes"] and s["env_file"] == ".env"
        assert (DEPLOY / s["build"]["context"] / s["build"]["dockerfile"]).is_file()
        # the stop waits for the server's drain and its engine's shutdown (~12 s measured) before SIGKILL
        assert int(s["stop_grace_period"].rstrip("s")) >= DRAIN_S + 20 and s["restart"] == "unless-stopped"
    assert set(c["volumes"]) >= {"models", "prometheus", "grafana"}


def test_compose_mounts_exist_and_prometheus_scrapes_the_server_with_the_key():
    c = compose()
    for service in c["services"].values():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), source
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    job = prom["scrape_configs"][0]
    assert job["static_configs"][0]["targets"] == ["sla:8000"] and job["metrics_path"] == "/metrics"
    prometheus = c["services"]["prometheus"]
    # the key reaches Prometheus from .env, written where the scrape config reads it (compose 1.29 and v2 alike)
    assert prometheus["env_file"] == ".env" and job["authorization"]["credentials_file"] in " ".join(
        prometheus["entrypoint"]) and "$$SLA_API_KEY" in " ".join(prometheus["entrypoint"])


def rendered_or_raw() -> list[dict]:
    """The manifests as kustomize renders them (kubectl's built-in kustomize), else the raw files."""
    folder = DEPLOY / "kubernetes"
    if shutil.which("kubectl"):
        out = subprocess.run(["kubectl", "kustomize", str(folder)], check=True, capture_output=True, text=True).stdout
        return list(yaml.safe_load_all(out))
    files = yaml.safe_load((folder / "kustomization.yaml").read_text())["resources"]
    return [d for f in files for d in yaml.safe_load_all((folder / f).read_text())]


def test_kubernetes_manifests_pass_the_kubernetes_schema_offline():
    """Every manifest (kustomize-rendered where kubectl is here) against Kubernetes 1.32's OpenAPI schema,
    strictly (an unknown field fails): `kubectl apply --dry-run=client` needs a cluster for that, this not."""
    import kubernetes_validate

    docs = rendered_or_raw()
    assert {d["kind"] for d in docs} >= {"StatefulSet", "Deployment", "Service", "Role", "RoleBinding"}
    for doc in docs:
        kubernetes_validate.validate(doc, "1.32.0", strict=True)
    typo = {**docs[0], "metadata": {**docs[0]["metadata"], "nmae": "x"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, "1.32.0", strict=True)


@pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl (with kustomize) is not installed")
def test_kubernetes_manifests_render_and_agree_with_each_other():
    docs = {(d["kind"], d["metadata"]["name"]): d for d in rendered_or_raw()}
    namespace = yaml.safe_load((DEPLOY / "kubernetes" / "kustomization.yaml").read_text())["namespace"]
    assert all(d["metadata"]["namespace"] == namespace for d in docs.values())
    server = docs[("StatefulSet", "sla-server")]["spec"]["template"]
    container = server["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    env = {e["name"]: e for e in container["env"]}
    assert env["SLA_TENSOR_PARALLEL_SIZE"]["value"] == str(container["resources"]["limits"]["nvidia.com/gpu"])
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/health"
    assert server["spec"]["terminationGracePeriodSeconds"] >= DRAIN_S + 20  # its drain, then its engine's shutdown

    router = docs[("Deployment", "sla-router")]["spec"]["template"]["spec"]
    args = dict(a.lstrip("-").split("=", 1) for a in router["containers"][0]["args"])
    key, value = args["k8s-label-selector"].split("=")
    assert server["metadata"]["labels"][key] == value
    assert args["k8s-namespace"] == namespace and args["k8s-port"] == "8000"
    assert args["routing-logic"] == "session"
    secret = env["SLA_API_KEY"]["valueFrom"]["secretKeyRef"]
    assert router["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"] == secret
    assert docs[("RoleBinding", "sla-router")]["subjects"][0]["name"] == router["serviceAccountName"]
    assert "watch" in docs[("Role", "sla-router")]["rules"][0]["verbs"]


def dashboard_metrics() -> set[str]:
    board = json.loads((DEPLOY / "grafana" / "dashboards" / "sla-server.json").read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
    return set(re.findall(r"\b((?:sla|vllm):[a-z_:]+)", " ".join(exprs)))


def test_the_committed_dashboard_is_what_its_generator_writes():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_dashboard", DEPLOY / "grafana" / "make_dashboard.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = json.loads((DEPLOY / "grafana" / "dashboards" / "sla-server.json").read_text())
    assert committed == module.dashboard()
    assert len(dashboard_metrics()) >= 10


@pytest.mark.engine
def test_every_metric_the_dashboard_queries_is_exported_by_a_live_server(server):
    with server.http() as h:
        page = h.get("/metrics").text
    families = set(re.findall(r"^# TYPE (\S+) (\w+)", page, re.M))
    names = {n for n, _ in families} | {f"{n}{s}" for n, kind in families if kind == "histogram"
                                        for s in ("_bucket", "_sum", "_count")}
    missing = sorted(dashboard_metrics() - names)
    assert not missing, f"the dashboard queries metrics the server does not export: {missing}"
