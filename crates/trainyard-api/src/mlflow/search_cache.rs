//! Answers of runs/search kept in memory while nothing they read has
//! changed. PostgreSQL counts the changes to each experiment's runs, metrics
//! and inputs (triggers, so every writer counts, other servers included); an
//! answer is given again only while the searched experiments' count is the
//! one read before the answer was made, so a search never returns what a
//! search in the database would not.

use std::sync::Mutex;

use axum::body::Bytes;
use hashlink::LruCache;
use trainyard_db::mlflow::SearchGeneration;
use uuid::Uuid;

/// Answers kept at most…
const MAX_ANSWERS: usize = 256;
/// …and their bytes at most, all together.
const MAX_BYTES: usize = 32 << 20;
/// An answer larger than this (its key included) is not kept.
const MAX_ANSWER_BYTES: usize = 4 << 20;

/// What makes two searches the same: the request as given, with the
/// experiments it names resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct SearchKey {
    pub workspace_id: Uuid,
    pub experiment_ids: Vec<Uuid>,
    pub filter: Option<String>,
    pub run_view_type: Option<String>,
    pub order_by: Vec<String>,
    pub offset: i64,
    pub limit: i64,
}

struct Answer {
    generation: SearchGeneration,
    body: Bytes,
    /// What it holds in memory, its key included.
    size: usize,
}

impl SearchKey {
    fn size(&self) -> usize {
        std::mem::size_of::<SearchKey>()
            + self.experiment_ids.len() * std::mem::size_of::<Uuid>()
            + self.filter.as_ref().map_or(0, String::len)
            + self.run_view_type.as_ref().map_or(0, String::len)
            + self.order_by.iter().map(String::len).sum::<usize>()
    }
}

/// The answers, least recently used first out.
pub struct RunSearchCache {
    inner: Mutex<Answers>,
}

struct Answers {
    by_key: LruCache<SearchKey, Answer>,
    bytes: usize,
}

impl Default for RunSearchCache {
    fn default() -> Self {
        RunSearchCache {
            inner: Mutex::new(Answers {
                by_key: LruCache::new_unbounded(),
                bytes: 0,
            }),
        }
    }
}

impl std::fmt::Debug for RunSearchCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let answers = self.lock();
        f.debug_struct("RunSearchCache")
            .field("answers", &answers.by_key.len())
            .field("bytes", &answers.bytes)
            .finish()
    }
}

impl RunSearchCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Answers> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The answer kept for this search, if nothing it read has changed since.
    pub(super) fn get(&self, key: &SearchKey, now: SearchGeneration) -> Option<Bytes> {
        let mut answers = self.lock();
        let kept = answers.by_key.get(key)?;
        if kept.generation == now {
            return Some(kept.body.clone());
        }
        // A search that read its generation before a later one was kept
        // (it waited) leaves the newer answer in place.
        if !is_newer(kept.generation, now) {
            answers.remove(key);
        }
        None
    }

    /// Keeps an answer made after `generation` was read. `body` should
    /// hold no spare capacity (made from a boxed slice): its length is
    /// what is counted.
    pub(super) fn put(&self, key: SearchKey, generation: SearchGeneration, body: Bytes) {
        let size = key.size() + body.len();
        if size > MAX_ANSWER_BYTES {
            return;
        }
        let mut answers = self.lock();
        if let Some(kept) = answers.by_key.get(&key) {
            if is_newer(kept.generation, generation) {
                return;
            }
        }
        answers.remove(&key);
        answers.bytes += size;
        answers.by_key.insert(
            key,
            Answer {
                generation,
                body,
                size,
            },
        );
        while answers.bytes > MAX_BYTES || answers.by_key.len() > MAX_ANSWERS {
            match answers.by_key.remove_lru() {
                Some((_, gone)) => answers.bytes -= gone.size,
                None => break,
            }
        }
    }
}

/// Whether `kept` was read after `other` (counters only grow within an epoch).
fn is_newer(kept: SearchGeneration, other: SearchGeneration) -> bool {
    kept.epoch == other.epoch && kept.changes > other.changes
}

impl Answers {
    fn remove(&mut self, key: &SearchKey) {
        if let Some(gone) = self.by_key.remove(key) {
            self.bytes -= gone.size;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generation(changes: i64) -> SearchGeneration {
        SearchGeneration {
            epoch: Uuid::nil(),
            changes,
        }
    }

    fn key(offset: i64) -> SearchKey {
        SearchKey {
            workspace_id: Uuid::nil(),
            experiment_ids: vec![Uuid::nil()],
            filter: None,
            run_view_type: None,
            order_by: vec![],
            offset,
            limit: 10,
        }
    }

    #[test]
    fn an_answer_is_given_again_only_for_the_generation_it_was_made_after() {
        let cache = RunSearchCache::default();
        cache.put(key(0), generation(1), Bytes::from_static(b"[1]"));
        assert_eq!(
            cache.get(&key(0), generation(1)).as_deref(),
            Some(&b"[1]"[..])
        );
        assert_eq!(cache.get(&key(1), generation(1)), None);
        // A search that read an older generation neither gets the newer
        // answer nor drops it, and its own answer does not replace it.
        assert_eq!(cache.get(&key(0), generation(0)), None);
        cache.put(key(0), generation(0), Bytes::from_static(b"[0]"));
        assert_eq!(
            cache.get(&key(0), generation(1)).as_deref(),
            Some(&b"[1]"[..])
        );
        // Another epoch, or a later generation: the answer is stale and goes.
        let other_epoch = SearchGeneration {
            epoch: Uuid::from_u128(1),
            changes: 1,
        };
        assert_eq!(cache.get(&key(0), other_epoch), None);
        assert_eq!(cache.get(&key(0), generation(1)), None);
        assert_eq!(cache.lock().bytes, 0);
        cache.put(key(0), generation(1), Bytes::from_static(b"[1]"));
        assert_eq!(cache.get(&key(0), generation(2)), None);
        assert_eq!(cache.lock().bytes, 0);
    }

    #[test]
    fn the_least_recently_used_answers_go_first_when_the_bytes_run_out() {
        let cache = RunSearchCache::default();
        let generation = generation(1);
        // Each answer, key included, takes the most one may.
        let big = Bytes::from(vec![b' '; MAX_ANSWER_BYTES - key(0).size()]);
        let fit = (MAX_BYTES / MAX_ANSWER_BYTES) as i64;
        for offset in 0..fit {
            cache.put(key(offset), generation, big.clone());
        }
        // Kept twice, counted once.
        cache.put(key(0), generation, big.clone());
        assert_eq!(cache.lock().bytes, MAX_BYTES);
        assert!(cache.get(&key(0), generation).is_some());
        cache.put(key(fit), generation, big.clone());
        // Key 1 was used least recently (key 0 was just read).
        assert!(cache.get(&key(1), generation).is_none());
        assert!(cache.get(&key(0), generation).is_some());
        assert!(cache.get(&key(fit), generation).is_some());
        assert_eq!(cache.lock().bytes, MAX_BYTES);
        // Too large to keep at all.
        let too_big = Bytes::from(vec![b' '; MAX_ANSWER_BYTES + 1]);
        cache.put(key(-1), generation, too_big);
        assert!(cache.get(&key(-1), generation).is_none());
    }

    #[test]
    fn at_most_so_many_answers_are_kept_however_small() {
        let cache = RunSearchCache::default();
        let generation = generation(1);
        for offset in 0..=MAX_ANSWERS as i64 {
            cache.put(key(offset), generation, Bytes::from_static(b"[]"));
        }
        assert_eq!(cache.lock().by_key.len(), MAX_ANSWERS);
        assert!(cache.get(&key(0), generation).is_none());
        assert!(cache.get(&key(MAX_ANSWERS as i64), generation).is_some());
    }
}
