//! Keeping instances registered: their records written under one lease, renewed while the
//! registrar runs. When it stops renewing (killed, partitioned) the lease expires and etcd
//! deletes the records, which every gateway sees; a clean close revokes the lease at once.

use std::time::Duration;

use etcd_client::{Client, GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse};
use tokio::{sync::watch, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use super::{EtcdError, EtcdOptions, MemberRecord, record::instance_key};

/// Puts per transaction, under etcd's default `--max-txn-ops` of 128.
const TXN_OPS: usize = 100;

/// Shortest lease etcd grants reliably.
const MIN_TTL: Duration = Duration::from_secs(2);

/// Where a registration stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationState {
    /// Not written yet.
    Registering,
    /// Written under `lease`, which is being renewed.
    Registered {
        /// The etcd lease id.
        lease: i64,
    },
    /// etcd is unreachable; retrying (the records expire after the TTL meanwhile).
    Lost {
        /// Why.
        error: String,
    },
}

/// One instance to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The service it serves.
    pub service: String,
    /// Its id, unique within the service.
    pub id: String,
    /// What gateways read.
    pub record: MemberRecord,
}

/// Instances kept registered until [`close`](Self::close) (or drop, after which their lease
/// runs out).
#[derive(Debug)]
pub struct Registration {
    state: watch::Receiver<RegistrationState>,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Registration {
    /// Registers `members` with a lease of `ttl` and keeps it alive (renewed every third of
    /// it), registering again after etcd comes back or the lease is lost.
    ///
    /// # Errors
    ///
    /// Invalid options, a TTL under 2 s, or a service or id that cannot be a key segment.
    pub fn start(
        options: EtcdOptions,
        members: Vec<Member>,
        ttl: Duration,
    ) -> Result<Self, EtcdError> {
        Self::validate(&options, &members, ttl)?;
        let (tx, state) = watch::channel(RegistrationState::Registering);
        let stop = CancellationToken::new();
        let keeper = Keeper {
            options,
            members,
            ttl,
            tx,
        };
        let task = tokio::spawn(keeper.run(stop.clone()));
        Ok(Self {
            state,
            stop,
            task: Some(task),
        })
    }

    /// Checks what [`start`](Self::start) would be given, without connecting.
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start).
    pub fn validate(
        options: &EtcdOptions,
        members: &[Member],
        ttl: Duration,
    ) -> Result<(), EtcdError> {
        options.validate()?;
        if ttl < MIN_TTL {
            return Err(EtcdError::Invalid(format!(
                "a TTL of {ttl:?} is too short: give at least {MIN_TTL:?}"
            )));
        }
        for member in members {
            for (what, value) in [("service", &member.service), ("id", &member.id)] {
                if value.is_empty() || value.contains('/') || value.chars().any(char::is_whitespace)
                {
                    return Err(EtcdError::Invalid(format!(
                        "{what} `{value}` cannot be registered: use a non-empty name without `/` or spaces"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Follows the state.
    pub fn state(&self) -> watch::Receiver<RegistrationState> {
        self.state.clone()
    }

    /// Waits (up to `timeout`) until the records are written.
    ///
    /// # Errors
    ///
    /// The last error seen when they are not written in time.
    pub async fn registered(&self, timeout: Duration) -> Result<i64, EtcdError> {
        let mut state = self.state();
        let wait = state.wait_for(|s| matches!(s, RegistrationState::Registered { .. }));
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(state)) => match *state {
                RegistrationState::Registered { lease } => Ok(lease),
                _ => unreachable!("waited for Registered"),
            },
            _ => Err(EtcdError::Invalid(format!(
                "not registered within {timeout:?}: {}",
                match &*self.state.borrow() {
                    RegistrationState::Lost { error } => error.clone(),
                    _ => "etcd did not answer".to_owned(),
                }
            ))),
        }
    }

    /// Stops renewing and revokes the lease, so the records disappear now rather than after
    /// the TTL (bounded by the options' timeout).
    pub async fn close(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

struct Keeper {
    options: EtcdOptions,
    members: Vec<Member>,
    ttl: Duration,
    tx: watch::Sender<RegistrationState>,
}

impl Keeper {
    async fn run(self, stop: CancellationToken) {
        let mut wait = Duration::from_millis(100);
        let mut lease = None;
        loop {
            let outcome = tokio::select! {
                () = stop.cancelled() => break,
                outcome = self.register_and_renew(&mut lease) => outcome,
            };
            if let Err(e) = outcome {
                if matches!(*self.tx.borrow(), RegistrationState::Registered { .. }) {
                    // It was working: retry soon, not after the last outage's backoff.
                    wait = Duration::from_millis(100);
                }
                tracing::warn!("registration: {e}; retrying in {wait:?}");
                self.tx.send_replace(RegistrationState::Lost {
                    error: e.to_string(),
                });
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(self.ttl / 3);
            }
        }
        if let Some((mut client, id)) = lease {
            let revoke = Client::lease_revoke(&mut client, id);
            if let Err(e) = tokio::time::timeout(self.options.timeout, revoke)
                .await
                .map_err(|_| "timed out".to_owned())
                .and_then(|r| r.map_err(|e| e.to_string()))
            {
                tracing::warn!(
                    "could not revoke the registration's lease (it expires by itself): {e}"
                );
            }
        }
    }

    /// Writes the records under a fresh lease and renews it until something fails.
    async fn register_and_renew(&self, lease: &mut Option<(Client, i64)>) -> Result<(), EtcdError> {
        let fail = |e: &dyn std::fmt::Display| EtcdError::request(self.options.shown(), e);
        let mut client = self.options.connect().await?;
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        let id = client
            .lease_grant(ttl, None)
            .await
            .map_err(|e| fail(&e))?
            .id();
        *lease = Some((client.clone(), id));
        self.put(&mut client, id, &self.members)
            .await
            .map_err(|e| fail(&e))?;
        let (mut keeper, mut answers) = client.lease_keep_alive(id).await.map_err(|e| fail(&e))?;
        self.tx
            .send_replace(RegistrationState::Registered { lease: id });
        tracing::info!(
            lease = id,
            instances = self.members.len(),
            "registered in etcd"
        );
        let mut tick = tokio::time::interval(self.ttl / 3);
        loop {
            tick.tick().await;
            keeper.keep_alive().await.map_err(|e| fail(&e))?;
            let answer = tokio::time::timeout(self.options.timeout, answers.message())
                .await
                .map_err(|_| fail(&"no answer to a lease renewal"))?
                .map_err(|e| fail(&e))?
                .ok_or_else(|| fail(&"the lease renewal stream ended"))?;
            if answer.ttl() <= 0 {
                return Err(fail(&"the lease expired; registering again"));
            }
            self.restore_missing(&mut client, id)
                .await
                .map_err(|e| fail(&e))?;
        }
    }

    /// Writes `members` under `lease`, in transactions etcd accepts (128 operations by
    /// default).
    async fn put(
        &self,
        client: &mut Client,
        lease: i64,
        members: &[Member],
    ) -> Result<(), etcd_client::Error> {
        for chunk in members.chunks(TXN_OPS) {
            let puts: Vec<TxnOp> = chunk
                .iter()
                .map(|m| {
                    let key = instance_key(&self.options.prefix, &m.service, &m.id);
                    let value = serde_json::to_vec(&m.record).unwrap_or_default();
                    TxnOp::put(key, value, Some(PutOptions::new().with_lease(lease)))
                })
                .collect();
            client.txn(Txn::new().and_then(puts)).await?;
        }
        Ok(())
    }

    /// Writes again the records that disappeared while the lease lives: another registrar
    /// of the same instance (gateways publishing one configuration) took the key over and
    /// withdrew it, or someone deleted it. A key held under another live lease is left to
    /// its holder.
    async fn restore_missing(
        &self,
        client: &mut Client,
        lease: i64,
    ) -> Result<(), etcd_client::Error> {
        let mut missing = Vec::new();
        for chunk in self.members.chunks(TXN_OPS) {
            let gets: Vec<TxnOp> = chunk
                .iter()
                .map(|m| {
                    let key = instance_key(&self.options.prefix, &m.service, &m.id);
                    TxnOp::get(key, Some(GetOptions::new().with_keys_only()))
                })
                .collect();
            let answer = client.txn(Txn::new().and_then(gets)).await?;
            for (member, response) in chunk.iter().zip(answer.op_responses()) {
                if let TxnOpResponse::Get(found) = response
                    && found.kvs().is_empty()
                {
                    missing.push(member.clone());
                }
            }
        }
        if !missing.is_empty() {
            tracing::info!(
                lease,
                instances = missing.len(),
                "registration records missing; writing them again"
            );
            self.put(client, lease, &missing).await?;
        }
        Ok(())
    }
}
