//! The deployment files parse and agree with the code: every manifest under deploy/k8s
//! and deploy/compose is valid YAML with known kinds and API versions, the Kubernetes
//! objects validate strictly against the API schemas (kubernetes-validate from PyPI, which
//! bundles them; the KEDA and kustomize kinds have none there and are checked below by
//! hand), every container
//! runs a binary this workspace builds, the KEDA ScaledObject scales the consumer up to the
//! partition count on the commands topic and group the settings name, and the compose
//! services build from deploy/docker/Dockerfile. No cluster or Docker needed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use seatq_common::testkit::{needed_tool, repo_root};
use seatq_common::topics::Topics;
use serde::Deserialize;
use serde_yaml::Value;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every YAML document of `path` (merge keys applied), empty documents skipped.
fn documents(path: &Path) -> Vec<Value> {
    let text = read(path);
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| {
            let mut value = Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
            value
                .apply_merge()
                .unwrap_or_else(|e| panic!("{}: merge keys: {e}", path.display()));
            value
        })
        .filter(|v| !v.is_null())
        .collect()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML in {}", dir.display());
    files
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(v, path)?.as_str()
}

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, key| v.get(*key))
}

/// `key` of `[section]` in a TOML text (a plain `key = value` line; strings unquoted).
fn toml_value(text: &str, section: &str, key: &str) -> Option<String> {
    let mut current = "";
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name;
        } else if current == section {
            if let Some((k, v)) = line.split_once('=') {
                if k.trim() == key {
                    return Some(v.trim().trim_matches('"').to_owned());
                }
            }
        }
    }
    None
}

/// The binaries the workspace builds: `[[bin]]` names and `src/bin/*.rs` of each member.
fn workspace_binaries() -> BTreeSet<String> {
    let root = repo_root();
    let mut bins = BTreeSet::new();
    for member in [
        "common",
        "gateway",
        "consumer",
        "scheduler",
        "notifier",
        "bench",
    ] {
        let dir = root.join(member);
        let manifest = read(&dir.join("Cargo.toml"));
        let mut in_bin = false;
        for line in manifest.lines().map(str::trim) {
            if line.starts_with('[') {
                in_bin = line == "[[bin]]";
            } else if in_bin {
                if let Some(("name", v)) = line.split_once('=').map(|(k, v)| (k.trim(), v)) {
                    bins.insert(v.trim().trim_matches('"').to_owned());
                }
            }
        }
        if let Ok(entries) = std::fs::read_dir(dir.join("src/bin")) {
            for e in entries.filter_map(Result::ok) {
                if let Some(stem) = e.path().file_stem().and_then(|s| s.to_str()) {
                    bins.insert(stem.to_owned());
                }
            }
        }
    }
    bins
}

/// The seatq programs a container command runs: the executable, or for `sh -c SCRIPT`
/// every `seatq-…` word of the script.
fn programs(command: &[String]) -> Vec<String> {
    match command {
        [shell, flag, script, ..] if shell == "sh" && flag == "-c" => script
            .split(|c: char| c.is_whitespace() || c == ';' || c == '&' || c == '|')
            .filter(|w| w.starts_with("seatq-"))
            .map(str::to_owned)
            .collect(),
        [program, ..] => vec![program.clone()],
        [] => vec![],
    }
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_sequence)
        .map(|s| {
            s.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

const API_VERSIONS: &[(&str, &str)] = &[
    ("Namespace", "v1"),
    ("ConfigMap", "v1"),
    ("Secret", "v1"),
    ("Service", "v1"),
    ("Deployment", "apps/v1"),
    ("Job", "batch/v1"),
    ("PodDisruptionBudget", "policy/v1"),
    ("ScaledObject", "keda.sh/v1alpha1"),
    ("Kustomization", "kustomize.config.k8s.io/v1beta1"),
];

/// Every k8s document, by kind.
fn k8s() -> BTreeMap<String, Vec<(PathBuf, Value)>> {
    let mut by_kind: BTreeMap<String, Vec<(PathBuf, Value)>> = BTreeMap::new();
    for file in yaml_files(&repo_root().join("deploy/k8s")) {
        for doc in documents(&file) {
            let kind = str_at(&doc, &["kind"])
                .unwrap_or_else(|| panic!("{}: a document without kind", file.display()))
                .to_owned();
            by_kind.entry(kind).or_default().push((file.clone(), doc));
        }
    }
    by_kind
}

#[test]
fn k8s_manifests_have_known_kinds_and_api_versions() {
    let by_kind = k8s();
    for (kind, docs) in &by_kind {
        let expected = API_VERSIONS
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("unexpected kind {kind}"));
        for (file, doc) in docs {
            assert_eq!(
                str_at(doc, &["apiVersion"]),
                Some(expected),
                "{} {kind}",
                file.display()
            );
            if !matches!(kind.as_str(), "Namespace" | "Kustomization") {
                assert!(
                    str_at(doc, &["metadata", "name"]).is_some(),
                    "{}: {kind} without a name",
                    file.display()
                );
                assert_eq!(
                    str_at(doc, &["metadata", "namespace"]),
                    Some("seatq"),
                    "{}: {kind}",
                    file.display()
                );
            }
        }
    }
    for kind in [
        "Deployment",
        "Service",
        "ScaledObject",
        "Job",
        "PodDisruptionBudget",
    ] {
        assert!(by_kind.contains_key(kind), "no {kind} in deploy/k8s");
    }
    // The kustomization lists every file.
    let (_, kustomization) = &by_kind["Kustomization"][0];
    let listed: BTreeSet<String> = string_list(kustomization.get("resources"))
        .into_iter()
        .collect();
    let files: BTreeSet<String> = yaml_files(&repo_root().join("deploy/k8s"))
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
        .filter(|f| f != "kustomization.yaml")
        .collect();
    assert_eq!(listed, files, "kustomization.yaml resources");
}

#[test]
fn k8s_manifests_validate_against_the_kubernetes_api_schemas() {
    let Some(validate) = needed_tool("ensure_kubernetes_validate", "KUBERNETES_VALIDATE_BIN")
    else {
        return;
    };
    let files = yaml_files(&repo_root().join("deploy/k8s"));
    // --strict: unknown fields (a typo in a key) are errors too.
    let out = std::process::Command::new(validate)
        .arg("--strict")
        .args(&files)
        .output()
        .expect("run kubernetes-validate");
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !report.contains("ERROR"),
        "{report}"
    );
    // Every workload was really checked against a schema, not skipped as unknown.
    for kind in [
        "deployment",
        "service",
        "job",
        "poddisruptionbudget",
        "configmap",
    ] {
        assert!(
            report.contains(&format!("passed for resource {kind}/")),
            "{kind} not validated:\n{report}"
        );
    }
}

#[test]
fn k8s_workloads_run_workspace_binaries_with_probes_on_declared_ports() {
    let binaries = workspace_binaries();
    assert!(binaries.contains("seatq-ctl"), "{binaries:?}");
    let by_kind = k8s();
    let mut services = Vec::new();
    for kind in ["Deployment", "Job"] {
        for (file, doc) in &by_kind[kind] {
            let pod = at(doc, &["spec", "template", "spec"]).expect("pod spec");
            let containers = pod["containers"].as_sequence().expect("containers");
            for c in containers {
                let command = string_list(c.get("command"));
                let run = programs(&command);
                assert!(!run.is_empty(), "{}: no command", file.display());
                for program in run {
                    assert!(
                        binaries.contains(&program),
                        "{}: {program} is not a workspace binary ({binaries:?})",
                        file.display()
                    );
                }
                if kind == "Deployment" {
                    let ports: Vec<&str> = c
                        .get("ports")
                        .and_then(Value::as_sequence)
                        .map(|ps| ps.iter().filter_map(|p| str_at(p, &["name"])).collect())
                        .unwrap_or_default();
                    let liveness = str_at(c, &["livenessProbe", "httpGet", "port"]);
                    assert!(
                        liveness.is_some_and(|p| ports.contains(&p)),
                        "{}: liveness probe on an undeclared port",
                        file.display()
                    );
                    if let Some(port) = str_at(c, &["readinessProbe", "httpGet", "port"]) {
                        assert!(ports.contains(&port), "{}", file.display());
                    }
                    services.push(command[0].clone());
                }
            }
            if kind == "Deployment" {
                let grace = at(pod, &["terminationGracePeriodSeconds"]).and_then(Value::as_u64);
                assert!(
                    grace.is_some_and(|g| g >= 10),
                    "{}: give the drain time",
                    file.display()
                );
            }
        }
    }
    services.sort();
    assert_eq!(
        services,
        [
            "seatq-consumer",
            "seatq-gateway",
            "seatq-notifier",
            "seatq-scheduler"
        ]
    );
    // Every Service selects a Deployment's pods.
    let labels: Vec<&Value> = by_kind["Deployment"]
        .iter()
        .filter_map(|(_, d)| at(d, &["spec", "template", "metadata", "labels"]))
        .collect();
    for (file, svc) in &by_kind["Service"] {
        let selector = at(svc, &["spec", "selector"])
            .and_then(Value::as_mapping)
            .expect("selector");
        assert!(
            labels
                .iter()
                .any(|l| selector.iter().all(|(k, v)| l.get(k) == Some(v))),
            "{}: the Service selects no Deployment",
            file.display()
        );
    }
}

#[test]
fn keda_scales_the_consumer_up_to_the_partition_count() {
    let defaults = read(&repo_root().join("common/config/default.toml"));
    let partitions: u64 = toml_value(&defaults, "kafka", "partitions")
        .and_then(|p| p.parse().ok())
        .expect("kafka.partitions in default.toml");
    let prefix = toml_value(&defaults, "kafka", "topic_prefix").expect("topic_prefix");
    let group = toml_value(&defaults, "consumer", "group_id").expect("group_id");
    let by_kind = k8s();
    // The deployed settings agree with the defaults the ScaledObject was written for.
    let (_, config) = &by_kind["ConfigMap"][0];
    let deployed = str_at(config, &["data", "seatq.toml"]).expect("seatq.toml");
    let deployed_partitions = toml_value(deployed, "kafka", "partitions")
        .map_or(partitions, |p| p.parse().expect("partitions"));
    let deployed_prefix = toml_value(deployed, "kafka", "topic_prefix").unwrap_or(prefix);
    let deployed_group = toml_value(deployed, "consumer", "group_id").unwrap_or(group);
    let brokers = toml_value(deployed, "kafka", "brokers").expect("kafka.brokers");
    assert_eq!(
        deployed_partitions, partitions,
        "the ConfigMap's partitions"
    );

    let scaled = &by_kind["ScaledObject"];
    assert_eq!(scaled.len(), 1);
    let (_, so) = &scaled[0];
    let spec = &so["spec"];
    assert_eq!(
        str_at(spec, &["scaleTargetRef", "name"]),
        Some("seatq-consumer")
    );
    assert!(
        by_kind["Deployment"].iter().any(|(_, d)| {
            str_at(d, &["metadata", "name"]) == Some("seatq-consumer")
                && d["spec"].get("replicas").is_none()
        }),
        "the consumer Deployment leaves replicas to KEDA"
    );
    assert_eq!(spec["minReplicaCount"].as_u64(), Some(1));
    assert_eq!(
        spec["maxReplicaCount"].as_u64(),
        Some(partitions),
        "maxReplicaCount = kafka.partitions"
    );
    let triggers = spec["triggers"].as_sequence().expect("triggers");
    assert_eq!(triggers.len(), 1);
    let trigger = &triggers[0];
    assert_eq!(str_at(trigger, &["type"]), Some("kafka"));
    let meta = &trigger["metadata"];
    assert_eq!(
        str_at(meta, &["topic"]),
        Some(Topics::new(&deployed_prefix).commands.as_str())
    );
    assert_eq!(
        str_at(meta, &["consumerGroup"]),
        Some(deployed_group.as_str())
    );
    assert_eq!(str_at(meta, &["bootstrapServers"]), Some(brokers.as_str()));
    // KEDA reads metadata values as strings.
    let threshold: u64 = str_at(meta, &["lagThreshold"])
        .and_then(|t| t.parse().ok())
        .expect("lagThreshold, a quoted number");
    assert!(threshold > 0);
    assert!(matches!(
        str_at(meta, &["offsetResetPolicy"]),
        Some("earliest" | "latest")
    ));
    assert_eq!(str_at(meta, &["allowIdleConsumers"]), Some("false"));
}

#[test]
fn compose_builds_every_service_from_the_dockerfile() {
    let dir = repo_root().join("deploy/compose");
    let binaries = workspace_binaries();
    let files = yaml_files(&dir);
    let compose = files
        .iter()
        .find(|f| f.ends_with("docker-compose.yml"))
        .expect("deploy/compose/docker-compose.yml");
    let docs = documents(compose);
    assert_eq!(docs.len(), 1);
    let services = docs[0]["services"].as_mapping().expect("services");
    for required in [
        "kafka",
        "postgres",
        "redis",
        "setup",
        "gateway",
        "consumer",
        "scheduler",
        "notifier",
    ] {
        assert!(services.contains_key(required), "no {required} service");
    }
    assert!(
        str_at(&docs[0], &["services", "kafka", "image"])
            .is_some_and(|i| i.starts_with("apache/kafka")),
        "Apache Kafka"
    );
    let mut seatq = 0;
    for (name, service) in services {
        let name = name.as_str().expect("service name");
        let Some(build) = service.get("build") else {
            if repo_root().join("deploy/grafana").exists() {
                for volume in string_list(service.get("volumes")) {
                    let source = volume.split(':').next().unwrap_or_default();
                    if source.starts_with('.') {
                        assert!(dir.join(source).exists(), "{name}: {source} missing");
                    }
                }
            }
            continue;
        };
        seatq += 1;
        let context = dir.join(str_at(build, &["context"]).expect("build context"));
        let dockerfile = context.join(str_at(build, &["dockerfile"]).expect("dockerfile"));
        assert_eq!(
            dockerfile.canonicalize().expect("the Dockerfile exists"),
            repo_root()
                .join("deploy/docker/Dockerfile")
                .canonicalize()
                .expect("Dockerfile"),
            "{name}"
        );
        for program in programs(&string_list(service.get("command"))) {
            assert!(binaries.contains(&program), "{name}: {program}");
        }
        // Files mounted from the repository exist (the monitoring profile's once
        // deploy/grafana does).
        let optional = service.get("profiles").is_some();
        let grafana = repo_root().join("deploy/grafana").exists();
        for volume in string_list(service.get("volumes")) {
            let source = volume.split(':').next().unwrap_or_default();
            if source.starts_with('.') && (!optional || grafana) {
                assert!(dir.join(source).exists(), "{name}: {source} missing");
            }
        }
    }
    assert!(seatq >= 5, "the seatq services build from the Dockerfile");
    // `--scale consumer=N` needs no fixed name and no host port.
    let consumer = &services["consumer"];
    assert!(consumer.get("container_name").is_none());
    assert!(consumer.get("ports").is_none());
    // The Dockerfile builds every binary the manifests run.
    let dockerfile = read(&repo_root().join("deploy/docker/Dockerfile"));
    for bin in [
        "seatq-gateway",
        "seatq-consumer",
        "seatq-scheduler",
        "seatq-notifier",
        "seatq-ctl",
    ] {
        assert!(
            dockerfile.contains(&format!("target/release/{bin}")),
            "the image lacks {bin}"
        );
    }
    // The optional monitoring profile points at deploy/grafana once it exists.
    if repo_root().join("deploy/grafana").exists() {
        for service in ["prometheus", "grafana"] {
            assert!(services.contains_key(service), "no {service} service");
        }
    }
}

/// The deploy files ship no secret anyone could use: the k8s Secret has every secret
/// setting, empty (the services refuse to start until it is filled in), its configuration
/// stays in production mode; the compose demo and the local stack run in development mode
/// (placeholder secrets) and compose publishes its ports on 127.0.0.1 only.
#[test]
fn deploy_files_ship_no_usable_secret() {
    use seatq_common::config::{DeploymentMode, Settings};
    use seatq_common::secrets::{self, Secret, Service};

    let by_kind = k8s();
    let (file, secret) = &by_kind["Secret"][0];
    let data = secret
        .get("stringData")
        .and_then(Value::as_mapping)
        .unwrap_or_else(|| panic!("{}: stringData", file.display()));
    let mut settings = Settings::defaults().expect("defaults");
    for s in Secret::ALL {
        let value = data
            .get(s.env_var().as_str())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{}: no {}", file.display(), s.env_var()));
        assert_eq!(
            value,
            "",
            "{}: {} ships a value",
            file.display(),
            s.env_var()
        );
        match s {
            Secret::JwtSecret => settings.auth.jwt_secret = value.into(),
            Secret::WebhookSecret => settings.payments.webhook_secret = value.into(),
            Secret::TicketCodeSecret => settings.tickets.code_secret = value.into(),
            Secret::WaitingRoomSecret => settings.waiting_room.secret = value.into(),
            Secret::ProviderApiKey => settings.payments.provider_api_key = value.into(),
        }
    }
    // As shipped, every service that uses a secret refuses to start.
    assert_eq!(settings.deployment.mode, DeploymentMode::Production);
    for service in [Service::Gateway, Service::Notifier, Service::Scheduler] {
        let refused = secrets::check(&settings, service).expect_err("empty secrets refused");
        assert_eq!(refused.problems.len(), service.secrets().len(), "{refused}");
    }
    let (_, configmap) = &by_kind["ConfigMap"][0];
    let k8s_toml = str_at(configmap, &["data", "seatq.toml"]).expect("seatq.toml");
    assert_ne!(
        toml_value(k8s_toml, "deployment", "mode").as_deref(),
        Some("development"),
        "the k8s configuration runs in production mode"
    );

    for path in ["deploy/compose/seatq.toml", "deploy/local/seatq.toml"] {
        let text = read(&repo_root().join(path));
        assert_eq!(
            toml_value(&text, "deployment", "mode").as_deref(),
            Some("development"),
            "{path}"
        );
    }
    let compose = documents(&repo_root().join("deploy/compose/docker-compose.yml"));
    let services = compose[0]["services"].as_mapping().expect("services");
    let mut published = 0;
    for (name, service) in services {
        for port in string_list(service.get("ports")) {
            published += 1;
            assert!(
                port.starts_with("127.0.0.1:"),
                "{name:?} publishes {port} beyond this machine"
            );
        }
    }
    assert!(published >= 2, "the gateway and the notifier are published");
}
