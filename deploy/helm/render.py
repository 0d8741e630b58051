#!/usr/bin/env python3
"""Lints and renders the swarmer Helm chart offline, without a helm binary.

helm-python-sdk (PyPI) binds Helm's own Go SDK (v4) through a shared
library in its wheel: `helm lint --strict` and `helm template` as function
calls, with no cluster and no network. deploy/check.sh installs it pinned
and runs this; crates/swarmer/tests/helm_chart.rs runs it too, to read the
rendered objects.

    render.py CHART OUT_DIR VALUES.yaml...   lint with each values file, then
        render it as the release `swarmer` in namespace `swarmer` into
        OUT_DIR/<values name>.yaml (all objects, one document each) and
        OUT_DIR/<values name>.NOTES.txt;
    render.py --refused CHART VALUES.yaml...  each values file must be
        refused, with the message its `# expect: TEXT` line names.

Exit status 0 when every step went as expected, 1 otherwise (each failure
is printed), 2 on bad usage or when helm-python-sdk is not installed.
"""

import json
import re
import sys
from pathlib import Path

try:
    import helm_python as helm
    import yaml
except ImportError as e:  # pragma: no cover - reported, not raised
    print(f"render.py: {e}: pip install helm-python-sdk PyYAML", file=sys.stderr)
    sys.exit(2)

RELEASE = "swarmer"
NAMESPACE = "swarmer"
# The Kubernetes versions deploy/check.sh validates against.
KUBE_VERSIONS = ("v1.30.0", "v1.37.0")
SEVERITY = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}


def load_values(path: Path) -> dict:
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path}: the values must be a mapping")
    return values


def lint(chart: Path, values: dict, label: str) -> list[str]:
    """`helm lint --strict` for each Kubernetes version: the problems found."""
    problems = []
    for kube in KUBE_VERSIONS:
        report = helm.lint(chart, values, strict=True, kube_version=kube)
        for m in report.get("messages", []):
            if m["severity"] >= 2:
                problems.append(
                    f"{label}: helm lint (Kubernetes {kube}): "
                    f"{SEVERITY.get(m['severity'])} {m['path']}: {m['error']}"
                )
        problems += [f"{label}: helm lint (Kubernetes {kube}): {e}" for e in report.get("errors", [])]
    return problems


def render(chart: Path, values: dict) -> tuple[list[dict], str]:
    """The chart's objects, in template order, and its NOTES."""
    with helm.Chart.load(chart) as c:
        manifests = c.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    objects, notes = [], ""
    for template in sorted(manifests):
        text = manifests[template]
        if template.endswith("NOTES.txt"):
            notes = text
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                objects.append(doc)
    return objects, notes


def render_all(chart: Path, out: Path, files: list[Path]) -> int:
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in files:
        label = path.name
        try:
            values = load_values(path)
            problems = lint(chart, values, label)
            objects, notes = render(chart, values)
        except (helm.HelmError, ValueError) as e:
            problems, objects, notes = [f"{label}: {e}"], [], ""
        if not objects and not problems:
            problems = [f"{label}: the chart rendered no object"]
        for p in problems:
            print(f"FAIL: {p}", file=sys.stderr)
            failed = 1
        if problems:
            continue
        stem = path.stem
        (out / f"{stem}.yaml").write_text(yaml.safe_dump_all(objects, sort_keys=False))
        (out / f"{stem}.NOTES.txt").write_text(notes)
        kinds = ", ".join(f"{o['kind']}/{o['metadata']['name']}" for o in objects)
        print(f"ok: {label} lints clean and renders {len(objects)} objects: {kinds}")
    return failed


def expect_refused(chart: Path, files: list[Path]) -> int:
    failed = 0
    for path in files:
        match = re.search(r"^# expect: (.+)$", path.read_text(), re.M)
        if not match:
            print(f"FAIL: {path.name} has no '# expect: TEXT' line", file=sys.stderr)
            failed = 1
            continue
        expected = match.group(1).strip()
        try:
            render(chart, load_values(path))
        except helm.HelmError as e:
            if expected in str(e):
                print(f"ok: {path.name} is refused: ...{expected}...")
                continue
            print(f"FAIL: {path.name} is refused, but not with {expected!r}: {e}", file=sys.stderr)
        else:
            print(f"FAIL: {path.name} renders, but should be refused ({expected!r})", file=sys.stderr)
        failed = 1
    return failed


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[0] == "--refused":
        return expect_refused(Path(argv[1]), [Path(a) for a in argv[2:]])
    if len(argv) >= 3 and not argv[0].startswith("-"):
        return render_all(Path(argv[0]), Path(argv[1]), [Path(a) for a in argv[2:]])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
