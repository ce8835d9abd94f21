//! Load generation for the concurrent-load scenario, and the suite's one shared request batcher.
//!
//! Engines without a scheduler of their own are served by [`Batcher`]: whenever the engine is
//! free it takes every request that has arrived (up to `max_batch`, oldest first) and runs them
//! as one batch. The same code serves every such engine, so their figures compare the engines,
//! not the serving code. Load is either closed-loop (N clients, each sending its next request
//! the moment the previous one completes) or open-loop (Poisson arrivals at a given rate).
//!
//! Only instants are taken while serving; latencies are computed from the records afterwards.

use crate::engine::{Engine, Scheduled};
use crate::run::requests::run_requests;
use anyhow::Result;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How requests arrive.
#[derive(Debug, Clone, Copy)]
pub enum Load {
    /// `clients` clients, each with one request in flight at all times.
    ClosedLoop { clients: usize },
    /// Poisson arrivals at `rate` requests per second (seeded, so every engine sees the same).
    Poisson { rate: f64, seed: u64 },
}

/// One served request: when it arrived, when its first token and its end came.
#[derive(Debug, Clone)]
pub struct Served {
    pub client: usize,
    pub arrived: Instant,
    pub first_token: Instant,
    pub done: Instant,
    pub tokens: Vec<Instant>,
    /// Size of the batch it was served in; 0 when the engine's own scheduler served it.
    pub batch: usize,
}

/// The shared batcher: static batches of whatever has arrived when the engine is free.
pub struct Batcher {
    pub max_batch: usize,
}

impl Batcher {
    pub const NAME: &'static str = "llm-bench static batcher (takes every arrived request, up to max_batch, when the engine is free)";

    /// This batcher for the engine variant `name`: batches no larger than the engine serves at
    /// once ([`crate::engines::Variant::max_batch`]; one request for the lm.rs design).
    pub fn for_engine(&self, name: &str) -> Batcher {
        Batcher { max_batch: self.max_batch.min(crate::engines::Variant::max_batch_of(name)) }
    }

    /// Serve requests under `load` until `count` requests have completed. `prompt(i)` gives the
    /// prompt of the i-th request sent (all prompts of a run have one length, so any arrived
    /// requests can share a batch).
    pub fn serve(
        &self,
        engine: &mut dyn Engine,
        load: Load,
        count: usize,
        new_tokens: usize,
        prompt: &dyn Fn(usize) -> Vec<u32>,
    ) -> Result<Vec<Served>> {
        let start = Instant::now();
        let mut sent = 0usize;
        let mut queue: VecDeque<(usize, usize, Instant)> = VecDeque::new(); // (client, request no., arrival)
        let mut arrivals: VecDeque<Instant> = VecDeque::new();
        match load {
            Load::ClosedLoop { clients } => {
                for c in 0..clients {
                    queue.push_back((c, sent, start));
                    sent += 1;
                }
            }
            Load::Poisson { rate, seed } => arrivals.extend(poisson_arrivals(start, rate, seed, count)),
        }
        let mut served = Vec::with_capacity(count);
        while served.len() < count {
            // Open loop: move arrivals that are due into the queue; wait for the next if idle.
            if let Load::Poisson { .. } = load {
                if queue.is_empty() {
                    if let Some(&next) = arrivals.front() {
                        let now = Instant::now();
                        if next > now {
                            std::thread::sleep(next - now);
                        }
                    }
                }
                let now = Instant::now();
                while arrivals.front().is_some_and(|&a| a <= now) {
                    let a = arrivals.pop_front().unwrap();
                    queue.push_back((sent, sent, a));
                    sent += 1;
                }
            }
            if queue.is_empty() {
                break; // no more arrivals
            }
            let take = queue.len().min(self.max_batch);
            let batch: Vec<(usize, usize, Instant)> = queue.drain(..take).collect();
            let prompts: Vec<Vec<u32>> = batch.iter().map(|&(_, n, _)| prompt(n)).collect();
            let t = run_requests(engine, &prompts, new_tokens)?;
            for (i, &(client, _, arrived)) in batch.iter().enumerate() {
                served.push(Served {
                    client,
                    arrived,
                    first_token: t.tokens[i][0],
                    done: t.end,
                    tokens: t.tokens[i].clone(),
                    batch: take,
                });
                if let Load::ClosedLoop { .. } = load {
                    queue.push_back((client, sent, t.end));
                    sent += 1;
                }
            }
        }
        served.truncate(count);
        Ok(served)
    }
}

/// `count` arrival instants from `start` with exponential gaps of mean `1/rate` seconds, from a
/// fixed-seed generator so every engine sees the same arrivals.
fn poisson_arrivals(start: Instant, rate: f64, seed: u64, count: usize) -> Vec<Instant> {
    let mut x = seed;
    let mut t = 0.0f64;
    (0..count)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = ((x >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
            t += -u.ln() / rate;
            start + Duration::from_secs_f64(t)
        })
        .collect()
}

/// Serve `count` requests under `load` through an engine's own scheduler: every client is a
/// thread that hands its request to the engine and waits for the answer, as a server's clients
/// would. The same loads and arrivals as [`Batcher::serve`].
pub fn serve_scheduled(
    engine: &dyn Scheduled,
    load: Load,
    count: usize,
    new_tokens: usize,
    prompt: &(dyn Fn(usize) -> Vec<u32> + Sync),
) -> Result<Vec<Served>> {
    anyhow::ensure!(new_tokens > 0, "a request must ask for at least one new token");
    let start = Instant::now();
    let served = std::sync::Mutex::new(Vec::with_capacity(count));
    let one = |client: usize, n: usize, arrived: Instant| -> Result<()> {
        let tokens = engine.serve(prompt(n), new_tokens)?;
        let done = Instant::now();
        anyhow::ensure!(tokens.len() == new_tokens, "{} tokens served, {new_tokens} asked for", tokens.len());
        served.lock().unwrap().push(Served { client, arrived, first_token: tokens[0], done, tokens, batch: 0 });
        Ok(())
    };
    // The next request a closed-loop client takes.
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| -> Result<()> {
        let mut clients = Vec::new();
        match load {
            Load::ClosedLoop { clients: n } => {
                let (next, one) = (&next, &one);
                for c in 0..n {
                    clients.push(scope.spawn(move || -> Result<()> {
                        loop {
                            let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if k >= count {
                                return Ok(());
                            }
                            one(c, k, Instant::now())?;
                        }
                    }));
                }
            }
            Load::Poisson { rate, seed } => {
                for (k, at) in poisson_arrivals(start, rate, seed, count).into_iter().enumerate() {
                    let now = Instant::now();
                    if at > now {
                        std::thread::sleep(at - now);
                    }
                    let one = &one;
                    clients.push(scope.spawn(move || one(k, k, at)));
                }
            }
        }
        for c in clients {
            c.join().map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
        }
        Ok(())
    })?;
    Ok(served.into_inner().unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::stub::Stub;

    /// The lm.rs design serves one request at a time: the batcher hands it one, so each of 100
    /// clients' requests comes back as soon as it is done, and the round is those 100 requests.
    /// A batching engine gets up to 64: its second batch holds the 36 clients still waiting and
    /// 28 of the 64 answered first, who sent their next request at once (a closed loop).
    #[test]
    fn an_engine_that_serves_one_request_at_a_time_is_handed_one() {
        let shared = Batcher { max_batch: crate::engine::MAX_BATCH };
        let prompt = |_: usize| vec![1u32, 2, 3];
        let lmrs = shared.for_engine("lmrs");
        assert_eq!((lmrs.max_batch, shared.for_engine("lmrs-fast").max_batch), (1, 1));
        let served = lmrs.serve(&mut Stub, Load::ClosedLoop { clients: 100 }, 100, 2, &prompt).unwrap();
        assert!(served.iter().all(|s| s.batch == 1));
        let mut clients: Vec<usize> = served.iter().map(|s| s.client).collect();
        clients.sort_unstable();
        clients.dedup();
        assert_eq!(clients.len(), 100, "every client's first request, none a second one");

        let candle = shared.for_engine("candle");
        assert_eq!(candle.max_batch, 64);
        let served = candle.serve(&mut Stub, Load::ClosedLoop { clients: 100 }, 100, 2, &prompt).unwrap();
        assert_eq!(served.len(), 100);
        assert!(served.iter().all(|s| s.batch == 64), "{:?}", served.iter().map(|s| s.batch).collect::<Vec<_>>());
        assert_eq!(shared.for_engine("no-such-engine").max_batch, 64);
    }
}
