//! One worker thread that answers the server's queries in batches.
//!
//! Requests hand their query to a channel and wait for the answer. The worker takes the first waiting
//! query, gathers whatever else arrives within the batch window (and everything already queued, which
//! under load is most of the batch), and asks the shared [`Retriever`] all of them in one
//! [`Retriever::query_batch`]: texts are encoded in one forward pass, images in another, and the
//! searches run as one batch per filter. An idle server answers a lone query after the window alone.
//!
//! The worker ends when the last sender is dropped (the router is gone); a panic inside the retriever
//! fails its batch with a 500 and the worker carries on.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::error::ApiError;
use super::metrics::Metrics;
use crate::retriever::{Answer, Query, QueryOptions, Retriever};

/// A query waiting for its batch.
struct Job {
    query: Query,
    k: usize,
    exclude_reference: bool,
    reply: oneshot::Sender<Result<Answer, ApiError>>,
}

/// The requests' side of the queue (cheap to clone).
#[derive(Clone)]
pub(crate) struct Batcher {
    jobs: mpsc::Sender<Job>,
}

impl Batcher {
    /// Starts the worker over `retriever`.
    pub(crate) fn start(
        retriever: Arc<Retriever>,
        window: Duration,
        max_batch: usize,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<(Batcher, JoinHandle<()>)> {
        let (jobs, queue) = mpsc::channel();
        let worker = std::thread::Builder::new()
            .name("fiq-query-batcher".into())
            .spawn(move || work(&retriever, &queue, window, max_batch.max(1), &metrics))?;
        Ok((Batcher { jobs }, worker))
    }

    /// Answers `query` with its `k` best items, in whatever batch it lands in.
    pub(crate) async fn ask(
        &self,
        query: Query,
        k: usize,
        exclude_reference: bool,
    ) -> Result<Answer, ApiError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            query,
            k,
            exclude_reference,
            reply,
        };
        self.jobs.send(job).map_err(|_| ApiError::ShuttingDown)?;
        answer.await.map_err(|_| ApiError::ShuttingDown)?
    }
}

fn work(
    retriever: &Retriever,
    queue: &mpsc::Receiver<Job>,
    window: Duration,
    max_batch: usize,
    metrics: &Metrics,
) {
    while let Ok(first) = queue.recv() {
        let deadline = Instant::now() + window;
        let mut batch = vec![first];
        while batch.len() < max_batch {
            // Everything already queued joins at once; then wait out the window for more.
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(mpsc::TryRecvError::Disconnected) => break,
                Err(mpsc::TryRecvError::Empty) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    match queue.recv_timeout(left) {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
            }
        }
        metrics.record_batch(batch.len());
        // Requests whose client went away need no answer.
        batch.retain(|job| !job.reply.is_closed());
        for exclude_reference in [false, true] {
            let (group, rest): (Vec<Job>, Vec<Job>) = batch
                .into_iter()
                .partition(|job| job.exclude_reference == exclude_reference);
            batch = rest;
            if !group.is_empty() {
                answer(retriever, group, exclude_reference);
            }
        }
    }
}

/// Asks `retriever` every job of `group` at the largest k among them, then cuts each answer to its k.
fn answer(retriever: &Retriever, group: Vec<Job>, exclude_reference: bool) {
    let k = group.iter().map(|job| job.k).max().unwrap_or(1);
    let options = QueryOptions {
        exclude_reference,
        ..QueryOptions::default()
    };
    let (queries, replies): (Vec<Query>, Vec<(usize, oneshot::Sender<_>)>) = group
        .into_iter()
        .map(|job| (job.query, (job.k, job.reply)))
        .unzip();
    let answers = std::panic::catch_unwind(AssertUnwindSafe(|| {
        retriever.query_batch(&queries, k, &options)
    }));
    match answers {
        Ok(Ok(answers)) => {
            for ((k, reply), answer) in replies.into_iter().zip(answers) {
                let answer = answer.map_err(ApiError::Query).map(|mut answer| {
                    answer.hits.truncate(k);
                    answer
                });
                // A client that went away no longer listens; nothing to do.
                let _ = reply.send(answer);
            }
        }
        Ok(Err(error)) => {
            let reason = crate::error::chain(&error);
            for (_, reply) in replies {
                let _ = reply.send(Err(ApiError::Internal {
                    reason: reason.clone(),
                }));
            }
        }
        Err(panic) => {
            let reason = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic in the retriever".into());
            for (_, reply) in replies {
                let _ = reply.send(Err(ApiError::Internal {
                    reason: format!("the search panicked: {reason}"),
                }));
            }
        }
    }
}
