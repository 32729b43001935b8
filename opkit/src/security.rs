//! The restricted Pod Security Standard, as ready-made security contexts.
//!
//! Containers run as non-root, without privilege escalation, with every capability dropped, a
//! read-only root filesystem and the runtime's default seccomp profile, which is what the
//! `restricted` profile of Pod Security Admission demands (the read-only root filesystem goes
//! further: nothing in an operator's pods should write to its image).

use k8s_openapi::api::core::v1::{
    Capabilities, PodSecurityContext, SeccompProfile, SecurityContext,
};

/// A container security context satisfying the `restricted` Pod Security Standard.
///
/// ```
/// let sc = opkit::security::restricted();
/// assert_eq!(sc.run_as_non_root, Some(true));
/// assert_eq!(sc.allow_privilege_escalation, Some(false));
/// assert_eq!(sc.capabilities.and_then(|c| c.drop), Some(vec!["ALL".to_string()]));
/// ```
pub fn restricted() -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            ..Default::default()
        }),
        seccomp_profile: Some(runtime_default()),
        ..Default::default()
    }
}

/// A pod security context satisfying the `restricted` Pod Security Standard, running as `user`
/// (user, group and volume group) when the image needs a particular one.
///
/// ```
/// let pod = opkit::security::restricted_pod(Some(999));
/// assert_eq!(pod.run_as_non_root, Some(true));
/// assert_eq!((pod.run_as_user, pod.fs_group), (Some(999), Some(999)));
/// assert_eq!(pod.seccomp_profile.map(|p| p.type_), Some("RuntimeDefault".to_string()));
/// ```
pub fn restricted_pod(user: Option<i64>) -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: user,
        run_as_group: user,
        fs_group: user,
        seccomp_profile: Some(runtime_default()),
        ..Default::default()
    }
}

fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".to_owned(),
        ..Default::default()
    }
}
