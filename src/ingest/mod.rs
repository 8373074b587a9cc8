//! The ingest pipeline: dedup, durability, folding, backpressure.
//!
//! One writer task owns the mutable state (the dedup set and the [`Delta`] of summaries since
//! the last checkpoint). Request handlers validate events on their own threads and hand batches
//! to the writer through a bounded queue; a full queue is answered 503 with `Retry-After`
//! ([`IngestError::Overloaded`]), never with unbounded memory.
//!
//! For each group of queued batches the writer (1) drops ids seen within the dedup horizon,
//! (2) appends the accepted events to the store's journal in one durable transaction (group
//! commit), (3) folds them into the delta, and only then (4) answers each batch. An event
//! answered 200 is therefore on disk. Every `checkpoint_interval`, on `flush` and on shutdown, the
//! delta is merged into the stored summaries and the journal rows it covers are deleted, in one
//! transaction. On start-up, `recover` reloads the dedup chunks and replays whatever journal
//! rows a crash left, so nothing acknowledged is lost and nothing is counted twice.

pub mod dedup;

use crate::events::Event;
use crate::metrics::Metrics;
use crate::store::{Appended, JournalEntry, Store, StoreError};
use crate::summary::delta::Delta;
use dedup::Dedup;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Checkpoint early once this many events are waiting in the delta (bounds memory).
const MAX_PENDING_EVENTS: u64 = 200_000;
/// Folded journal rows deleted after each group commit.
const JOURNAL_TRIM_STEP: i64 = 8;
/// Most batches made durable in one transaction.
const MAX_GROUP: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the ingest queue is full; retry later")]
    Overloaded,
    #[error("the service is shutting down")]
    Stopped,
    #[error("the store cannot take writes: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What became of a batch handed to the writer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchOutcome {
    pub accepted: usize,
    /// Positions (within the submitted batch) of events that were duplicates.
    pub duplicates: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct IngestSettings {
    pub bucket_secs: i64,
    pub sketch_k: u16,
    /// Numeric inputs per interaction summarised jointly (`ingest.joint_features`).
    pub joint_features: usize,
    /// Per-segment input summaries (`ingest.segment_keys`), shared by every batch.
    pub segments: Option<std::sync::Arc<crate::summary::delta::SegmentPlan>>,
    pub category_cap: usize,
    pub dedup_horizon_secs: i64,
    pub checkpoint_interval: Duration,
    pub queue_depth: usize,
    pub activity_ttl_days: i64,
    /// A writer of a shared store whose heartbeat is this old is taken over by another.
    pub writer_ttl_secs: i64,
    /// Names this process's writer (host and pid), for operators.
    pub writer_name: String,
    /// Longest a request waits for the writer's answer. Past it the request gets 503 (the
    /// writer is stuck on an unreachable store); the batch may still be committed later, and
    /// the client's retry is then counted as a duplicate, so nothing is counted twice.
    pub reply_timeout: Duration,
    /// Writer tasks on a shared store (each with its own writer id, dedup fast path and delta;
    /// the database's `event_ids` is the dedup of record). One on a store owned by one process.
    pub writers: usize,
}

impl IngestSettings {
    /// An empty delta with these settings' bucket, sketch and category parameters.
    pub fn delta(&self) -> Delta {
        Delta::new(self.bucket_secs, self.sketch_k, self.category_cap)
            .with_joint_features(self.joint_features)
            .with_segments(self.segments.clone())
    }
}

/// A validated batch, prepared for the writer on the caller's thread: its journal payload is
/// encoded, its ids hashed and its events already folded into a batch-sized [`Delta`], so the
/// single writer only checks ids, appends the payload and merges the delta (a few dozen sketch
/// merges instead of one update per value). The events themselves are dropped on the thread
/// that made them, a run at a time: a batch holds about 0.4 KB per event instead of 1.4.
pub struct Batch {
    payload: Vec<u8>,
    ids: Vec<u64>,
    delta: Delta,
}

impl Batch {
    /// An empty batch to [`add`](Self::add) events to.
    pub fn new(settings: &IngestSettings) -> Self {
        Self {
            payload: crate::store::JOURNAL_MAGIC.to_vec(),
            ids: Vec::new(),
            delta: settings.delta(),
        }
    }

    /// Encode, hash and fold a run of events (CPU work: call it off the async threads). Callers
    /// add a large batch a run at a time, so that only one run of decoded events is alive.
    pub fn add(&mut self, events: &[Event]) {
        if events.is_empty() {
            return;
        }
        crate::store::encode_events_into(events, &mut self.payload);
        self.ids
            .extend(events.iter().map(|e| dedup::hash_id(&e.event_id)));
        self.delta.fold_batch(events);
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// A batch with duplicates, without them.
struct Rebuilt {
    payload: Vec<u8>,
    ids: Vec<u64>,
    delta: Delta,
}

/// Where a batch's answer goes.
type Reply = oneshot::Sender<Result<BatchOutcome, IngestError>>;
/// A batch waiting for durability, with the channel its answer goes to.
type Pending = (Batch, Reply);

enum Command {
    Batch {
        batch: Batch,
        reply: oneshot::Sender<Result<BatchOutcome, IngestError>>,
    },
    Flush {
        reply: oneshot::Sender<Result<(), IngestError>>,
    },
    Stop {
        reply: oneshot::Sender<Result<(), IngestError>>,
    },
}

/// A cheap, cloneable handle to the writer.
#[derive(Clone)]
pub struct IngestHandle {
    /// One queue per writer task; batches go round robin, to the next queue when one is full.
    txs: Arc<[mpsc::Sender<Command>]>,
    next: Arc<std::sync::atomic::AtomicUsize>,
    metrics: Arc<Metrics>,
    settings: Arc<IngestSettings>,
}

impl IngestHandle {
    /// An empty batch to fill with validated events and then [`submit`](Self::submit).
    pub fn batch(&self) -> Batch {
        Batch::new(&self.settings)
    }

    /// Make a batch durable and fold it. Fails fast with `Overloaded` when the queue is full.
    pub async fn submit(&self, batch: Batch) -> Result<BatchOutcome, IngestError> {
        let (reply, rx) = oneshot::channel();
        // Counted before sending, so the writer's decrement can never come first.
        self.metrics.ingest_queue_batches.inc();
        let n = self.txs.len();
        let first = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut cmd = Command::Batch { batch, reply };
        let mut sent = false;
        for k in 0..n {
            match self.txs[(first + k) % n].try_send(cmd) {
                Ok(()) => {
                    sent = true;
                    break;
                }
                Err(mpsc::error::TrySendError::Full(c)) => cmd = c,
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.metrics.ingest_queue_batches.dec();
                    return Err(IngestError::Stopped);
                }
            }
        }
        if !sent {
            self.metrics.ingest_queue_batches.dec();
            self.metrics.ingest_overload.inc();
            return Err(IngestError::Overloaded);
        }
        match tokio::time::timeout(self.settings.reply_timeout, rx).await {
            Ok(r) => r.map_err(|_| IngestError::Stopped)?,
            Err(_) => Err(IngestError::Unavailable(format!(
                "the store did not answer within {} s",
                self.settings.reply_timeout.as_secs()
            ))),
        }
    }

    /// Checkpoint now (every writer), so that reads see every acknowledged event.
    pub async fn flush(&self) -> Result<(), IngestError> {
        self.each(|reply| Command::Flush { reply }).await
    }

    /// Drain the queues, checkpoint and stop the writers.
    pub async fn stop(&self) -> Result<(), IngestError> {
        self.each(|reply| Command::Stop { reply }).await
    }

    /// Send a command to every writer and wait for all; the first error wins.
    async fn each(
        &self,
        make: impl Fn(oneshot::Sender<Result<(), IngestError>>) -> Command,
    ) -> Result<(), IngestError> {
        let mut waits = Vec::with_capacity(self.txs.len());
        for tx in self.txs.iter() {
            let (reply, rx) = oneshot::channel();
            tx.send(make(reply))
                .await
                .map_err(|_| IngestError::Stopped)?;
            waits.push(rx);
        }
        let mut result = Ok(());
        for rx in waits {
            let r = rx.await.map_err(|_| IngestError::Stopped).and_then(|r| r);
            if result.is_ok() {
                result = r;
            }
        }
        result
    }
}

struct Writer {
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    settings: IngestSettings,
    dedup: Dedup,
    delta: Delta,
    pending_events: u64,
    journal_upto: i64,
    /// This process's writer id in the store.
    writer: i64,
    /// The store failed the last write: batches are answered 503 at once (not after a
    /// connection timeout each) until a checkpoint tick reaches the store again.
    store_down: bool,
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Register this process's writer, reload dedup state and take over the journal rows that
/// writers which stopped uncleanly left unfolded (in a shared store, only those whose heartbeat
/// lapsed), then checkpoint. Returns the number of events taken over. Called once before the
/// writer starts.
async fn recover(w: &mut Writer, load_dedup: bool) -> Result<u64, IngestError> {
    let now = now_secs();
    if load_dedup {
        for c in w
            .store
            .journal()
            .dedup_chunks(now - w.settings.dedup_horizon_secs)
            .await?
        {
            w.dedup.load(&c);
        }
    }
    // One process owns a SQLite file: every other writer there is a previous, stopped process.
    let stale_after = if w.store.journal().shared() {
        w.settings.writer_ttl_secs
    } else {
        0
    };
    let replayed = w.adopt(stale_after).await?;
    w.checkpoint().await?;
    Ok(replayed)
}

impl Writer {
    /// Take over the unfolded journal rows of stopped writers and fold them. Returns the events.
    async fn adopt(&mut self, stale_after_secs: i64) -> Result<u64, IngestError> {
        let adopted = self
            .store
            .journal()
            .adopt_orphans(self.writer, stale_after_secs)
            .await?;
        let mut replayed = 0u64;
        for (seq, payload) in &adopted.rows {
            let events = crate::store::decode_batch(payload).map_err(|e| StoreError::Corrupt {
                what: "journal",
                detail: format!("row {seq}: {e}"),
            })?;
            for e in &events {
                self.dedup.insert(dedup::hash_id(&e.event_id));
            }
            self.delta.fold_batch(&events);
            replayed += events.len() as u64;
            self.pending_events += events.len() as u64;
            self.metrics.ingest_pending_events.add(events.len() as i64);
            self.journal_upto = self.journal_upto.max(*seq);
        }
        if !adopted.writers.is_empty() {
            tracing::info!(
                writers = ?adopted.writers,
                events = replayed,
                "took over the ingest journal of writers that stopped without folding it"
            );
        }
        Ok(replayed)
    }

    /// This writer was taken over by another (its heartbeat lapsed): whatever it had not
    /// folded is now the other writer's. Drop it and register anew.
    async fn refence(&mut self) -> Result<(), StoreError> {
        tracing::warn!(
            writer = self.writer,
            "this ingest writer was taken over by another replica; registering anew"
        );
        self.delta = self.settings.delta();
        self.metrics
            .ingest_pending_events
            .sub(self.pending_events as i64);
        self.pending_events = 0;
        self.journal_upto = 0;
        self.writer = self
            .store
            .journal()
            .register_writer(&self.settings.writer_name)
            .await?;
        Ok(())
    }

    /// Every checkpoint interval: checkpoint (which also refreshes the heartbeat) and, in a
    /// shared store, take over writers whose heartbeat lapsed.
    async fn tick(&mut self) -> Result<(), IngestError> {
        let was_down = self.store_down;
        let r = self.checkpoint().await;
        self.store_down = matches!(r, Err(IngestError::Store(StoreError::Database(_))));
        if self.store_down {
            return r;
        }
        if was_down {
            tracing::info!("the store is reachable again; taking events");
        }
        r?;
        if self.store.journal().shared() {
            self.adopt(self.settings.writer_ttl_secs).await?;
        }
        Ok(())
    }

    async fn checkpoint(&mut self) -> Result<(), IngestError> {
        match self.try_checkpoint().await {
            Err(IngestError::Store(StoreError::Fenced)) => {
                self.refence().await?;
                Ok(())
            }
            r => r,
        }
    }

    async fn try_checkpoint(&mut self) -> Result<(), IngestError> {
        let now = now_secs();
        let chunk = self.dedup.seal(now);
        if self.delta.is_empty() && chunk.is_none() && self.journal_upto == 0 {
            self.store.journal().heartbeat(self.writer).await?;
            return Ok(());
        }
        let start = Instant::now();
        let fresh = self.settings.delta();
        let delta = std::mem::replace(&mut self.delta, fresh);
        if let Err(e) = self
            .store
            .journal()
            .checkpoint(self.writer, &delta, chunk.as_ref(), self.journal_upto)
            .await
        {
            // Keep the delta: the journal still holds its events, and the next checkpoint retries.
            let mut back = delta;
            back.merge(&self.delta);
            self.delta = back;
            if let Some(c) = chunk {
                for id in c.ids {
                    self.dedup.insert(id);
                }
            }
            return Err(e.into());
        }
        self.metrics
            .observe_store_write("checkpoint", start.elapsed().as_secs_f64());
        self.metrics.category_overflow.inc_by(delta.overflowed);
        self.metrics
            .ingest_pending_events
            .sub(self.pending_events as i64);
        self.pending_events = 0;
        self.journal_upto = 0;
        self.dedup.expire(now);
        self.store
            .journal()
            .trim(self.writer, JOURNAL_TRIM_STEP * 8)
            .await?;
        let activity_cutoff = now.div_euclid(86_400) - self.settings.activity_ttl_days;
        self.store
            .journal()
            .purge(
                now - self.settings.dedup_horizon_secs - 600,
                activity_cutoff,
            )
            .await?;
        Ok(())
    }

    /// Make a group of batches durable, then fold them and answer each.
    async fn commit_group(&mut self, group: Vec<Pending>) {
        // Per batch: the batch, what became of its events so far, and its reply.
        let mut items: Vec<(Batch, BatchOutcome, Reply)> = Vec::with_capacity(group.len());
        let mut fresh_ids: Vec<u64> = Vec::new();
        for (batch, reply) in group {
            let mut outcome = BatchOutcome::default();
            for (i, &h) in batch.ids.iter().enumerate() {
                if self.dedup.insert(h) {
                    fresh_ids.push(h);
                } else {
                    outcome.duplicates.push(i);
                }
            }
            items.push((batch, outcome, reply));
        }
        let start = Instant::now();
        // Rebuilt only for batches with duplicates (rare): decoded, filtered and re-encoded.
        let mut rebuilt: Vec<Option<Rebuilt>> = Vec::new();
        let mut refenced = false;
        let result = loop {
            rebuilt.clear();
            let mut failed = None;
            for (batch, outcome, _) in &items {
                if outcome.duplicates.is_empty() || outcome.duplicates.len() == batch.ids.len() {
                    rebuilt.push(None);
                    continue;
                }
                match accepted_events(&batch.payload, &outcome.duplicates) {
                    Ok(accepted) => {
                        let mut delta = self.settings.delta();
                        delta.fold_batch(&accepted);
                        rebuilt.push(Some(Rebuilt {
                            payload: crate::store::encode_batch(&accepted),
                            ids: accepted
                                .iter()
                                .map(|e| dedup::hash_id(&e.event_id))
                                .collect(),
                            delta,
                        }));
                    }
                    // Cannot happen (the payload was encoded in this process).
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            if let Some(e) = failed {
                break Err(e);
            }
            let entries: Vec<JournalEntry> = items
                .iter()
                .zip(&rebuilt)
                .filter_map(|((batch, outcome, _), r)| match r {
                    Some(r) => Some(JournalEntry {
                        payload: &r.payload,
                        ids: &r.ids,
                    }),
                    None if outcome.duplicates.is_empty() => Some(JournalEntry {
                        payload: &batch.payload,
                        ids: &batch.ids,
                    }),
                    None => None,
                })
                .collect();
            if entries.is_empty() {
                break Ok(self.journal_upto);
            }
            match self
                .store
                .journal()
                .append(self.writer, &entries, now_secs())
                .await
            {
                Ok(Appended::Upto(last)) => break Ok(last),
                Ok(Appended::Duplicates(dups)) => {
                    // Another replica recorded these ids first: they are duplicates here too.
                    let dups: rustc_hash::FxHashSet<u64> = dups.into_iter().collect();
                    for (batch, outcome, _) in &mut items {
                        for (i, h) in batch.ids.iter().enumerate() {
                            if dups.contains(h) && outcome.duplicates.binary_search(&i).is_err() {
                                let at = outcome.duplicates.partition_point(|&d| d < i);
                                outcome.duplicates.insert(at, i);
                            }
                        }
                    }
                    fresh_ids.retain(|h| !dups.contains(h));
                }
                Err(StoreError::Fenced) if !refenced => {
                    refenced = true;
                    if let Err(e) = self.refence().await {
                        break Err(e);
                    }
                }
                Err(e) => break Err(e),
            }
        };
        self.metrics
            .observe_store_write("journal", start.elapsed().as_secs_f64());
        match result {
            Ok(last) => {
                self.journal_upto = self.journal_upto.max(last);
                let mut dups = 0usize;
                for ((batch, mut outcome, reply), rebuilt) in items.into_iter().zip(rebuilt) {
                    outcome.accepted = batch.ids.len() - outcome.duplicates.len();
                    dups += outcome.duplicates.len();
                    let delta = match rebuilt {
                        Some(r) => r.delta,
                        None if outcome.accepted > 0 => batch.delta,
                        None => self.settings.delta(),
                    };
                    self.delta.merge(&delta);
                    // The ingest counter moves once per (type, model) per batch, not per event.
                    for (event_type, model, n) in delta.event_counts() {
                        self.pending_events += n;
                        self.metrics.ingest_pending_events.add(n as i64);
                        let model = self.metrics.model_label(model);
                        self.metrics
                            .events_ingested
                            .with_label_values(&[event_type.as_str(), &model])
                            .inc_by(n);
                    }
                    let _ = reply.send(Ok(outcome));
                }
                self.metrics.events_duplicate.inc_by(dups as u64);
            }
            Err(e) => {
                if matches!(e, StoreError::Database(_)) {
                    self.store_down = true;
                }
                tracing::error!(error = %e, "cannot journal a batch; answering 503");
                // Nothing was made durable: forget the ids so a retry is accepted.
                self.dedup.remove_active(&fresh_ids);
                let msg = e.to_string();
                for (_, _, reply) in items {
                    let _ = reply.send(Err(IngestError::Unavailable(msg.clone())));
                }
            }
        }
    }
}

/// The events of a payload other than those at `duplicates` (sorted positions).
fn accepted_events(payload: &[u8], duplicates: &[usize]) -> Result<Vec<Event>, StoreError> {
    let events = crate::store::decode_batch(payload)?;
    Ok(events
        .into_iter()
        .enumerate()
        .filter(|(i, _)| duplicates.binary_search(i).is_err())
        .map(|(_, e)| e)
        .collect())
}

/// Start the writers: register and recover each, then serve commands until stopped. A store
/// owned by one process gets one writer; a shared store `settings.writers`, so that several
/// durable appends are in flight at once. Returns the handle and a task that ends when every
/// writer has stopped.
pub async fn start(
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    settings: IngestSettings,
) -> Result<(IngestHandle, tokio::task::JoinHandle<()>), IngestError> {
    let shared = store.journal().shared();
    let n = if shared { settings.writers.max(1) } else { 1 };
    let depth = settings.queue_depth.div_ceil(n).max(1);
    let mut txs = Vec::with_capacity(n);
    let mut tasks = Vec::with_capacity(n);
    for k in 0..n {
        let mut own = settings.clone();
        if n > 1 {
            own.writer_name = format!("{}#{k}", settings.writer_name);
        }
        let writer = store.journal().register_writer(&own.writer_name).await?;
        let mut w = Writer {
            writer,
            store: store.clone(),
            metrics: metrics.clone(),
            dedup: Dedup::new(own.dedup_horizon_secs),
            delta: own.delta(),
            settings: own,
            pending_events: 0,
            journal_upto: 0,
            store_down: false,
        };
        // The stored dedup chunks are the fast path's memory; on a shared store the database
        // dedups every id anyway, so one writer reloading them is enough.
        recover(&mut w, k == 0).await?;
        let (tx, rx) = mpsc::channel::<Command>(depth);
        txs.push(tx);
        tasks.push(tokio::spawn(run(w, rx)));
    }
    let handle = IngestHandle {
        txs: txs.into(),
        next: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        metrics,
        settings: Arc::new(settings),
    };
    let task = tokio::spawn(async move {
        for t in tasks {
            if let Err(e) = t.await {
                tracing::error!(error = %e, "an ingest writer task failed");
            }
        }
    });
    Ok((handle, task))
}

/// One writer's loop: group queued batches into durable appends, checkpoint on its interval,
/// answer flushes, and drain and stop on `Stop` or when every handle is gone.
async fn run(mut w: Writer, mut rx: mpsc::Receiver<Command>) {
    let metrics = w.metrics.clone();
    let mut tick = tokio::time::interval(w.settings.checkpoint_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut held: Option<Command> = None;
    loop {
        let cmd = match held.take() {
            Some(c) => c,
            None => tokio::select! {
                c = rx.recv() => match c {
                    Some(c) => c,
                    None => {
                        if let Err(e) = w.checkpoint().await {
                            tracing::error!(error = %e, "final checkpoint failed; the journal keeps the events");
                        }
                        return;
                    }
                },
                _ = tick.tick() => {
                    if let Err(e) = w.tick().await {
                        tracing::error!(error = %e, "checkpoint failed; will retry");
                    }
                    continue;
                }
            },
        };
        match cmd {
            Command::Batch { batch, reply } => {
                let mut group = vec![(batch, reply)];
                while group.len() < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(Command::Batch { batch, reply }) => group.push((batch, reply)),
                        Ok(other) => {
                            held = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                metrics.ingest_queue_batches.sub(group.len() as i64);
                if w.store_down {
                    for (_, reply) in group {
                        let _ = reply.send(Err(IngestError::Unavailable(
                            "the store is unreachable (retrying every checkpoint interval)".into(),
                        )));
                    }
                    continue;
                }
                w.commit_group(group).await;
                if w.store_down {
                    continue;
                }
                // Delete a few folded journal rows per group: bounded work, never a stall.
                if let Err(e) = w.store.journal().trim(w.writer, JOURNAL_TRIM_STEP).await {
                    tracing::warn!(error = %e, "cannot trim the journal; will retry");
                }
                if w.pending_events >= MAX_PENDING_EVENTS {
                    if let Err(e) = w.checkpoint().await {
                        tracing::error!(error = %e, "checkpoint failed; will retry");
                    }
                }
            }
            Command::Flush { reply } => {
                let _ = reply.send(w.checkpoint().await);
            }
            Command::Stop { reply } => {
                // Drain what is queued, then the last checkpoint.
                rx.close();
                while let Ok(c) = rx.try_recv() {
                    match c {
                        Command::Batch { batch, reply } => {
                            metrics.ingest_queue_batches.dec();
                            w.commit_group(vec![(batch, reply)]).await;
                        }
                        Command::Flush { reply } | Command::Stop { reply } => {
                            let _ = reply.send(Ok(()));
                        }
                    }
                }
                let result = w.checkpoint().await;
                if result.is_ok() {
                    if let Err(e) = w.store.journal().retire_writer(w.writer).await {
                        tracing::warn!(error = %e, "cannot retire the ingest writer; another takes it over after its TTL");
                    }
                }
                let _ = reply.send(result);
                return;
            }
        }
    }
}
