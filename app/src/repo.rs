//! Loading aggregates and executing decisions against them.
//!
//! A decision runs against the latest known state and its events are appended
//! with that state's version as the expected version. When another writer got
//! there first the append conflicts, the state is brought up to date by
//! reading only the events after the known version, and the decision runs
//! again, a bounded number of times. States are cached with their version, so
//! the hot path reads nothing before it writes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use parley_domain::contact::Contact;
use parley_domain::conversation::Conversation;
use parley_domain::directory::KeywordSettings;
use parley_domain::media::UploadedFile;
use parley_domain::message::Message;
use parley_domain::number::Number;
use parley_domain::template::Template;
use parley_domain::tenant::Tenant;
use parley_domain::user::User;
use parley_domain::wamid::WamidLink;
use parley_domain::Event;
use parley_events::{EventStore, ExpectedVersion, StoreError};

use crate::clock::Clock;
use crate::error::AppError;
use crate::sealing::{EventSealer, Meta};

/// A state that is a fold of events.
pub trait Aggregate: Default + Clone + Send + Sync + 'static {
    fn apply(self, event: &Event) -> Self;
}

macro_rules! aggregate {
    ($($t:ty),*) => {$(
        impl Aggregate for $t {
            fn apply(self, event: &Event) -> Self {
                self.evolve(event)
            }
        }
    )*};
}
aggregate!(Contact, Conversation, Message, Number, WamidLink, Tenant, User, KeywordSettings, Template, UploadedFile);

/// How many times a decision is retried against fresh state after conflicts.
const MAX_ATTEMPTS: usize = 8;

/// Where a decision's events go.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub tenant_id: &'a str,
    pub stream_id: String,
    /// The contact whose key seals personal fields in these events.
    pub wa_id: Option<&'a str>,
}

/// A state with its stream version. States are shared, not copied: the cache
/// and every reader hold the same `Arc` until a decision folds new events.
#[derive(Debug, Clone)]
pub struct Loaded<S> {
    pub state: Arc<S>,
    pub version: u64,
}

/// The result of an executed decision.
#[derive(Debug, Clone)]
pub struct Executed<S> {
    pub state: Arc<S>,
    pub version: u64,
    /// The events this decision appended (empty: nothing to change).
    pub events: Vec<Event>,
}

/// A decision's refusal, or a failure to store its events.
#[derive(Debug)]
pub enum ExecuteError<E> {
    Rejected(E),
    Failed(AppError),
}

impl<E: Into<AppError>> From<ExecuteError<E>> for AppError {
    fn from(e: ExecuteError<E>) -> Self {
        match e {
            ExecuteError::Rejected(e) => e.into(),
            ExecuteError::Failed(e) => e,
        }
    }
}

pub struct Repository<S: Aggregate> {
    store: Arc<dyn EventStore>,
    sealer: Arc<EventSealer>,
    clock: Arc<dyn Clock>,
    cache: Mutex<StateCache<S>>,
}

impl<S: Aggregate> Repository<S> {
    pub fn new(
        store: Arc<dyn EventStore>,
        sealer: Arc<EventSealer>,
        clock: Arc<dyn Clock>,
        cache_capacity: usize,
    ) -> Self {
        Repository { store, sealer, clock, cache: Mutex::new(StateCache::new(cache_capacity)) }
    }

    /// The stream's current state: the cached state brought up to date with
    /// any events appended after it.
    pub async fn load(&self, stream_id: &str) -> Result<Loaded<S>, AppError> {
        let cached = self.cached(stream_id).unwrap_or_else(Loaded::empty);
        self.catch_up(stream_id, cached).await
    }

    /// The cached state if `settled` says it can no longer change in ways the
    /// caller cares about; otherwise the current state from the store.
    pub async fn load_settled(&self, stream_id: &str, settled: impl Fn(&S) -> bool) -> Result<Loaded<S>, AppError> {
        match self.cached(stream_id) {
            Some(known) if settled(&known.state) => Ok(known),
            other => self.catch_up(stream_id, other.unwrap_or_else(Loaded::empty)).await,
        }
    }

    /// Runs `decide` against the stream's state and appends what it decides.
    pub async fn execute<E, F>(
        &self,
        target: &Target<'_>,
        meta: &Meta,
        mut decide: F,
    ) -> Result<Executed<S>, ExecuteError<E>>
    where
        F: FnMut(&S) -> Result<Vec<Event>, E>,
    {
        let mut current = match self.cached(&target.stream_id) {
            Some(known) => known,
            // Unknown to this process: the stream may exist already.
            None => self.catch_up(&target.stream_id, Loaded::empty()).await.map_err(ExecuteError::Failed)?,
        };
        for _ in 0..MAX_ATTEMPTS {
            let events = decide(&current.state).map_err(ExecuteError::Rejected)?;
            if events.is_empty() {
                return Ok(Executed { state: current.state, version: current.version, events });
            }
            let now = self.clock.now();
            let mut encoded = Vec::with_capacity(events.len());
            for e in &events {
                encoded.push(
                    self.sealer
                        .encode(target.tenant_id, target.wa_id, e, meta, now)
                        .await
                        .map_err(ExecuteError::Failed)?,
                );
            }
            let expected = ExpectedVersion::Exact(current.version);
            match self.store.append(target.tenant_id, &target.stream_id, expected, encoded).await {
                Ok(outcome) => {
                    let state = Arc::new(events.iter().fold((*current.state).clone(), |s, e| s.apply(e)));
                    self.remember(&target.stream_id, &state, outcome.version);
                    return Ok(Executed { state, version: outcome.version, events });
                }
                Err(StoreError::Conflict { .. }) => {
                    current = self.catch_up(&target.stream_id, current).await.map_err(ExecuteError::Failed)?;
                }
                Err(e) => return Err(ExecuteError::Failed(e.into())),
            }
        }
        Err(ExecuteError::Failed(AppError::Busy))
    }

    /// Drops the cached state of a stream: the next load folds its events
    /// again (after a contact's key is destroyed, without the plain text the
    /// cached state still held).
    pub fn forget_cached(&self, stream_id: &str) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.remove(stream_id);
    }

    fn cached(&self, stream_id: &str) -> Option<Loaded<S>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(stream_id)
    }

    fn remember(&self, stream_id: &str, state: &Arc<S>, version: u64) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.put(stream_id, state.clone(), version);
    }

    async fn catch_up(&self, stream_id: &str, from: Loaded<S>) -> Result<Loaded<S>, AppError> {
        let newer = self.store.read_stream(stream_id, from.version).await?;
        if newer.is_empty() {
            // Remember even an empty stream: the next decision on it needs no read.
            self.remember(stream_id, &from.state, from.version);
            return Ok(from);
        }
        let mut state = (*from.state).clone();
        let mut version = from.version;
        for recorded in &newer {
            state = state.apply(&self.sealer.decode(recorded).await?);
            version = recorded.version;
        }
        let state = Arc::new(state);
        self.remember(stream_id, &state, version);
        Ok(Loaded { state, version })
    }
}

impl<S: Default> Loaded<S> {
    fn empty() -> Self {
        Loaded { state: Arc::new(S::default()), version: 0 }
    }
}

/// A bounded map of stream states, evicting the oldest entries first.
struct StateCache<S> {
    capacity: usize,
    entries: HashMap<String, (Arc<S>, u64)>,
    order: VecDeque<String>,
}

impl<S> StateCache<S> {
    fn new(capacity: usize) -> Self {
        StateCache { capacity: capacity.max(1), entries: HashMap::new(), order: VecDeque::new() }
    }

    fn get(&self, key: &str) -> Option<Loaded<S>> {
        self.entries.get(key).map(|(s, v)| Loaded { state: s.clone(), version: *v })
    }

    fn remove(&mut self, key: &str) {
        if self.entries.remove(key).is_some() {
            self.order.retain(|k| k != key);
        }
    }

    fn put(&mut self, key: &str, state: Arc<S>, version: u64) {
        match self.entries.get_mut(key) {
            // Never move a cached state backwards (a slower writer finishing late).
            Some(entry) if entry.1 > version => {}
            Some(entry) => *entry = (state, version),
            None => {
                while self.entries.len() >= self.capacity {
                    match self.order.pop_front() {
                        Some(old) => {
                            self.entries.remove(&old);
                        }
                        None => break,
                    }
                }
                self.entries.insert(key.to_owned(), (state, version));
                self.order.push_back(key.to_owned());
            }
        }
    }
}
