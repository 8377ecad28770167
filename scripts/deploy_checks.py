"""Checks of scripts/check-deploy that need a YAML or JSON parser (run by the deploy venv's python).

  deploy_checks.py checkov-summary REPORT.json FRAMEWORK
      prints checkov's counts and every failed check; exits 1 on a failure, a parsing
      error, or a run that checked nothing.
  deploy_checks.py env-names RENDERED.yaml... --sources DIR...
      every variable our containers get (ConfigMap keys and env entries) must be one a
      binary reads: an `env = "NAME"` of a clap flag in the sources, or one read by a
      library (RUST_LOG, OTEL_*). clap ignores unknown variables, so a misspelt one
      would silently leave a default in force.
"""

import json
import pathlib
import re
import sys

import yaml

# Read by tracing-subscriber's EnvFilter and by the OpenTelemetry SDK, not by clap.
LIBRARY_VARIABLES = re.compile(r"^(RUST_LOG|OTEL_[A-Z_]+)$")
# Containers running our binaries, by image name.
OUR_IMAGES = re.compile(r"(^|/)(identity-service|scim-adapter|identityctl)([:@]|$)")


def checkov_summary(report_path, framework):
    with open(report_path, encoding="utf-8") as report:
        reports = json.load(report)
    reports = reports if isinstance(reports, list) else [reports]
    counts = {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0}
    failed = []
    for one in reports:
        # A run that found nothing to check reports its counts at the top level.
        summary = one.get("summary", one)
        for key in counts:
            counts[key] += summary.get(key, 0)
        failed += one.get("results", {}).get("failed_checks", [])
    for check in failed:
        print(f"  FAILED {check['check_id']} {check['check_name']}: "
              f"{check['resource']} ({check['file_path']})")
    print(f"  checkov {framework}: {counts['passed']} passed, {counts['failed']} failed, "
          f"{counts['skipped']} suppressed with a reason, "
          f"{counts['parsing_errors']} parsing errors")
    return 1 if failed or counts["parsing_errors"] or counts["passed"] == 0 else 0


def flag_variables(source_dirs):
    names = set()
    for directory in source_dirs:
        for path in pathlib.Path(directory).rglob("*.rs"):
            names.update(re.findall(r'env\s*=\s*"([A-Z0-9_]+)"', path.read_text(encoding="utf-8")))
    return names


def pod_specs(obj):
    spec = obj.get("spec") or {}
    if obj["kind"] == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    template = spec.get("template")
    return [template.get("spec", {})] if template else []


def env_names(rendered_paths, source_dirs):
    known = flag_variables(source_dirs)
    objects = []
    for path in rendered_paths:
        with open(path, encoding="utf-8") as rendered:
            objects += [(path, obj) for obj in yaml.safe_load_all(rendered) if obj]
    # ConfigMaps our containers load with envFrom, by name and namespace.
    config_maps = {(obj["metadata"].get("namespace"), obj["metadata"]["name"]): obj.get("data") or {}
                   for _, obj in objects if obj["kind"] == "ConfigMap"}
    unknown = []
    checked = 0
    for path, obj in objects:
        namespace = obj["metadata"].get("namespace")
        for pod in pod_specs(obj):
            for container in pod.get("containers", []) + pod.get("initContainers", []):
                if not OUR_IMAGES.search(container.get("image", "")):
                    continue
                names = [entry["name"] for entry in container.get("env", [])]
                for source in container.get("envFrom", []):
                    name = (source.get("configMapRef") or {}).get("name")
                    names += list(config_maps.get((namespace, name), {}))
                for name in names:
                    checked += 1
                    if name not in known and not LIBRARY_VARIABLES.match(name):
                        unknown.append(f"  {path}: {obj['kind']}/{obj['metadata']['name']} "
                                       f"container {container['name']}: {name}")
    for line in unknown:
        print(line)
    if unknown:
        print("  the variables above are read by no binary (no clap `env = ...`)")
        return 1
    print(f"  {checked} variables of our containers, each read by a binary")
    return 0 if checked else 1


def main(argv):
    if len(argv) == 3 and argv[0] == "checkov-summary":
        return checkov_summary(argv[1], argv[2])
    if len(argv) >= 4 and argv[0] == "env-names" and "--sources" in argv:
        split = argv.index("--sources")
        return env_names(argv[1:split], argv[split + 1:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
