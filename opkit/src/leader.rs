//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several replicas only one
//! reconciles.
//!
//! The protocol is client-go's: every candidate reads the Lease each retry period and takes it
//! when it is free or when its record has not changed for the lease duration, as measured on the
//! candidate's own clock (so clock skew between nodes does not matter); writes carry the
//! resourceVersion they read, so two candidates can never both win. The leader renews every
//! retry period and gives up (its controllers are cancelled) once it could not renew for the
//! renew deadline, counted from the start of its last successful renewal. As the renew deadline
//! is shorter than the lease duration, the old leader has stopped before anyone else may take
//! over. A graceful shutdown releases the Lease at once.
//!
//! kube-lease-manager (the maintained crate on kube 5) is not used: while its renewals fail it
//! keeps reporting leadership (an error only backs off and retries), so a leader cut off from the
//! API server would keep reconciling after its Lease expired for the others; it also computes
//! expiry from the holder's timestamps (clock skew) and has whole-second periods only.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::error::{Error, Result};
use crate::metrics::Metrics;

/// How a process competes for leadership: the Lease's name and namespace, this process's
/// identity, and the timing (controller-runtime's defaults: lease 15 s, renew deadline 10 s,
/// retry 2 s).
///
/// ```
/// use std::time::Duration;
/// let election = opkit::LeaderElection::new("webapp-operator-lock")
///     .namespace("webapp-operator-system")
///     .lease_duration(Duration::from_secs(30))
///     .renew_deadline(Duration::from_secs(20));
/// assert_eq!(election.retry_period, Duration::from_secs(2));
/// assert!(election.validate().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderElection {
    /// Name of the Lease (controller-runtime's `LeaderElectionID`).
    pub id: String,
    /// Namespace of the Lease; `None` is the client's default namespace (the Pod's own namespace
    /// in a cluster).
    pub namespace: Option<String>,
    /// This process's name in `holderIdentity`; unique per replica (hostname and a random suffix
    /// by default).
    pub identity: String,
    /// How long a Lease that stopped changing is honoured by the other candidates.
    pub lease_duration: Duration,
    /// How long the leader keeps acting while it cannot renew; shorter than `lease_duration`.
    pub renew_deadline: Duration,
    /// How often candidates try to acquire and the leader renews.
    pub retry_period: Duration,
}

impl LeaderElection {
    /// The defaults for the Lease named `id`.
    ///
    /// ```
    /// let election = opkit::LeaderElection::new("webapp-operator-lock");
    /// assert_eq!(election.lease_duration, std::time::Duration::from_secs(15));
    /// assert_eq!(election.renew_deadline, std::time::Duration::from_secs(10));
    /// assert!(election.namespace.is_none());
    /// ```
    pub fn new(id: impl Into<String>) -> Self {
        let host = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "opkit".to_owned());
        Self {
            id: id.into(),
            namespace: None,
            identity: format!("{host}_{:016x}", rand::random::<u64>()),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    /// Puts the Lease into `namespace`.
    ///
    /// ```
    /// let election = opkit::LeaderElection::new("lock").namespace("ops");
    /// assert_eq!(election.namespace.as_deref(), Some("ops"));
    /// ```
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Sets this process's identity (the Pod name is a good choice).
    ///
    /// ```
    /// let election = opkit::LeaderElection::new("lock").identity("webapp-operator-7d9f-x2");
    /// assert_eq!(election.identity, "webapp-operator-7d9f-x2");
    /// ```
    pub fn identity(mut self, identity: impl Into<String>) -> Self {
        self.identity = identity.into();
        self
    }

    /// Sets the lease duration (whole seconds on the Lease, rounded up).
    ///
    /// ```
    /// let election = opkit::LeaderElection::new("lock").lease_duration(std::time::Duration::from_secs(20));
    /// # assert!(election.validate().is_ok());
    /// ```
    pub fn lease_duration(mut self, duration: Duration) -> Self {
        self.lease_duration = duration;
        self
    }

    /// Sets the renew deadline.
    ///
    /// ```
    /// let election = opkit::LeaderElection::new("lock").renew_deadline(std::time::Duration::from_secs(8));
    /// # assert!(election.validate().is_ok());
    /// ```
    pub fn renew_deadline(mut self, duration: Duration) -> Self {
        self.renew_deadline = duration;
        self
    }

    /// Sets the retry period.
    ///
    /// ```
    /// let election = opkit::LeaderElection::new("lock").retry_period(std::time::Duration::from_secs(1));
    /// # assert!(election.validate().is_ok());
    /// ```
    pub fn retry_period(mut self, duration: Duration) -> Self {
        self.retry_period = duration;
        self
    }

    /// Checks the timing as client-go does: lease duration > renew deadline > 1.2 × retry period
    /// (so a renewal can be retried before the deadline), and a lease of at least one second.
    ///
    /// ```
    /// use std::time::Duration;
    /// let bad = opkit::LeaderElection::new("lock").renew_deadline(Duration::from_secs(20));
    /// assert!(bad.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        let problem = if self.id.is_empty() {
            Some("the Lease name is empty".to_owned())
        } else if self.identity.is_empty() {
            Some("the identity is empty".to_owned())
        } else if self.lease_duration < Duration::from_secs(1) {
            Some("the lease duration must be at least 1s".to_owned())
        } else if self.renew_deadline >= self.lease_duration {
            Some(format!(
                "the renew deadline ({:?}) must be shorter than the lease duration ({:?})",
                self.renew_deadline, self.lease_duration
            ))
        } else if self.retry_period.is_zero()
            || self.renew_deadline <= self.retry_period.mul_f64(1.2)
        {
            Some(format!(
                "the renew deadline ({:?}) must be longer than 1.2 × the retry period ({:?})",
                self.renew_deadline, self.retry_period
            ))
        } else {
            None
        };
        match problem {
            Some(problem) => Err(Error::Config(format!("leader election: {problem}"))),
            None => Ok(()),
        }
    }

    fn lease_seconds(&self) -> i32 {
        i32::try_from(
            self.lease_duration.as_secs() + u64::from(self.lease_duration.subsec_nanos() > 0),
        )
        .unwrap_or(i32::MAX)
    }
}

/// The outcome of one attempt to acquire or renew.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    Leading,
    HeldBy(String),
    Conflict,
}

/// The Lease record last seen and when (on this process's clock) it was first seen.
struct Observed {
    spec: LeaseSpec,
    at: Instant,
}

/// The `leader_election_master_status{name}` gauges of one process, as controller-runtime
/// reports them: 1 while holding the Lease `name`.
#[derive(Clone, Default)]
pub(crate) struct LeaseStatus {
    family: Family<Vec<(&'static str, String)>, Gauge>,
}

impl LeaseStatus {
    /// The gauges, registered into `metrics`.
    pub(crate) fn register(metrics: &Metrics) -> Self {
        let status = Self::default();
        metrics.with_registry(|r| {
            r.register(
                "leader_election_master_status",
                "Whether this process holds the leader election Lease (1) or not (0)",
                status.family.clone(),
            )
        });
        status
    }

    fn gauge(&self, lease: &str) -> Gauge {
        self.family
            .get_or_create(&vec![("name", lease.to_owned())])
            .clone()
    }
}

/// One candidate's side of the protocol.
pub(crate) struct Elector {
    api: Api<Lease>,
    config: LeaderElection,
    observed: Option<Observed>,
    /// Start of the last successful acquisition or renewal.
    renewed: Instant,
    status: Gauge,
    /// Labels the Lease carries (a shard ring's membership Leases are found by them).
    labels: BTreeMap<String, String>,
    /// Every acquisition starts a new term (`leaseTransitions` counts up), even by a process
    /// of the same identity: what a previous term owned is never taken for this one's.
    fenced: bool,
}

impl Elector {
    /// A candidate for the Lease `config.id`, reporting into `status`.
    pub(crate) fn new(client: kube::Client, config: LeaderElection, status: &LeaseStatus) -> Self {
        let namespace = config
            .namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_owned());
        Self {
            api: Api::namespaced(client, &namespace),
            status: status.gauge(&config.id),
            config,
            observed: None,
            renewed: Instant::now(),
            labels: BTreeMap::new(),
            fenced: false,
        }
    }

    /// A fenced candidate whose Lease carries `labels`: see [`Elector::term`].
    pub(crate) fn fenced(mut self, labels: BTreeMap<String, String>) -> Self {
        self.labels = labels;
        self.fenced = true;
        self
    }

    /// The term this process holds the Lease in: its `leaseTransitions` when acquired.
    pub(crate) fn term(&self) -> i32 {
        self.observed
            .as_ref()
            .and_then(|o| o.spec.lease_transitions)
            .unwrap_or(0)
    }

    /// Campaigns until this process holds the Lease.
    pub(crate) async fn acquire(&mut self) {
        let mut reported = None;
        loop {
            let started = Instant::now();
            match tokio::time::timeout(self.config.renew_deadline, self.try_acquire_or_renew(false))
                .await
            {
                Ok(Ok(Attempt::Leading)) => {
                    self.renewed = started;
                    self.status.set(1);
                    tracing::info!(lease = %self.config.id, identity = %self.config.identity, "acquired the leader election lease");
                    return;
                }
                Ok(Ok(Attempt::HeldBy(holder))) => {
                    if reported.as_ref() != Some(&holder) {
                        tracing::info!(lease = %self.config.id, %holder, "standing by: another replica leads");
                        reported = Some(holder);
                    }
                }
                Ok(Ok(Attempt::Conflict)) => {}
                Ok(Err(error)) => {
                    tracing::warn!(lease = %self.config.id, %error, "cannot acquire the lease")
                }
                Err(_) => {
                    tracing::warn!(lease = %self.config.id, "acquiring the lease timed out")
                }
            }
            let jitter = 1.0 + rand::random::<f64>() * 0.2;
            tokio::time::sleep(self.config.retry_period.mul_f64(jitter)).await;
        }
    }

    /// Renews every retry period while leading; returns once leadership is lost: another
    /// replica holds the Lease, or no renewal succeeded within the renew deadline.
    pub(crate) async fn hold(&mut self) {
        loop {
            let deadline = self.renewed + self.config.renew_deadline;
            let next = (self.renewed + self.config.retry_period).min(deadline);
            tokio::time::sleep_until(next.into()).await;
            loop {
                let now = Instant::now();
                if now >= deadline {
                    self.lost("no renewal within the renew deadline");
                    return;
                }
                let started = now;
                match tokio::time::timeout(deadline - now, self.try_acquire_or_renew(true)).await {
                    Ok(Ok(Attempt::Leading)) => {
                        self.renewed = started;
                        break;
                    }
                    Ok(Ok(Attempt::HeldBy(holder))) => {
                        self.lost(&format!("the lease is held by {holder}"));
                        return;
                    }
                    Ok(Ok(Attempt::Conflict)) => {}
                    Ok(Err(error)) => {
                        tracing::warn!(lease = %self.config.id, %error, "cannot renew the lease")
                    }
                    Err(_) => {
                        self.lost("renewing timed out at the renew deadline");
                        return;
                    }
                }
                let retry = Instant::now() + self.config.retry_period;
                tokio::time::sleep_until(retry.min(deadline).into()).await;
            }
        }
    }

    fn lost(&self, why: &str) {
        self.status.set(0);
        tracing::error!(lease = %self.config.id, identity = %self.config.identity, "lost leadership: {why}; stopping the controllers");
    }

    /// Gives the Lease up if this process holds it, so a standby takes over at once.
    pub(crate) async fn release(&mut self) {
        self.status.set(0);
        let release = async {
            let Some(mut lease) = self.api.get_opt(&self.config.id).await? else {
                return Ok(false);
            };
            let spec = lease.spec.get_or_insert_with(Default::default);
            if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
                return Ok(false);
            }
            let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.acquire_time = Some(now.clone());
            spec.renew_time = Some(now);
            self.api
                .replace(&self.config.id, &PostParams::default(), &lease)
                .await
                .map(|_| true)
        };
        match tokio::time::timeout(self.config.renew_deadline, release).await {
            Ok(Ok(true)) => {
                tracing::info!(lease = %self.config.id, "released the leader election lease")
            }
            Ok(Ok(false)) => {}
            Ok(Err(error)) => {
                tracing::warn!(lease = %self.config.id, %error, "cannot release the lease; it expires by itself")
            }
            Err(_) => {
                tracing::warn!(lease = %self.config.id, "releasing the lease timed out; it expires by itself")
            }
        }
    }

    async fn try_acquire_or_renew(
        &mut self,
        renewing: bool,
    ) -> std::result::Result<Attempt, kube::Error> {
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let mine = |spec: &LeaseSpec, acquire: Option<MicroTime>, transitions: i32| LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(self.config.lease_seconds()),
            acquire_time: acquire,
            renew_time: Some(now.clone()),
            lease_transitions: Some(transitions),
            ..spec.clone()
        };
        let Some(mut lease) = self.api.get_opt(&self.config.id).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.id.clone()),
                    labels: (!self.labels.is_empty()).then(|| self.labels.clone()),
                    ..Default::default()
                },
                spec: Some(mine(&LeaseSpec::default(), Some(now.clone()), 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => Ok(self.observe_own(created)),
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(Attempt::Conflict),
                Err(error) => Err(error),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        if self.observed.as_ref().is_none_or(|o| o.spec != spec) {
            self.observed = Some(Observed {
                spec: spec.clone(),
                at: Instant::now(),
            });
        }
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let held_by_me = holder == self.config.identity;
        if !holder.is_empty() && !held_by_me {
            let honoured = spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map_or(self.config.lease_duration, Duration::from_secs);
            let seen = self.observed.as_ref().map_or_else(Instant::now, |o| o.at);
            if seen.elapsed() < honoured {
                return Ok(Attempt::HeldBy(holder));
            }
        }
        let transitions = spec.lease_transitions.unwrap_or(0);
        if !self.labels.is_empty() {
            lease
                .metadata
                .labels
                .get_or_insert_with(BTreeMap::new)
                .extend(self.labels.clone());
        }
        lease.spec = Some(if held_by_me && (renewing || !self.fenced) {
            mine(&spec, spec.acquire_time.clone(), transitions)
        } else {
            mine(&spec, Some(now.clone()), transitions.saturating_add(1))
        });
        match self
            .api
            .replace(&self.config.id, &PostParams::default(), &lease)
            .await
        {
            Ok(replaced) => Ok(self.observe_own(replaced)),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(Attempt::Conflict),
            Err(error) => Err(error),
        }
    }

    fn observe_own(&mut self, lease: Lease) -> Attempt {
        self.observed = Some(Observed {
            spec: lease.spec.unwrap_or_default(),
            at: Instant::now(),
        });
        Attempt::Leading
    }
}

/// The leader election flags of `run`, with controller-runtime's names.
///
/// ```
/// use clap::Parser;
/// let cli = opkit::app::Cli::parse_from(["op", "--leader-elect=false", "--leader-elect-lease-duration", "30s"]);
/// assert_eq!(cli.leader_election.leader_elect, Some(false));
/// assert_eq!(cli.leader_election.leader_elect_lease_duration, Some(std::time::Duration::from_secs(30)));
/// ```
#[cfg(feature = "cli")]
#[derive(Clone, Debug, Default, clap::Args)]
pub struct LeaderElectionFlags {
    /// Run the controllers only while holding the leader election Lease (default: on inside a cluster, off otherwise).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub leader_elect: Option<bool>,
    /// Name of the leader election Lease (default: NAME-lock).
    #[arg(long, value_name = "NAME")]
    pub leader_election_id: Option<String>,
    /// Namespace of the Lease (default: the Pod's namespace, or the kubeconfig context's).
    #[arg(long, value_name = "NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// How long other replicas honour a Lease that stopped being renewed (default 15s).
    #[arg(long, value_name = "DURATION", value_parser = crate::clock::parse_duration)]
    pub leader_elect_lease_duration: Option<Duration>,
    /// How long the leader keeps acting while it cannot renew (default 10s).
    #[arg(long, value_name = "DURATION", value_parser = crate::clock::parse_duration)]
    pub leader_elect_renew_deadline: Option<Duration>,
    /// How often to try to acquire or renew the Lease (default 2s).
    #[arg(long, value_name = "DURATION", value_parser = crate::clock::parse_duration)]
    pub leader_elect_retry_period: Option<Duration>,
}

#[cfg(feature = "cli")]
impl LeaderElectionFlags {
    /// The election to run with: `configured` (the code's choice) or the default Lease
    /// `NAME-lock` when the flags or `default_on` ask for one, adjusted by the flags and
    /// validated; `None` when leader election is off.
    ///
    /// ```
    /// let flags = opkit::leader::LeaderElectionFlags { leader_elect: Some(true), ..Default::default() };
    /// let election = flags.resolve(None, "webapp-operator", false).unwrap();
    /// assert_eq!(election.map(|e| e.id), Some("webapp-operator-lock".to_string()));
    /// ```
    pub fn resolve(
        &self,
        configured: Option<LeaderElection>,
        name: &str,
        default_on: bool,
    ) -> Result<Option<LeaderElection>> {
        if !self
            .leader_elect
            .unwrap_or(configured.is_some() || default_on)
        {
            return Ok(None);
        }
        let mut election =
            configured.unwrap_or_else(|| LeaderElection::new(format!("{name}-lock")));
        if let Some(id) = &self.leader_election_id {
            election.id.clone_from(id);
        }
        if let Some(namespace) = &self.leader_election_namespace {
            election.namespace = Some(namespace.clone());
        }
        if let Some(d) = self.leader_elect_lease_duration {
            election.lease_duration = d;
        }
        if let Some(d) = self.leader_elect_renew_deadline {
            election.renew_deadline = d;
        }
        if let Some(d) = self.leader_elect_retry_period {
            election.retry_period = d;
        }
        election.validate()?;
        Ok(Some(election))
    }
}
