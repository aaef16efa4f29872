"""deploy/: the compose file, the instance and workspace files and the Helm values, checked structurally.

There is no Docker engine or Kubernetes here: the files are parsed and cross-checked (services, volumes,
dependencies, env), the instance file is validated by Dagster's own schema, jutsu.yaml by jutsu's, and
the Helm values against the keys of Dagster's chart schema (helm/dagster/schema in dagster-io/dagster).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from jutsu_pipeline.config import parse_config

DEPLOY = Path(__file__).parents[1] / "deploy"


def _load(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def test_compose_services_volumes_and_dependencies() -> None:
    compose = _load("docker-compose.yaml")
    services = compose["services"]
    assert set(services) == {"postgres", "code", "webserver", "daemon"}
    declared_volumes = set(compose["volumes"])
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for dependency in service.get("depends_on", {}):
            assert dependency in services, (name, dependency)
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            assert source.startswith("./") and (DEPLOY / source).exists() or source in declared_volumes, (name, mount)
    for name in ("code", "webserver", "daemon"):
        env = services[name]["environment"]
        assert env["JUTSU_RATE_BUDGET"].startswith("/data/") and "/data" in [v.split(":")[1] for v in services[name]["volumes"]]
        assert env["DAGSTER_POSTGRES_HOST"] == "postgres"
    assert services["code"]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (DEPLOY / services["code"]["build"]["context"]).resolve() == DEPLOY.parent  # the repository root
    assert "4000" in services["code"]["command"]
    assert _load("workspace.yaml")["load_from"][0]["grpc_server"] == {"host": "code", "port": 4000,
                                                                   "location_name": "jutsu_pipeline"}
    # No secret in the repository: passwords come from deploy/.env (git-ignored).
    text = (DEPLOY / "docker-compose.yaml").read_text()
    assert re.findall(r"PASSWORD: (\S+)", text) and all(v.startswith("${POSTGRES_PASSWORD:?") or v == "*jutsu-env"
                                                         for v in re.findall(r"PASSWORD: (\S+)", text))
    assert "deploy/.env" in (DEPLOY.parent / ".gitignore").read_text().split()


def test_dockerfile_copies_what_compose_expects() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    for needed in ("deploy/dagster.yaml", "deploy/workspace.yaml", "deploy/jutsu.yaml", 'pip install ".[deploy]"'):
        assert needed in dockerfile


def test_instance_file_passes_dagsters_schema(monkeypatch) -> None:  # noqa: ANN001
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config_schema

    for var in ("DAGSTER_POSTGRES_HOST", "DAGSTER_POSTGRES_USER", "DAGSTER_POSTGRES_PASSWORD", "DAGSTER_POSTGRES_DB"):
        monkeypatch.setenv(var, "x")
    result = process_config(dagster_instance_config_schema(), _load("dagster.yaml"))
    assert result.success, result.errors
    assert result.value["run_launcher"]["class"] == "DefaultRunLauncher"
    assert result.value["run_monitoring"]["enabled"] is True


def test_deploy_jutsu_yaml_is_a_valid_ducklake_config() -> None:
    config = parse_config(_load("jutsu.yaml"), DEPLOY / "jutsu.yaml")
    target = config.lake_target()
    assert config.is_lake and target.postgres and target.data_path == "/data/lake"
    assert "${POSTGRES_PASSWORD}" in target.catalog  # expanded only when connecting


# Keys of Dagster's chart schema (helm/dagster/schema/schema/charts/...: run_launcher.py K8sRunLauncherConfig,
# user_deployments.py UserDeployment, daemon.py Daemon/RunCoordinator, postgresql.py PostgreSQL).
K8S_RUN_LAUNCHER = {"image", "imagePullPolicy", "jobNamespace", "loadInclusterConfig", "kubeconfigFile",
                    "envConfigMaps", "envSecrets", "envVars", "volumeMounts", "volumes", "labels",
                    "failPodOnRunFailure", "resources", "schedulerName", "securityContext", "runK8sConfig"}
RUN_K8S_CONFIG = {"containerConfig", "podSpecConfig", "podTemplateSpecMetadata", "jobSpecConfig", "jobMetadata"}
USER_DEPLOYMENT = {"name", "image", "dagsterApiGrpcArgs", "codeServerArgs", "includeConfigInLaunchedRuns", "port",
                   "env", "envConfigMaps", "envSecrets", "annotations", "nodeSelector", "affinity", "tolerations",
                   "podSecurityContext", "securityContext", "resources", "livenessProbe", "readinessProbe",
                   "startupProbe", "labels", "volumeMounts", "volumes", "schedulerName"}
POSTGRESQL = {"image", "enabled", "postgresqlHost", "postgresqlUsername", "postgresqlPassword", "postgresqlDatabase",
              "postgresqlParams", "postgresqlScheme", "service"}
TOP_LEVEL = {"dagsterWebserver", "dagster-user-deployments", "postgresql", "generatePostgresqlPasswordSecret",
             "runLauncher", "dagsterDaemon", "computeLogManager", "scheduler", "pythonLogs", "ingress",
             "imagePullSecrets", "serviceAccount", "global", "retention", "additionalInstanceConfig", "migrate",
             "telemetry", "busybox", "flower", "rabbitmq", "redis", "generateCeleryConfigSecret"}


def test_helm_values_use_the_charts_keys_and_the_k8s_run_launcher() -> None:
    values = _load("helm/values.yaml")
    assert set(values) <= TOP_LEVEL
    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher" and set(launcher["config"]) == {"k8sRunLauncher"}
    k8s = launcher["config"]["k8sRunLauncher"]
    assert set(k8s) <= K8S_RUN_LAUNCHER and set(k8s["runK8sConfig"]) <= RUN_K8S_CONFIG
    assert {"imagePullPolicy", "loadInclusterConfig", "envConfigMaps", "envSecrets", "envVars", "volumes",
            "volumeMounts"} <= set(k8s)  # required by the schema
    deployments = values["dagster-user-deployments"]["deployments"]
    for deployment in deployments:
        assert set(deployment) <= USER_DEPLOYMENT and {"name", "image", "port"} <= set(deployment)
        assert all(set(e) == {"name", "value"} for e in deployment["env"])
    assert set(values["postgresql"]) <= POSTGRESQL
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["type"] == "QueuedRunCoordinator" and set(coordinator["config"]) == {"queuedRunCoordinator"}
    mounts = {m["name"] for m in k8s["volumeMounts"]}
    assert mounts == {v["name"] for v in k8s["volumes"]}
    budget = next(e["value"] for e in deployments[0]["env"] if e["name"] == "JUTSU_RATE_BUDGET")
    assert any(budget.startswith(m["mountPath"] + "/") for m in k8s["volumeMounts"])  # shared by all run pods
