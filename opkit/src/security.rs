//! The restricted Pod Security Standard, as ready-made security contexts.
//!
//! Containers run as non-root, without privilege escalation, with every capability dropped, a
//! read-only root filesystem and the runtime's default seccomp profile, which is what the
//! `restricted` profile of Pod Security Admission demands (the read-only root filesystem goes
//! further, as the seed recommends).

use k8s_openapi::api::core::v1::{Capabilities, SeccompProfile, SecurityContext};

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
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            ..Default::default()
        }),
        ..Default::default()
    }
}
