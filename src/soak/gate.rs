//! Whether the soak may work, kept true: before the population runs, and while it runs.
//! hubsoak's own faults (the endpoint is not a hub, the token is rejected or lacks a
//! scope, another instance holds the prefix) are told apart from the hub's: each is
//! `/readyz` 503 with the reason, `hubsoak_problem{problem}` = 1, and one ERROR line
//! (again at most every 5 minutes while it lasts); no user is touched meanwhile. A hub
//! that is down is the hub's fault: the soak keeps running and counts it.
//!
//! Checked at start, whenever the hub answers 401 or 403, and whenever `hub.token_file`
//! changes (a rotated Kubernetes Secret), whose new token is used from then on.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::admin::Readiness;
use crate::hub::{
    CheckError, Claim, HubClient, Lease, Need, Problem, ProblemKind, Token, TokenFileError,
};
use crate::metrics::Metrics;

/// An ERROR line for a lasting problem at most this often.
const REPEAT_ERROR: Duration = Duration::from_secs(300);
/// While hubsoak cannot work, it looks again this often.
const RETRY: Duration = Duration::from_secs(5);
/// A 401/403 during the run makes a re-check at most this often.
const RECHECK_MIN: Duration = Duration::from_secs(5);
/// How often the token file is read for a change.
const TOKEN_POLL: Duration = Duration::from_secs(2);

/// Reads the token file again when it changes.
struct TokenFile {
    path: Option<PathBuf>,
    last: Option<Token>,
    /// An unusable file is reported once, not at every poll.
    reported_invalid: bool,
}

impl TokenFile {
    /// The new token once the file's content changes to a valid one.
    async fn changed(&mut self) -> Token {
        let Some(path) = self.path.clone() else {
            return std::future::pending().await;
        };
        loop {
            tokio::time::sleep(TOKEN_POLL).await;
            match Token::read_file(&path) {
                Ok(token) if self.last.as_ref() == Some(&token) => self.reported_invalid = false,
                Ok(token) => {
                    self.reported_invalid = false;
                    self.last = Some(token.clone());
                    return token;
                }
                // Being rewritten, or gone for a moment: the next poll reads it again.
                Err(TokenFileError::Read { .. }) => {}
                Err(e @ TokenFileError::Invalid { .. }) => {
                    if !std::mem::replace(&mut self.reported_invalid, true) {
                        tracing::error!(
                            path = %path.display(),
                            error = %e,
                            "hub.token_file changed but holds no usable token; keeping the old one"
                        );
                    }
                }
            }
        }
    }
}

pub struct Gate {
    client: HubClient,
    metrics: Metrics,
    ready: Readiness,
    needs: Vec<Need>,
    lease: Lease,
    token_file: TokenFile,
    problem: Option<Problem>,
    logged: HashMap<ProblemKind, Instant>,
    last_check: Option<Instant>,
    unreachable_logged: Option<Instant>,
    /// Whether the population ever ran.
    pub worked: bool,
    /// Whether the lease is ours now.
    pub holding: bool,
}

/// What ended a run of the population.
pub enum Interrupted {
    /// The soak is stopping.
    Stop,
    /// hubsoak cannot work any more (reported already).
    Problem,
}

impl Gate {
    pub fn new(
        client: HubClient,
        metrics: Metrics,
        ready: Readiness,
        needs: Vec<Need>,
        lease: Lease,
        token_file: Option<PathBuf>,
    ) -> Gate {
        let last = token_file.as_ref().and_then(|p| Token::read_file(p).ok());
        Gate {
            client,
            metrics,
            ready,
            needs,
            lease,
            token_file: TokenFile {
                path: token_file,
                last,
                reported_invalid: false,
            },
            problem: None,
            logged: HashMap::new(),
            last_check: None,
            unreachable_logged: None,
            worked: false,
            holding: false,
        }
    }

    pub fn problem(&self) -> Option<&Problem> {
        self.problem.as_ref()
    }

    fn report(&mut self, p: Problem) {
        let kind = p.kind();
        // A holder's lease time moves with every renewal: compare kinds, not texts.
        let changed = self.problem.as_ref().map(Problem::kind) != Some(kind);
        let due = self
            .logged
            .get(&kind)
            .is_none_or(|t| t.elapsed() >= REPEAT_ERROR);
        if changed || due {
            tracing::error!(problem = kind.as_str(), "{p}");
            self.logged.insert(kind, Instant::now());
        }
        self.metrics.set_problem(Some(kind));
        self.ready.not_ready(format!("{kind}: {p}"));
        self.problem = Some(p);
    }

    fn clear(&mut self) {
        if let Some(p) = self.problem.take() {
            tracing::info!(
                problem = p.kind().as_str(),
                "problem cleared; hubsoak can work"
            );
            self.logged.remove(&p.kind());
        }
        self.metrics.set_problem(None);
    }

    fn unreachable(&mut self, doing: &str, e: &dyn std::fmt::Display) {
        self.ready
            .not_ready(format!("cannot reach the hub to {doing}: {e}"));
        if self
            .unreachable_logged
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(60))
        {
            tracing::warn!(error = %e, "cannot reach the hub to {doing}; trying again");
            self.unreachable_logged = Some(Instant::now());
        }
    }

    /// Checks access; `Some(ok)` when it could tell.
    async fn check(&mut self) -> Option<bool> {
        self.last_check = Some(Instant::now());
        match self.client.check_access(&self.needs).await {
            Ok(access) => {
                self.metrics.set_hub_version(&access.version);
                if self
                    .problem
                    .as_ref()
                    .is_some_and(|p| p.kind() != ProblemKind::PrefixHeld)
                {
                    self.clear();
                }
                Some(true)
            }
            Err(CheckError::Problem(p)) => {
                self.report(p);
                Some(false)
            }
            Err(CheckError::Unreachable(e)) => {
                self.unreachable("check the token", &e);
                None
            }
        }
    }

    /// Waits until hubsoak can work and holds the lease (`true`), or `stop` (`false`).
    pub async fn wait_until_able(&mut self, stop: &CancellationToken) -> bool {
        loop {
            if stop.is_cancelled() {
                return false;
            }
            if self.check().await == Some(true) {
                match self.lease.acquire().await {
                    Ok(Claim::Held) => {
                        if self.problem.is_some() || !self.worked {
                            tracing::info!(group = self.lease.group(), "prefix lease taken");
                        }
                        self.clear();
                        self.holding = true;
                        self.worked = true;
                        self.ready.ready();
                        return true;
                    }
                    Ok(Claim::HeldBy(holder)) => self.report(Problem::PrefixHeld {
                        prefix: self.lease.prefix().to_string(),
                        holder: holder.to_string(),
                    }),
                    Ok(Claim::Contended) => {}
                    Err(e) => self.unreachable("take the prefix lease", &e),
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return false,
                _ = tokio::time::sleep(RETRY) => {}
                token = self.token_file.changed() => self.use_token(&token),
            }
        }
    }

    fn use_token(&self, token: &Token) {
        tracing::info!("hub.token_file changed; using the new token");
        self.client.auth().set(token);
    }

    /// Keeps watching while the population runs: renews the lease, re-checks on a
    /// 401/403 and on a new token. Returns when `run` is cancelled or hubsoak cannot
    /// work any more (then the population must stop).
    pub async fn watch(&mut self, run: &CancellationToken) -> Interrupted {
        let mut refusals = self.client.auth_refusals();
        refusals.borrow_and_update();
        let period = (self.lease.ttl() / 3).max(Duration::from_secs(1));
        let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            tokio::select! {
                _ = run.cancelled() => return Interrupted::Stop,
                changed = refusals.changed() => {
                    if changed.is_err() {
                        continue;
                    }
                    if let Some(t) = self.last_check {
                        let wait = RECHECK_MIN.saturating_sub(t.elapsed());
                        tokio::select! {
                            _ = run.cancelled() => return Interrupted::Stop,
                            _ = tokio::time::sleep(wait) => {}
                        }
                    }
                    refusals.borrow_and_update();
                    if self.check().await == Some(false) {
                        return Interrupted::Problem;
                    }
                }
                _ = renew.tick() => match self.lease.renew().await {
                    Ok(Claim::HeldBy(holder)) => {
                        self.holding = false;
                        self.report(Problem::PrefixHeld {
                            prefix: self.lease.prefix().to_string(),
                            holder: holder.to_string(),
                        });
                        return Interrupted::Problem;
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot renew the prefix lease; it lapses if this lasts"),
                },
                token = self.token_file.changed() => {
                    self.use_token(&token);
                    if self.check().await == Some(false) {
                        return Interrupted::Problem;
                    }
                }
            }
        }
    }

    /// Clears the lease (if ours) so a waiting instance takes over at once.
    pub async fn release(&mut self) {
        if !self.holding {
            return;
        }
        match self.lease.release().await {
            Ok(()) => tracing::info!(group = self.lease.group(), "prefix lease released"),
            Err(e) => {
                tracing::warn!(error = %e, "cannot release the prefix lease; it expires by itself")
            }
        }
        self.holding = false;
    }
}
