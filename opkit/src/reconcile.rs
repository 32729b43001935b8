//! The reconcile contract: [`Reconcile`] makes the world match one object, [`Action`] says when
//! to look again.

use std::future::Future;
use std::time::Duration;

use crate::context::Context;
use crate::error::Result;
use crate::object::Object;

/// What the reconcile asks for next.
///
/// ```
/// use std::time::Duration;
/// use opkit::Action;
/// assert_eq!(Action::requeue_after(Duration::from_secs(30)), Action::RequeueAfter(Duration::from_secs(30)));
/// assert_eq!(Action::done(), Action::Done);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Converged: look again after the controller's resync interval.
    Done,
    /// Look again after this long, even if nothing changes (an external system to poll).
    RequeueAfter(Duration),
    /// Look again only when the object or one of its dependents changes.
    AwaitChange,
}

impl Action {
    /// Converged: look again after the controller's resync interval.
    ///
    /// ```
    /// assert_eq!(opkit::Action::done(), opkit::Action::Done);
    /// ```
    pub const fn done() -> Self {
        Self::Done
    }

    /// Look again after `after`, even if nothing changes.
    ///
    /// ```
    /// let a = opkit::Action::requeue_after(std::time::Duration::from_secs(10));
    /// assert!(matches!(a, opkit::Action::RequeueAfter(d) if d.as_secs() == 10));
    /// ```
    pub const fn requeue_after(after: Duration) -> Self {
        Self::RequeueAfter(after)
    }

    /// Look again only when something changes.
    ///
    /// ```
    /// assert_eq!(opkit::Action::await_change(), opkit::Action::AwaitChange);
    /// ```
    pub const fn await_change() -> Self {
        Self::AwaitChange
    }
}

/// The reconcile of one kind of object, implemented on the kind itself: a custom resource of
/// the operator's own (with `#[derive(Operator)]`) or any built-in kind.
///
/// `D` is the controller's shared data, reached through [`Context::data`]: its configuration,
/// clients of external systems. The controller is built with a value of `D`
/// ([`Controller::new`](crate::Controller::new)), so a missing dependency is a compile error, not
/// a failed reconcile. Two controllers on the same kind implement `Reconcile` with two different
/// `D`s.
///
/// # Guarantees
///
/// - `reconcile` is level-triggered: it runs on creation, on every change of the object's spec
///   (its `generation`; for kinds without one, any change), on every change of a dependent or
///   watched object that maps to it, after a restart and on resync. It must make the world match
///   the object each time, whatever happened before: it may run again after a partial failure, or
///   twice for the same state (a resync right after a change).
/// - Never two reconciles of the same object at once; different objects reconcile concurrently up
///   to the controller's concurrency.
/// - An `Err` is retried: transient errors with per-object exponential backoff and jitter,
///   permanent ones after a long interval or at the next change. Both are reported as a Warning
///   event and, on custom resources, as the `Degraded` condition; conflicts (409) are retried
///   quietly and reported only from the third in a row. A panic is caught and retried like a
///   transient error.
/// - The status described through [`Context::status`] is written once the reconcile returns,
///   whether it succeeded or failed, and only when it differs from the live status — except
///   after the first two consecutive conflicts (nothing is written) and after a successful
///   cleanup (the object is going); see [`crate::status`].
///
/// `cleanup` runs when the object is being deleted, if the controller declared a finalizer: the
/// finalizer is added before the first `reconcile` (so no side effect can escape cleanup) and
/// removed only after `cleanup` returns `Ok`. An `Err` keeps the object (and its finalizer) and
/// retries as above. `cleanup` may run more than once — after a crash between its success and the
/// finalizer's removal, or when removing the finalizer fails — so it must be idempotent.
/// Dependents with owner references are deleted by the garbage collector; cleanup is for what it
/// cannot reach: external resources, and dependents outside the primary's namespace or
/// cluster-scoped, which carry opkit's owner labels and which opkit deletes itself before calling
/// `cleanup` (for the kinds the controller [`owns`](crate::Controller::owns)).
///
/// ```
/// use opkit::prelude::*;
/// use k8s_openapi::api::core::v1::ConfigMap;
/// use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
///
/// #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
/// #[kube(group = "example.com", version = "v1", kind = "Echo", namespaced)]
/// #[operator(owns(ConfigMap))]
/// pub struct EchoSpec {
///     pub text: String,
/// }
///
/// struct EchoConfig<'a>(&'a Echo);
///
/// impl Ensure for EchoConfig<'_> {
///     type Object = ConfigMap;
///     fn desired(&self) -> ConfigMap {
///         ConfigMap {
///             metadata: ObjectMeta { name: Some(self.0.name_any()), ..Default::default() },
///             data: Some([("text".to_string(), self.0.spec.text.clone())].into()),
///             ..Default::default()
///         }
///     }
/// }
///
/// impl Reconcile for Echo {
///     async fn reconcile(&self, ctx: &Context<Self>) -> opkit::Result<Action> {
///         ctx.ensure(EchoConfig(self)).await?;
///         Ok(Action::done())
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no controller with data `{D}`",
    label = "no `impl Reconcile<{D}> for {Self}`",
    note = "a controller built with data of type `{D}` needs `impl Reconcile<{D}> for {Self}`; \
            `Operator::controller(data)` and `Manager::operator::<K>()` (data `()`) pick the impl by the data's type"
)]
pub trait Reconcile<D: Send + Sync + 'static = ()>: Object {
    /// Makes the world match this object.
    fn reconcile(&self, ctx: &Context<Self, D>) -> impl Future<Output = Result<Action>> + Send;

    /// Releases what owner references cannot (external resources) before the finalizer is
    /// removed; see the guarantees above.
    fn cleanup(&self, ctx: &Context<Self, D>) -> impl Future<Output = Result<()>> + Send {
        let _ = ctx;
        async { Ok(()) }
    }
}
