//! deploy/ is part of the product: the alert rules pass promtool's checks and unit tests,
//! the Operator's PrometheusRule carries exactly the same rules, every kustomization
//! renders, its core objects pass kubernetes-validate, and the Deployment is shaped as an
//! operator needs it (probes, non-root, read-only, limits, grace, token from a Secret).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} runs (tests/run-all.sh installs it): {e}"));
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

const RULES: &str = "deploy/overlays/plain-prometheus/hubsoak-rules.yaml";

#[test]
fn alert_rules_pass_promtool_checks_and_unit_tests() {
    let (ok, out) = run(Command::new("promtool")
        .args(["check", "rules", RULES])
        .current_dir(repo()));
    assert!(ok, "{out}");
    let (ok, out) = run(Command::new("promtool")
        .args(["test", "rules", "hubsoak-rules.test.yaml"])
        .current_dir(repo().join("deploy/overlays/plain-prometheus")));
    assert!(ok && out.contains("SUCCESS"), "{out}");
}

fn yaml(path: &Path) -> Value {
    serde_yaml::from_str(&std::fs::read_to_string(path).expect("readable")).expect("YAML")
}

#[test]
fn the_prometheus_rule_carries_exactly_the_plain_rules() {
    let plain = yaml(&repo().join(RULES));
    let crd = yaml(&repo().join("deploy/base/prometheusrule.yaml"));
    assert_eq!(crd["kind"], "PrometheusRule");
    assert_eq!(
        crd["spec"]["groups"], plain["groups"],
        "deploy/base/prometheusrule.yaml drifted from {RULES}"
    );
    // Each alert has a summary, a description and a runbook paragraph.
    let mut alerts = 0;
    for group in plain["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            if rule.get("alert").is_some() {
                alerts += 1;
                for key in ["summary", "description", "runbook"] {
                    let text = rule["annotations"][key].as_str().unwrap_or("");
                    assert!(text.len() > 20, "{:?} lacks a {key}", rule["alert"]);
                }
            }
        }
    }
    assert_eq!(alerts, 14);
}

/// `kubectl kustomize DIR`, split into objects.
fn render(dir: &str) -> (String, Vec<Value>) {
    let (ok, out) = run(Command::new("kubectl")
        .args(["kustomize", dir])
        .current_dir(repo()));
    assert!(ok, "kubectl kustomize {dir}: {out}");
    let objects = serde_yaml::Deserializer::from_str(&out)
        .map(|d| serde::Deserialize::deserialize(d).expect("a YAML object"))
        .collect();
    (out, objects)
}

/// [`render`] of an operator's own kustomization: `resources` (a directory of this
/// repository) with `deploy/components/{component}`.
fn render_with(resources: &str, component: &str) -> (String, Vec<Value>) {
    let target = repo().join("target");
    std::fs::create_dir_all(&target).unwrap();
    let dir = tempfile::tempdir_in(&target).unwrap();
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        format!("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../../{resources}\ncomponents:\n  - ../../deploy/components/{component}\n"),
    )
    .unwrap();
    let rel = dir
        .path()
        .strip_prefix(repo())
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    render(&rel)
}

fn kinds(objects: &[Value]) -> Vec<String> {
    let mut kinds: Vec<String> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap_or("").to_string())
        .collect();
    kinds.sort();
    kinds
}

fn find<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("a {kind}"))
}

fn validate(rendered: &str) {
    validate_kinds(rendered, &["configmap", "service", "deployment"]);
}

fn validate_kinds(rendered: &str, kinds: &[&str]) {
    let tool = std::env::var_os("HUBSOAK_REAL_HUB_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/real-hub"))
        .join("tools/bin/kubernetes-validate");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rendered.yaml");
    std::fs::write(&file, rendered).unwrap();
    let (ok, out) = run(Command::new(&tool).arg("--strict").arg(&file));
    assert!(ok, "kubernetes-validate --strict: {out}");
    for kind in kinds {
        assert!(
            out.contains(&format!("passed for resource {kind}/")),
            "{kind} validated: {out}"
        );
    }
}

#[test]
fn every_kustomization_renders_and_validates() {
    let (text, base) = render("deploy/base");
    validate(&text);
    assert_eq!(
        kinds(&base),
        [
            "ConfigMap",
            "Deployment",
            "PrometheusRule",
            "Service",
            "ServiceMonitor"
        ]
    );

    let (text, podmonitor) = render("deploy/overlays/podmonitor");
    validate(&text);
    assert_eq!(
        kinds(&podmonitor),
        [
            "ConfigMap",
            "Deployment",
            "PodMonitor",
            "PrometheusRule",
            "Service"
        ]
    );

    let (text, plain) = render("deploy/overlays/plain-prometheus");
    validate(&text);
    assert_eq!(
        kinds(&plain),
        ["ConfigMap", "ConfigMap", "Deployment", "Service"]
    );
    let annotations = &find(&plain, "Deployment")["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], "9095");
    let rules = plain
        .iter()
        .find(|o| {
            o["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("hubsoak-rules"))
        })
        .expect("the rules ConfigMap");
    let file: Value =
        serde_yaml::from_str(rules["data"]["hubsoak-rules.yaml"].as_str().unwrap()).unwrap();
    assert_eq!(file, yaml(&repo().join(RULES)));
}

/// kube-prometheus-stack selects monitors and rules by `release`: the component labels
/// every one of ours, in the base (ServiceMonitor) and in the PodMonitor overlay, and
/// nothing else.
#[test]
fn the_kube_prometheus_stack_component_labels_monitors_and_rules() {
    let release = |o: &Value| {
        o["metadata"]["labels"]["release"]
            .as_str()
            .map(str::to_string)
    };
    let (text, objects) = render("deploy/overlays/kube-prometheus-stack");
    validate(&text);
    for kind in ["ServiceMonitor", "PrometheusRule"] {
        assert_eq!(
            release(find(&objects, kind)).as_deref(),
            Some("kube-prometheus-stack"),
            "{kind}"
        );
    }
    for kind in ["Deployment", "Service", "ConfigMap"] {
        assert_eq!(
            release(find(&objects, kind)),
            None,
            "{kind} keeps its labels"
        );
    }
    // Added to an overlay of the operator's own: the PodMonitor overlay.
    let (_, objects) = render_with("deploy/overlays/podmonitor", "kube-prometheus-stack");
    for kind in ["PodMonitor", "PrometheusRule"] {
        assert_eq!(
            release(find(&objects, kind)).as_deref(),
            Some("kube-prometheus-stack"),
            "{kind}"
        );
    }
}

/// Replicas (the StatefulSet overlay) are one soak to a viewer: every dashboard query
/// aggregates over instances, histograms summed by `le` before their quantile.
#[test]
fn every_dashboard_query_aggregates_across_replicas() {
    let file: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("grafana/hubsoak-dashboard.json")).unwrap(),
    )
    .unwrap();
    let mut checked = 0;
    for panel in file["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap().trim();
            let aggregated = expr.starts_with("sum")
                || expr.starts_with("min(")
                || expr.starts_with("max(")
                || expr.starts_with("max by (")
                || expr.starts_with("count")
                || (expr.starts_with("histogram_quantile(") && expr.contains(", sum by ("));
            assert!(aggregated, "{:?}: {expr}", panel["title"]);
            if expr.starts_with("histogram_quantile(") {
                assert!(expr.contains("le)"), "{expr}: summed by le");
            }
            checked += 1;
        }
    }
    assert!(checked >= 30);
}

#[tokio::test]
async fn the_statefulset_overlay_shards_by_pod_ordinal() {
    let (text, objects) = render("deploy/overlays/statefulset");
    validate_kinds(&text, &["configmap", "service", "statefulset"]);
    assert_eq!(
        kinds(&objects),
        [
            "ConfigMap",
            "PrometheusRule",
            "Service",
            "ServiceMonitor",
            "StatefulSet"
        ]
    );
    let set = find(&objects, "StatefulSet");
    let env = set["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_sequence()
        .expect("env");
    let var = |name: &str| {
        env.iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    let shards: u64 = var("HUBSOAK__USERS__SHARDS")["value"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        set["spec"]["replicas"].as_u64(),
        Some(shards),
        "a shard per replica"
    );
    assert_eq!(
        var("HUBSOAK_SHARD")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.labels['apps.kubernetes.io/pod-index']"
    );
    assert_eq!(
        set["spec"]["serviceName"],
        find(&objects, "Service")["metadata"]["name"]
    );
    // The shipped config, as the third pod sees it: shard 2 (from its hostname when the
    // pod-index label is not there), users hubsoak-2-N.
    let out = validate_shipped_config(&[
        ("HUBSOAK__USERS__SHARDS", "3"),
        ("HUBSOAK_SHARD", ""),
        ("HOSTNAME", "hubsoak-2"),
    ])
    .await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("shard = \"2\""), "{}", out.stdout);
    assert!(out.stdout.contains("shards = 3"), "{}", out.stdout);
    assert!(
        out.stdout.contains("prefix = \"hubsoak\""),
        "{}",
        out.stdout
    );
}

#[test]
fn the_deployment_is_shaped_for_production() {
    let (_, objects) = render("deploy/base");
    let deployment = find(&objects, "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/livez");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    for kind in ["requests", "limits"] {
        for r in ["cpu", "memory"] {
            assert!(c["resources"][kind][r].is_string(), "resources.{kind}.{r}");
        }
    }
    assert_eq!(
        deployment["spec"]["template"]["metadata"]["labels"]["hub.jupyter.org/network-access-hub"],
        "true",
        "z2jh's NetworkPolicy admits only labelled pods to the hub"
    );
    // The token comes from a Secret, never from the ConfigMap.
    let secret = pod["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v.get("secret").is_some())
        .expect("a Secret volume");
    assert_eq!(secret["secret"]["secretName"], "hubsoak-token");
    let config = find(&objects, "ConfigMap");
    let toml_text = config["data"]["hubsoak.toml"].as_str().unwrap();
    assert!(
        !toml_text
            .lines()
            .any(|l| l.trim_start().starts_with("token =")),
        "no token in the ConfigMap"
    );
    // The pod's grace outlasts the soak's own shutdown grace.
    let settings: toml::Table = toml_text.parse().unwrap();
    let grace = humantime::parse_duration(settings["shutdown"]["grace"].as_str().unwrap()).unwrap();
    let pod_grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(
        pod_grace > grace.as_secs(),
        "terminationGracePeriodSeconds {pod_grace} <= shutdown.grace {grace:?}"
    );
}

/// `hubsoak validate` of deploy/base/hubsoak.toml as a pod runs it (its token a mounted
/// file), with `env` added.
async fn validate_shipped_config(env: &[(&str, &str)]) -> common::Out {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "a-token\n").unwrap();
    let config = repo().join("deploy/base/hubsoak.toml");
    let mut vars = vec![("HUBSOAK__HUB__TOKEN_FILE", token.to_str().unwrap())];
    vars.extend(env);
    common::hubsoak(&["validate", "--config", config.to_str().unwrap()], &vars).await
}

#[tokio::test]
async fn the_shipped_cluster_config_is_valid() {
    let out = validate_shipped_config(&[]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout
            .contains("endpoint = \"http://hub:8081/hub/api/\""),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("format = \"json\""));
}

#[test]
fn the_dashboard_ships_as_a_sidecar_configmap_with_its_variables() {
    let (_, objects) = render("grafana");
    let cm = find(&objects, "ConfigMap");
    assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
    let shipped: serde_json::Value =
        serde_json::from_str(cm["data"]["hubsoak-dashboard.json"].as_str().unwrap()).unwrap();
    let file: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("grafana/hubsoak-dashboard.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(shipped, file);
    let vars: Vec<&str> = file["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(vars, ["datasource", "namespace", "instance", "compare"]);
    let rows: Vec<&str> = file["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == "row")
        .filter_map(|p| p["title"].as_str())
        .collect();
    assert_eq!(
        rows[0], "Headline",
        "the headline row comes first: {rows:?}"
    );
    assert!(rows[1].starts_with("SLO"), "then the SLO row: {rows:?}");
    for row in ["Latency", "Traffic", "Errors", "Saturation"] {
        assert!(rows.contains(&row), "a {row} row: {rows:?}");
    }
    assert!(rows.iter().any(|r| r.contains("hub's own")));
}

/// Read at a glance: a headline row (hub up as UP/DOWN in red and green, the version as
/// text), objective lines on the latency and failure panels, every latency panel able to
/// show itself a week ago, and upgrades and restarts marked.
#[test]
fn the_dashboard_opens_with_its_headline_and_marks_objectives_and_upgrades() {
    let file: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("grafana/hubsoak-dashboard.json")).unwrap(),
    )
    .unwrap();
    let panels = file["panels"].as_array().unwrap();
    let panel = |title: &str| {
        panels
            .iter()
            .find(|p| p["title"] == title)
            .unwrap_or_else(|| panic!("a {title:?} panel"))
    };
    let headline: Vec<&str> = panels
        .iter()
        .filter(|p| p["gridPos"]["y"] == 1)
        .filter_map(|p| p["title"].as_str())
        .collect();
    assert_eq!(
        headline,
        [
            "Hub",
            "Running / target",
            "Spawn success (1h)",
            "Spawn p95 (1h) vs 60 s",
            "API error budget left (30d)",
            "Hub version"
        ]
    );
    let hub = &panel("Hub")["fieldConfig"]["defaults"];
    let map = &hub["mappings"][0]["options"];
    assert_eq!(
        (map["1"]["text"].as_str(), map["1"]["color"].as_str()),
        (Some("UP"), Some("green"))
    );
    assert_eq!(
        (map["0"]["text"].as_str(), map["0"]["color"].as_str()),
        (Some("DOWN"), Some("red"))
    );
    assert_eq!(panel("Hub version")["options"]["textMode"], "name");
    for (title, objective) in [
        ("Spawn latency (from planned start)", 60.0),
        ("Spawn p95 (1h) vs 60 s", 60.0),
        ("Spawn failure ratio", 0.05),
        ("API failure ratio, overall and by operation", 0.01),
    ] {
        let steps = panel(title)["fieldConfig"]["defaults"]["thresholds"]["steps"]
            .as_array()
            .unwrap()
            .clone();
        assert!(
            steps.iter().any(|s| s["value"].as_f64() == Some(objective)),
            "{title}: a line at {objective}: {steps:?}"
        );
    }
    let latency: Vec<&serde_json::Value> = panels
        .iter()
        .filter(|p| p["type"] == "timeseries" && p["fieldConfig"]["defaults"]["unit"] == "s")
        .filter(|p| p["title"] != "Schedule lag p95 by action")
        // Stacked phases: a week-ago copy would stack onto them.
        .filter(|p| {
            !p["title"]
                .as_str()
                .unwrap_or("")
                .starts_with("Where spawn time goes")
        })
        .collect();
    assert!(latency.len() >= 6);
    for p in latency {
        assert!(
            p["targets"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["expr"].as_str().unwrap().contains("offset $compare")),
            "{} overlays $compare ago",
            p["title"]
        );
    }
    let burn: Vec<&str> = panels
        .iter()
        .filter_map(|p| p["title"].as_str())
        .filter(|t| t.contains("burn rate"))
        .collect();
    assert_eq!(burn.len(), 3, "{burn:?}");
    let annotations: Vec<&str> = file["annotations"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert!(annotations.contains(&"Hub upgrades") && annotations.contains(&"hubsoak restarts"));
}

/// No Docker engine here to build it; this checks what a build needs and what the image
/// promises: two stages, every path the crate compiles from, a non-root user, the binary
/// as entrypoint and `soak` as the default command.
#[test]
fn the_dockerfile_builds_from_the_crate_and_runs_as_non_root() {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).expect("a Dockerfile");
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("FROM ")).count(),
        2,
        "multi-stage"
    );
    for path in ["Cargo.toml", "Cargo.lock", "src", "config"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("COPY ") && l.split_whitespace().any(|w| w == path)),
            "COPY {path}"
        );
    }
    let user = lines
        .iter()
        .rev()
        .find(|l| l.starts_with("USER "))
        .expect("a USER");
    assert!(
        !user.contains("root") && !user.ends_with(" 0") && !user.contains(" 0:"),
        "{user}"
    );
    assert!(lines
        .iter()
        .any(|l| l.starts_with("ENTRYPOINT [\"/usr/local/bin/hubsoak\"]")));
    assert!(lines.iter().any(|l| l.starts_with("CMD [\"soak\"")));
}

/// The notebooks-from-git component: an init container clones into a volume the soak
/// reads its notebooks from, on the Deployment and on the StatefulSet; and the soak takes
/// the component's settings (a directory of notebooks from the environment).
#[tokio::test]
async fn the_notebooks_component_clones_into_the_soaks_notebooks() {
    for overlay in ["deploy/base", "deploy/overlays/statefulset"] {
        let (text, objects) = render_with(overlay, "notebooks-from-git");
        let kind = if overlay.ends_with("statefulset") {
            "StatefulSet"
        } else {
            "Deployment"
        };
        validate_kinds(&text, &[&kind.to_lowercase()]);
        let pod = &find(&objects, kind)["spec"]["template"]["spec"];
        let init = &pod["initContainers"][0];
        assert_eq!(init["volumeMounts"][0]["name"], "notebooks", "{overlay}");
        assert_eq!(init["volumeMounts"][0]["mountPath"], "/notebooks");
        assert!(init["args"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|a| a == "--link=repo"));
        let soak = &pod["containers"][0];
        let env = |name: &str| {
            soak["env"]
                .as_sequence()
                .unwrap()
                .iter()
                .find(|e| e["name"] == name)
                .map(|e| e["value"].as_str().unwrap().to_string())
        };
        assert_eq!(env("HUBSOAK__JOURNEY__ENABLED").as_deref(), Some("true"));
        assert_eq!(
            env("HUBSOAK__JOURNEY__NOTEBOOKS").as_deref(),
            Some("/notebooks/repo")
        );
        let mount = soak["volumeMounts"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "notebooks")
            .expect("the soak mounts the notebooks");
        assert_eq!(mount["mountPath"], "/notebooks");
        assert_eq!(mount["readOnly"], true);
        assert!(pod["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "notebooks" && v.get("emptyDir").is_some()));
    }
    // What the clone leaves: a repository of notebooks, checkpoints and .git included.
    let checkout = tempfile::tempdir().unwrap();
    let sub = checkout.path().join("canaries");
    std::fs::create_dir_all(sub.join(".ipynb_checkpoints")).unwrap();
    std::fs::create_dir_all(checkout.path().join(".git")).unwrap();
    common::write_notebook(&sub, "imports", &["import json"]);
    common::write_notebook(
        &sub.join(".ipynb_checkpoints"),
        "imports-checkpoint",
        &["1"],
    );
    common::write_notebook(checkout.path(), "hello", &["print('hi')"]);
    let out = validate_shipped_config(&[
        ("HUBSOAK__JOURNEY__ENABLED", "true"),
        (
            "HUBSOAK__JOURNEY__NOTEBOOKS",
            checkout.path().to_str().unwrap(),
        ),
    ])
    .await;
    assert_eq!(out.code, 0, "{}", out.all());
    let found = |name: &str| out.stdout.contains(&format!("{name}.ipynb\""));
    assert!(found("hello") && found("imports"), "{}", out.stdout);
    assert!(!found("imports-checkpoint"), "{}", out.stdout);
}
