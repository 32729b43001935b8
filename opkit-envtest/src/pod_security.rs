//! Pod Security admission, the built-in plugin every cluster runs: namespaces
//! labelled `pod-security.kubernetes.io/<mode>: <level>` (modes `enforce`, `warn`,
//! `audit`; levels `privileged`, `baseline`, `restricted`; `<mode>-version` beside
//! them) have their pods checked against the Pod Security Standards.
//!
//! As kube-apiserver: a pod that breaks the `enforce` level is refused
//! (`pods "x" is forbidden: violates PodSecurity "restricted:latest": ...`), one
//! that breaks the `warn` level gets a warning; workloads (Deployments,
//! StatefulSets, Jobs, CronJobs...) get warnings for their pod templates but
//! are never refused; tightening a namespace's `enforce` level warns about
//! the pods already there that break it. The checks and their wording are the
//! `k8s.io/pod-security-admission` policy's.

use crate::error::ApiError;
use crate::resources::ResourceInfo;
use crate::schema::{Bad, FieldError};
use crate::store::{State, meta_str};
use serde_json::{Map, Value};
use std::collections::BTreeSet;

const PREFIX: &str = "pod-security.kubernetes.io/";

/// How strict a Pod Security Standard is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    fn parse(text: &str) -> Option<Level> {
        match text {
            "privileged" => Some(Level::Privileged),
            "baseline" => Some(Level::Baseline),
            "restricted" => Some(Level::Restricted),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

/// A level at a version of the standards (`restricted:latest`, `baseline:v1.30`).
#[derive(Clone, Debug, PartialEq)]
struct LevelVersion {
    level: Level,
    version: String,
}

impl std::fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.level.name(), self.version)
    }
}

/// The levels a namespace's labels ask for, and what is wrong with them.
struct Policy {
    enforce: LevelVersion,
    warn: LevelVersion,
    errors: Vec<FieldError>,
}

impl Policy {
    /// The namespace's policy; unlabelled modes are `privileged:latest`.
    fn of(labels: Option<&Map<String, Value>>) -> Policy {
        let mut errors = Vec::new();
        let mut mode = |name: &str, on_error: Level| {
            let label = |suffix: &str| {
                let key = format!("{PREFIX}{name}{suffix}");
                labels
                    .and_then(|l| l.get(&key))
                    .and_then(Value::as_str)
                    .map(|v| (key, v.to_string()))
            };
            let level = match label("") {
                None => Level::Privileged,
                Some((key, value)) => Level::parse(&value).unwrap_or_else(|| {
                    errors.push(FieldError::invalid(
                        &format!("metadata.labels[{key}]"),
                        Bad::Str(&value),
                        "must be one of privileged, baseline, restricted",
                    ));
                    on_error
                }),
            };
            let version = match label("-version") {
                None => "latest".to_string(),
                Some((_, value)) if is_version(&value) => value,
                Some((key, value)) => {
                    errors.push(FieldError::invalid(
                        &format!("metadata.labels[{key}]"),
                        Bad::Str(&value),
                        "must be \"latest\" or \"v1.x\"",
                    ));
                    "latest".to_string()
                }
            };
            LevelVersion { level, version }
        };
        // An unreadable enforce level fails closed, warn fails open.
        let enforce = mode("enforce", Level::Restricted);
        let warn = mode("warn", Level::Privileged);
        Policy {
            enforce,
            warn,
            errors,
        }
    }
}

fn is_version(text: &str) -> bool {
    text == "latest"
        || text
            .strip_prefix("v1.")
            .is_some_and(|minor| !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether a request to this resource can concern Pod Security.
pub(crate) fn applies(info: &ResourceInfo, namespace: Option<&Value>) -> bool {
    if info.group.is_empty() && info.plural == "namespaces" {
        return true;
    }
    let labelled = namespace
        .and_then(|ns| ns.pointer("/metadata/labels"))
        .and_then(Value::as_object)
        .is_some_and(|labels| labels.keys().any(|k| k.starts_with(PREFIX)));
    labelled && (is_pod(info) || template_pointer(info).is_some())
}

fn is_pod(info: &ResourceInfo) -> bool {
    info.group.is_empty() && info.plural == "pods"
}

/// Where a workload keeps its pod template.
fn template_pointer(info: &ResourceInfo) -> Option<&'static str> {
    match (info.group.as_str(), info.plural.as_str()) {
        ("apps", "deployments" | "replicasets" | "statefulsets" | "daemonsets")
        | ("batch", "jobs")
        | ("", "replicationcontrollers") => Some("/spec/template"),
        ("batch", "cronjobs") => Some("/spec/jobTemplate/spec/template"),
        ("", "podtemplates") => Some("/template"),
        _ => None,
    }
}

/// A request as Pod Security sees it.
pub(crate) struct Request<'a> {
    pub(crate) info: &'a ResourceInfo,
    pub(crate) operation: &'a str,
    pub(crate) subresource: &'a str,
    pub(crate) name: &'a str,
    pub(crate) object: Option<&'a Value>,
    pub(crate) old: Option<&'a Value>,
    /// The namespace the object is in.
    pub(crate) namespace: Option<&'a Value>,
}

/// Checks the request; returns the warnings it earns, or the refusal.
pub(crate) fn review(state: &State, request: &Request<'_>) -> Result<Vec<String>, ApiError> {
    let info = request.info;
    if !matches!(request.operation, "CREATE" | "UPDATE") {
        return Ok(Vec::new());
    }
    let Some(object) = request.object else {
        return Ok(Vec::new());
    };
    if info.group.is_empty() && info.plural == "namespaces" {
        return namespace(state, request, object);
    }
    let labels = request
        .namespace
        .and_then(|ns| ns.pointer("/metadata/labels"))
        .and_then(Value::as_object);
    let policy = Policy::of(labels);
    if is_pod(info) {
        if !matches!(request.subresource, "" | "ephemeralcontainers") {
            return Ok(Vec::new());
        }
        if request.operation == "UPDATE" && request.old.is_some_and(|old| !significant(object, old))
        {
            return Ok(Vec::new());
        }
        let spec = object.get("spec").unwrap_or(&Value::Null);
        let enforced = evaluate(policy.enforce.level, spec);
        if !enforced.is_empty() {
            let why = format!(
                "violates PodSecurity \"{}\": {}",
                policy.enforce,
                details(&enforced)
            );
            return Err(ApiError::forbidden(info, request.name, &why));
        }
        return Ok(warning(&policy, spec).into_iter().collect());
    }
    let Some(pointer) = template_pointer(info).filter(|_| request.subresource.is_empty()) else {
        return Ok(Vec::new());
    };
    match object.pointer(pointer).and_then(|t| t.get("spec")) {
        Some(spec) => Ok(warning(&policy, spec).into_iter().collect()),
        None => Ok(Vec::new()),
    }
}

/// The warning the `warn` level gives a pod spec, if it breaks it.
fn warning(policy: &Policy, spec: &Value) -> Option<String> {
    let broken = evaluate(policy.warn.level, spec);
    (!broken.is_empty()).then(|| {
        format!(
            "would violate PodSecurity \"{}\": {}",
            policy.warn,
            details(&broken)
        )
    })
}

/// A namespace write: labels that do not parse are refused, and a tighter
/// `enforce` level warns about the pods it already holds that break it.
fn namespace(
    state: &State,
    request: &Request<'_>,
    object: &Value,
) -> Result<Vec<String>, ApiError> {
    let labels = |o: &Value| {
        o.pointer("/metadata/labels")
            .and_then(Value::as_object)
            .cloned()
    };
    let new = Policy::of(labels(object).as_ref());
    if !new.errors.is_empty() {
        return Err(ApiError::invalid(request.info, request.name, &new.errors));
    }
    let old = request.old.map(|o| Policy::of(labels(o).as_ref()));
    let changed = old.is_none_or(|old| old.enforce != new.enforce);
    if request.operation != "UPDATE" || !changed || new.enforce.level == Level::Privileged {
        return Ok(Vec::new());
    }
    let name = meta_str(object, "name");
    // Pods by what they break, the lexically first pod naming each group.
    let mut groups: Vec<(String, String, usize)> = Vec::new();
    for (_, stored) in state.list("/pods", Some(name), None) {
        let pod = stored.value();
        let broken = evaluate(new.enforce.level, pod.get("spec").unwrap_or(&Value::Null));
        if broken.is_empty() {
            continue;
        }
        let reasons: Vec<&str> = broken.iter().map(|b| b.reason.as_str()).collect();
        let reasons = reasons.join(", ");
        let pod_name = meta_str(&pod, "name").to_string();
        match groups.iter_mut().find(|(r, _, _)| *r == reasons) {
            Some((_, first, count)) => {
                *count += 1;
                if pod_name < *first {
                    *first = pod_name;
                }
            }
            None => groups.push((reasons, pod_name, 1)),
        }
    }
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let mut pods: Vec<String> = groups
        .into_iter()
        .map(|(reasons, first, count)| match count {
            1 => format!("{first}: {reasons}"),
            2 => format!("{first} (and 1 other pod): {reasons}"),
            n => format!("{first} (and {} other pods): {reasons}", n - 1),
        })
        .collect();
    pods.sort();
    let mut warnings = vec![format!(
        "existing pods in namespace \"{name}\" violate the new PodSecurity enforce level \"{}\"",
        new.enforce
    )];
    warnings.extend(pods);
    Ok(warnings)
}

/// Whether a pod update changes what Pod Security checks (the containers or their images).
fn significant(pod: &Value, old: &Value) -> bool {
    let images = |p: &Value, field: &str| -> Vec<Value> {
        p.pointer(&format!("/spec/{field}"))
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .map(|c| c.get("image").cloned().unwrap_or(Value::Null))
                    .collect()
            })
            .unwrap_or_default()
    };
    ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .any(|field| images(pod, field) != images(old, field))
}

/// A check the pod spec fails: the reason, and what to change.
#[derive(Debug)]
struct Broken {
    reason: String,
    detail: String,
}

/// `reason (detail), ...`, as the server lists the checks a pod fails.
fn details(broken: &[Broken]) -> String {
    let parts: Vec<String> = broken
        .iter()
        .map(|b| {
            if b.detail.is_empty() {
                b.reason.clone()
            } else {
                format!("{} ({})", b.reason, b.detail)
            }
        })
        .collect();
    parts.join(", ")
}

/// The checks of `level` the pod spec fails, baseline's then restricted's.
fn evaluate(level: Level, spec: &Value) -> Vec<Broken> {
    if level == Level::Privileged {
        return Vec::new();
    }
    let pod = Pod::of(spec);
    let restricted = level == Level::Restricted;
    let mut broken = Vec::new();
    let mut check = |result: Option<Broken>| broken.extend(result);
    check(pod.app_armor());
    if !restricted {
        check(pod.capabilities_baseline());
    }
    check(pod.host_namespaces());
    if !restricted {
        check(pod.host_path_volumes());
    }
    check(pod.host_ports());
    check(pod.privileged());
    check(pod.proc_mount());
    check(pod.se_linux());
    if !restricted {
        check(pod.seccomp_baseline());
    }
    check(pod.sysctls());
    check(pod.windows_host_process());
    if restricted {
        check(pod.allow_privilege_escalation());
        check(pod.capabilities_restricted());
        check(pod.restricted_volumes());
        check(pod.run_as_non_root());
        check(pod.run_as_user());
        check(pod.seccomp_restricted());
    }
    broken
}

fn pluralize(singular: &str, plural: &str, count: usize) -> String {
    if count == 1 { singular } else { plural }.to_string()
}

fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{:?}", s.as_ref())).collect();
    quoted.join(", ")
}

/// `container "a"` or `containers "a", "b"`.
fn containers_named(names: &[String]) -> String {
    format!(
        "{} {}",
        pluralize("container", "containers", names.len()),
        join_quote(names)
    )
}

/// A pod spec, read for its security settings.
struct Pod<'a> {
    spec: &'a Value,
    /// Every container, init and ephemeral ones too.
    containers: Vec<&'a Value>,
}

impl<'a> Pod<'a> {
    fn of(spec: &'a Value) -> Pod<'a> {
        let containers = ["initContainers", "containers", "ephemeralContainers"]
            .iter()
            .flat_map(|field| {
                spec.get(*field)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
            })
            .collect();
        Pod { spec, containers }
    }

    fn pod_context(&self, pointer: &str) -> Option<&'a Value> {
        self.spec
            .pointer(&format!("/securityContext{pointer}"))
            .filter(|v| !v.is_null())
    }

    fn name(container: &Value) -> String {
        container
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    }

    fn context<'c>(container: &'c Value, pointer: &str) -> Option<&'c Value> {
        container
            .pointer(&format!("/securityContext{pointer}"))
            .filter(|v| !v.is_null())
    }

    /// The containers for which `bad` holds.
    fn containers_where(&self, mut bad: impl FnMut(&Value) -> bool) -> Vec<String> {
        self.containers
            .iter()
            .filter(|c| bad(c))
            .map(|c| Pod::name(c))
            .collect()
    }

    /// Who sets `pointer` in a securityContext to a value `bad` refuses:
    /// `pod`, then `container "a"` or `containers "a", "b"`.
    fn setters(&self, pointer: &str, bad: impl Fn(Option<&Value>) -> bool) -> Vec<String> {
        let mut setters = Vec::new();
        if bad(self.pod_context(pointer)) {
            setters.push("pod".to_string());
        }
        let containers = self.containers_where(|c| bad(Pod::context(c, pointer)));
        if !containers.is_empty() {
            setters.push(containers_named(&containers));
        }
        setters
    }

    fn app_armor(&self) -> Option<Broken> {
        let setters = self.setters("/appArmorProfile", |v| {
            v.and_then(|p| p.get("type")).and_then(Value::as_str) == Some("Unconfined")
        });
        (!setters.is_empty()).then(|| Broken {
            reason: "forbidden AppArmor profile".into(),
            detail: format!(
                "{} must not set securityContext.appArmorProfile.type to \"Unconfined\"",
                setters.join(" and ")
            ),
        })
    }

    fn capabilities_baseline(&self) -> Option<Broken> {
        const ALLOWED: [&str; 13] = [
            "AUDIT_WRITE",
            "CHOWN",
            "DAC_OVERRIDE",
            "FOWNER",
            "FSETID",
            "KILL",
            "MKNOD",
            "NET_BIND_SERVICE",
            "SETFCAP",
            "SETGID",
            "SETPCAP",
            "SETUID",
            "SYS_CHROOT",
        ];
        let mut forbidden = BTreeSet::new();
        let bad = self.containers_where(|c| {
            let added = added_capabilities(c);
            let extra: Vec<String> = added
                .into_iter()
                .filter(|a| !ALLOWED.contains(&a.as_str()))
                .collect();
            let any = !extra.is_empty();
            forbidden.extend(extra);
            any
        });
        (!bad.is_empty()).then(|| Broken {
            reason: "non-default capabilities".into(),
            detail: format!(
                "{} must not include {} in securityContext.capabilities.add",
                containers_named(&bad),
                join_quote(&forbidden.into_iter().collect::<Vec<_>>())
            ),
        })
    }

    fn host_namespaces(&self) -> Option<Broken> {
        let set: Vec<String> = ["hostNetwork", "hostPID", "hostIPC"]
            .iter()
            .filter(|f| self.spec.get(**f).and_then(Value::as_bool) == Some(true))
            .map(|f| format!("{f}=true"))
            .collect();
        (!set.is_empty()).then(|| Broken {
            reason: "host namespaces".into(),
            detail: set.join(", "),
        })
    }

    fn volumes(&self) -> impl Iterator<Item = &'a Value> {
        self.spec
            .get("volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    }

    fn host_path_volumes(&self) -> Option<Broken> {
        let names: Vec<String> = self
            .volumes()
            .filter(|v| v.get("hostPath").is_some_and(|h| !h.is_null()))
            .map(Pod::name)
            .collect();
        (!names.is_empty()).then(|| Broken {
            reason: "hostPath volumes".into(),
            detail: format!(
                "{} {}",
                pluralize("volume", "volumes", names.len()),
                join_quote(&names)
            ),
        })
    }

    fn host_ports(&self) -> Option<Broken> {
        let mut ports = BTreeSet::new();
        let bad = self.containers_where(|c| {
            let used: Vec<String> = c
                .get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| {
                    p.get("hostPort")
                        .and_then(Value::as_i64)
                        .filter(|p| *p != 0)
                })
                .map(|p| p.to_string())
                .collect();
            let any = !used.is_empty();
            ports.extend(used);
            any
        });
        (!bad.is_empty()).then(|| Broken {
            reason: "hostPort".into(),
            detail: format!(
                "{} {} {} {}",
                containers_named(&bad),
                pluralize("uses", "use", bad.len()),
                pluralize("hostPort", "hostPorts", ports.len()),
                ports.into_iter().collect::<Vec<_>>().join(", ")
            ),
        })
    }

    fn privileged(&self) -> Option<Broken> {
        let bad = self.containers_where(|c| {
            Pod::context(c, "/privileged").and_then(Value::as_bool) == Some(true)
        });
        (!bad.is_empty()).then(|| Broken {
            reason: "privileged".into(),
            detail: format!(
                "{} must not set securityContext.privileged=true",
                containers_named(&bad)
            ),
        })
    }

    fn proc_mount(&self) -> Option<Broken> {
        let bad = self.containers_where(|c| {
            Pod::context(c, "/procMount")
                .and_then(Value::as_str)
                .is_some_and(|m| m != "Default")
        });
        (!bad.is_empty()).then(|| Broken {
            reason: "procMount".into(),
            detail: format!(
                "{} must not set securityContext.procMount to \"Unmasked\"",
                containers_named(&bad)
            ),
        })
    }

    fn se_linux(&self) -> Option<Broken> {
        const TYPES: [&str; 5] = [
            "",
            "container_t",
            "container_init_t",
            "container_kvm_t",
            "container_engine_t",
        ];
        let setters = self.setters("/seLinuxOptions", |o| {
            o.is_some_and(|o| {
                let text = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("");
                !TYPES.contains(&text("type"))
                    || !text("user").is_empty()
                    || !text("role").is_empty()
            })
        });
        (!setters.is_empty()).then(|| Broken {
            reason: "seLinuxOptions".into(),
            detail: format!(
                "{} set forbidden securityContext.seLinuxOptions: type, user or role",
                setters.join(" and ")
            ),
        })
    }

    fn seccomp_type(context: Option<&Value>) -> Option<&str> {
        context.and_then(|p| p.get("type")).and_then(Value::as_str)
    }

    fn seccomp_baseline(&self) -> Option<Broken> {
        let setters = self.setters("/seccompProfile", |v| {
            Pod::seccomp_type(v) == Some("Unconfined")
        });
        (!setters.is_empty()).then(|| Broken {
            reason: "seccompProfile".into(),
            detail: format!(
                "{} must not set securityContext.seccompProfile.type to \"Unconfined\"",
                setters.join(" and ")
            ),
        })
    }

    fn sysctls(&self) -> Option<Broken> {
        const SAFE: [&str; 9] = [
            "kernel.shm_rmid_forced",
            "net.ipv4.ip_local_port_range",
            "net.ipv4.ip_unprivileged_port_start",
            "net.ipv4.tcp_syncookies",
            "net.ipv4.ping_group_range",
            "net.ipv4.ip_local_reserved_ports",
            "net.ipv4.tcp_keepalive_time",
            "net.ipv4.tcp_fin_timeout",
            "net.ipv4.tcp_keepalive_intvl",
        ];
        let forbidden: Vec<String> = self
            .pod_context("/sysctls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.get("name").and_then(Value::as_str))
            .filter(|n| !SAFE.contains(n) && *n != "net.ipv4.tcp_keepalive_probes")
            .map(str::to_string)
            .collect();
        (!forbidden.is_empty()).then(|| Broken {
            reason: "forbidden sysctls".into(),
            detail: forbidden.join(", "),
        })
    }

    fn windows_host_process(&self) -> Option<Broken> {
        let setters = self.setters("/windowsOptions/hostProcess", |v| {
            v.and_then(Value::as_bool) == Some(true)
        });
        (!setters.is_empty()).then(|| Broken {
            reason: "hostProcess".into(),
            detail: format!(
                "{} must not set securityContext.windowsOptions.hostProcess=true",
                setters.join(" and ")
            ),
        })
    }

    fn allow_privilege_escalation(&self) -> Option<Broken> {
        let bad = self.containers_where(|c| {
            Pod::context(c, "/allowPrivilegeEscalation").and_then(Value::as_bool) != Some(false)
        });
        (!bad.is_empty()).then(|| Broken {
            reason: "allowPrivilegeEscalation != false".into(),
            detail: format!(
                "{} must set securityContext.allowPrivilegeEscalation=false",
                containers_named(&bad)
            ),
        })
    }

    fn capabilities_restricted(&self) -> Option<Broken> {
        let missing_drop = self.containers_where(|c| {
            !Pod::context(c, "/capabilities/drop")
                .and_then(Value::as_array)
                .is_some_and(|d| d.iter().any(|v| v.as_str() == Some("ALL")))
        });
        let mut forbidden = BTreeSet::new();
        let adding = self.containers_where(|c| {
            let extra: Vec<String> = added_capabilities(c)
                .into_iter()
                .filter(|a| a != "NET_BIND_SERVICE")
                .collect();
            let any = !extra.is_empty();
            forbidden.extend(extra);
            any
        });
        let mut details = Vec::new();
        if !missing_drop.is_empty() {
            details.push(format!(
                "{} must set securityContext.capabilities.drop=[\"ALL\"]",
                containers_named(&missing_drop)
            ));
        }
        if !adding.is_empty() {
            details.push(format!(
                "{} must not include {} in securityContext.capabilities.add",
                containers_named(&adding),
                join_quote(&forbidden.into_iter().collect::<Vec<_>>())
            ));
        }
        (!details.is_empty()).then(|| Broken {
            reason: "unrestricted capabilities".into(),
            detail: details.join("; "),
        })
    }

    fn restricted_volumes(&self) -> Option<Broken> {
        const ALLOWED: [&str; 8] = [
            "configMap",
            "csi",
            "downwardAPI",
            "emptyDir",
            "ephemeral",
            "persistentVolumeClaim",
            "projected",
            "secret",
        ];
        let mut kinds = BTreeSet::new();
        let names: Vec<String> = self
            .volumes()
            .filter(|v| {
                let bad: Vec<String> = v
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(k, val)| {
                        *k != "name" && !val.is_null() && !ALLOWED.contains(&k.as_str())
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                let any = !bad.is_empty();
                kinds.extend(bad);
                any
            })
            .map(Pod::name)
            .collect();
        (!names.is_empty()).then(|| Broken {
            reason: "restricted volume types".into(),
            detail: format!(
                "{} {} {} {} {}",
                pluralize("volume", "volumes", names.len()),
                join_quote(&names),
                pluralize("uses", "use", names.len()),
                pluralize(
                    "restricted volume type",
                    "restricted volume types",
                    kinds.len()
                ),
                join_quote(&kinds.into_iter().collect::<Vec<_>>())
            ),
        })
    }

    fn run_as_non_root(&self) -> Option<Broken> {
        let pod = self.pod_context("/runAsNonRoot").and_then(Value::as_bool);
        let explicit = self.containers_where(|c| {
            Pod::context(c, "/runAsNonRoot").and_then(Value::as_bool) == Some(false)
        });
        let implicit = self
            .containers_where(|c| Pod::context(c, "/runAsNonRoot").is_none() && pod != Some(true));
        let mut setters = Vec::new();
        if pod == Some(false) {
            setters.push("pod".to_string());
        }
        if !explicit.is_empty() {
            setters.push(containers_named(&explicit));
        }
        if !setters.is_empty() {
            return Some(Broken {
                reason: "runAsNonRoot != true".into(),
                detail: format!(
                    "{} must not set securityContext.runAsNonRoot=false",
                    setters.join(" and ")
                ),
            });
        }
        (!implicit.is_empty()).then(|| Broken {
            reason: "runAsNonRoot != true".into(),
            detail: format!(
                "pod or {} must set securityContext.runAsNonRoot=true",
                containers_named(&implicit)
            ),
        })
    }

    fn run_as_user(&self) -> Option<Broken> {
        let setters = self.setters("/runAsUser", |v| v.and_then(Value::as_i64) == Some(0));
        (!setters.is_empty()).then(|| Broken {
            reason: "runAsUser=0".into(),
            detail: format!("{} must not set runAsUser=0", setters.join(" and ")),
        })
    }

    fn seccomp_restricted(&self) -> Option<Broken> {
        let valid = |t: &str| t == "RuntimeDefault" || t == "Localhost";
        let mut setters = Vec::new();
        let mut values = BTreeSet::new();
        let pod = Pod::seccomp_type(self.pod_context("/seccompProfile"));
        let pod_valid = pod.is_some_and(valid);
        if let Some(t) = pod.filter(|t| !valid(t)) {
            setters.push("pod".to_string());
            values.insert(t.to_string());
        }
        let explicit = self.containers_where(|c| {
            match Pod::seccomp_type(Pod::context(c, "/seccompProfile")) {
                Some(t) if !valid(t) => {
                    values.insert(t.to_string());
                    true
                }
                _ => false,
            }
        });
        let implicit =
            self.containers_where(|c| Pod::context(c, "/seccompProfile").is_none() && !pod_valid);
        if !explicit.is_empty() {
            setters.push(containers_named(&explicit));
        }
        if !setters.is_empty() {
            return Some(Broken {
                reason: "seccompProfile".into(),
                detail: format!(
                    "{} must not set securityContext.seccompProfile.type to {}",
                    setters.join(" and "),
                    join_quote(&values.into_iter().collect::<Vec<_>>())
                ),
            });
        }
        (!implicit.is_empty()).then(|| Broken {
            reason: "seccompProfile".into(),
            detail: format!(
                "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                containers_named(&implicit)
            ),
        })
    }
}

fn added_capabilities(container: &Value) -> Vec<String> {
    Pod::context(container, "/capabilities/add")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nginx() -> Value {
        json!({"containers": [{"name": "nginx", "image": "nginx:1.27"}]})
    }

    #[test]
    fn a_plain_pod_breaks_restricted_as_the_server_says() {
        assert_eq!(
            details(&evaluate(Level::Restricted, &nginx())),
            "allowPrivilegeEscalation != false (container \"nginx\" must set securityContext.allowPrivilegeEscalation=false), \
             unrestricted capabilities (container \"nginx\" must set securityContext.capabilities.drop=[\"ALL\"]), \
             runAsNonRoot != true (pod or container \"nginx\" must set securityContext.runAsNonRoot=true), \
             seccompProfile (pod or container \"nginx\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
        );
        assert!(evaluate(Level::Baseline, &nginx()).is_empty());
    }

    #[test]
    fn a_hardened_pod_passes_restricted() {
        let spec = json!({"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "app", "securityContext": {"allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}],
            "volumes": [{"name": "cfg", "configMap": {"name": "x"}}]});
        assert!(
            evaluate(Level::Restricted, &spec).is_empty(),
            "{:?}",
            evaluate(Level::Restricted, &spec)
        );
    }

    #[test]
    fn baseline_refuses_host_access_and_privilege() {
        let spec = json!({"hostNetwork": true, "hostPID": true,
            "containers": [
                {"name": "a", "securityContext": {"privileged": true, "capabilities": {"add": ["NET_ADMIN", "SYS_TIME"]}},
                 "ports": [{"containerPort": 80, "hostPort": 8080}]},
                {"name": "b", "ports": [{"containerPort": 81, "hostPort": 9090}]}],
            "volumes": [{"name": "root", "hostPath": {"path": "/"}}]});
        assert_eq!(
            details(&evaluate(Level::Baseline, &spec)),
            "non-default capabilities (container \"a\" must not include \"NET_ADMIN\", \"SYS_TIME\" in securityContext.capabilities.add), \
             host namespaces (hostNetwork=true, hostPID=true), hostPath volumes (volume \"root\"), \
             hostPort (containers \"a\", \"b\" use hostPorts 8080, 9090), \
             privileged (container \"a\" must not set securityContext.privileged=true)"
        );
    }

    #[test]
    fn labels_give_the_policy() {
        let labels = json!({"pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "v1.30",
            "pod-security.kubernetes.io/warn": "baseline"});
        let policy = Policy::of(labels.as_object());
        assert_eq!(policy.enforce.to_string(), "restricted:v1.30");
        assert_eq!(policy.warn.to_string(), "baseline:latest");
        let bad = json!({"pod-security.kubernetes.io/enforce": "strict"});
        let policy = Policy::of(bad.as_object());
        assert_eq!(policy.enforce.level, Level::Restricted);
        assert_eq!(
            policy.errors[0].to_string(),
            "metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: \"strict\": must be one of privileged, baseline, restricted"
        );
    }
}
