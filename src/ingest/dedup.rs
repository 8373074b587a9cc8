//! Idempotency: which event ids were seen within the horizon.
//!
//! Ids are kept as 64-bit XXH3 hashes (the chance of two distinct ids colliding among ten million
//! is about 3e-6; a collision would count a new event as a duplicate). New hashes go into an
//! active set; at each checkpoint the set is sealed into a sorted chunk, persisted with the
//! checkpoint and merged into the in-memory chunk of the last five minutes (bucketed by hash
//! prefix, see `SortedIds`). A lookup is one hash probe plus one short binary search per five
//! minutes of horizon; memory is about 9 bytes per id seen within the horizon (plus the active
//! set), with no second copy while merging.

use crate::store::DedupChunk;
use rustc_hash::FxHashSet as HashSet;
use std::collections::VecDeque;

/// In-memory chunks cover at most this many seconds each.
const CHUNK_SPAN_SECS: i64 = 300;

pub fn hash_id(event_id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(event_id.as_bytes())
}

#[derive(Debug)]
struct MemChunk {
    first_at: i64,
    last_at: i64,
    ids: SortedIds,
}

/// Hashes bucketed by their top bits, each bucket a small sorted vector (about `BUCKET_LOAD`
/// ids: one or two cache lines to search). Hashes are uniform, so buckets stay even; when the
/// average passes the load, every bucket splits in two on the next bit. Absorbing new ids
/// rewrites only the buckets they fall in, one at a time, so memory never holds a second copy
/// of the set (a single sorted vector would, on every merge): about 9 bytes per id in all.
#[derive(Debug)]
struct SortedIds {
    bits: u32,
    buckets: Vec<Vec<u64>>,
    len: usize,
}

/// Ids per bucket, on average, before the buckets split.
const BUCKET_LOAD: usize = 64;

impl SortedIds {
    fn new() -> Self {
        Self {
            bits: 0,
            buckets: vec![Vec::new()],
            len: 0,
        }
    }

    fn bucket(&self, h: u64) -> usize {
        if self.bits == 0 {
            0
        } else {
            (h >> (64 - self.bits)) as usize
        }
    }

    fn contains(&self, h: u64) -> bool {
        self.buckets[self.bucket(h)].binary_search(&h).is_ok()
    }

    /// Add sorted ids.
    fn absorb(&mut self, ids: &[u64]) {
        let mut start = 0;
        while start < ids.len() {
            let b = self.bucket(ids[start]);
            let end = start + ids[start..].partition_point(|&h| self.bucket(h) == b);
            let old = std::mem::take(&mut self.buckets[b]);
            let merged = merge_sorted(&old, &ids[start..end]);
            self.len += merged.len() - old.len();
            self.buckets[b] = merged;
            start = end;
        }
        while self.len > BUCKET_LOAD * self.buckets.len() && self.bits < 40 {
            self.split();
        }
    }

    /// Double the buckets, splitting each on the next bit.
    fn split(&mut self) {
        let bit = 63 - self.bits;
        let old = std::mem::take(&mut self.buckets);
        self.buckets = Vec::with_capacity(old.len() * 2);
        for b in old {
            let cut = b.partition_point(|&h| (h >> bit) & 1 == 0);
            self.buckets.push(b[..cut].to_vec());
            self.buckets.push(b[cut..].to_vec());
        }
        self.bits += 1;
    }

    fn len(&self) -> usize {
        self.len
    }
}

#[derive(Debug)]
pub struct Dedup {
    horizon_secs: i64,
    chunks: VecDeque<MemChunk>,
    active: HashSet<u64>,
}

impl Dedup {
    pub fn new(horizon_secs: i64) -> Self {
        Self {
            horizon_secs,
            chunks: VecDeque::new(),
            active: HashSet::default(),
        }
    }

    pub fn contains(&self, h: u64) -> bool {
        self.active.contains(&h) || self.chunks.iter().any(|c| c.ids.contains(h))
    }

    /// Record `h`; false when it was already there.
    pub fn insert(&mut self, h: u64) -> bool {
        if self.contains(h) {
            return false;
        }
        self.active.insert(h)
    }

    /// Forget ids recorded since the last seal (their batch was never made durable).
    pub fn remove_active(&mut self, ids: &[u64]) {
        for id in ids {
            self.active.remove(id);
        }
    }

    /// Number of ids held.
    pub fn len(&self) -> usize {
        self.active.len() + self.chunks.iter().map(|c| c.ids.len()).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Seal the active set into a chunk stamped `now` (returned for persistence).
    pub fn seal(&mut self, now: i64) -> Option<DedupChunk> {
        if self.active.is_empty() {
            return None;
        }
        let mut ids: Vec<u64> = self.active.drain().collect();
        ids.sort_unstable();
        self.absorb(now, &ids);
        self.active.shrink_to(1024);
        Some(DedupChunk {
            created_at: now,
            ids,
        })
    }

    /// Add a persisted chunk (on start-up).
    pub fn load(&mut self, chunk: &DedupChunk) {
        self.absorb(chunk.created_at, &chunk.ids);
    }

    fn absorb(&mut self, at: i64, ids: &[u64]) {
        match self.chunks.back_mut() {
            Some(last) if at - last.first_at < CHUNK_SPAN_SECS => {
                last.ids.absorb(ids);
                last.last_at = last.last_at.max(at);
            }
            _ => {
                let mut sorted = SortedIds::new();
                sorted.absorb(ids);
                self.chunks.push_back(MemChunk {
                    first_at: at,
                    last_at: at,
                    ids: sorted,
                });
            }
        }
    }

    /// Forget chunks whose newest id is older than the horizon.
    pub fn expire(&mut self, now: i64) {
        while let Some(c) = self.chunks.front() {
            if c.last_at < now - self.horizon_secs {
                self.chunks.pop_front();
            } else {
                break;
            }
        }
    }
}

fn merge_sorted(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i] <= b[j] {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_ids_are_found_across_seals_until_the_horizon() {
        let mut d = Dedup::new(3600);
        assert!(d.insert(hash_id("a")));
        assert!(!d.insert(hash_id("a")));
        let c = d.seal(100).expect("chunk");
        assert_eq!(c.ids, vec![hash_id("a")]);
        assert!(d.contains(hash_id("a")));
        assert!(d.insert(hash_id("b")));
        d.seal(1000);
        assert!(d.contains(hash_id("a")) && d.contains(hash_id("b")));
        d.expire(100 + 3600);
        assert!(d.contains(hash_id("a")), "still inside the horizon");
        d.expire(100 + 3601);
        assert!(!d.contains(hash_id("a")), "past the horizon");
        assert!(d.contains(hash_id("b")));
        let mut fresh = Dedup::new(3600);
        fresh.load(&c);
        assert!(fresh.contains(hash_id("a")));
    }

    #[test]
    fn buckets_find_every_id_and_nothing_else_as_they_split() {
        for n in [0usize, 1, 63, 64, 65, 1000, 100_000] {
            let mut ids: Vec<u64> = (0..n as u64).map(|i| hash_id(&format!("id-{i}"))).collect();
            // Skewed values too: buckets must stay correct when prefixes are uneven.
            ids.extend((0..n as u64 / 10).map(|i| i * 3));
            ids.sort_unstable();
            ids.dedup();
            // Absorbed in pieces of different sizes (and overlapping: absorbing an id twice
            // keeps one copy), as successive checkpoints do.
            let mut s = SortedIds::new();
            for piece in ids.chunks(997) {
                s.absorb(piece);
            }
            s.absorb(&ids[..ids.len() / 3]);
            assert_eq!(s.len(), ids.len(), "n = {n}");
            assert!(
                s.len() <= BUCKET_LOAD * s.buckets.len(),
                "buckets split as they fill"
            );
            assert!(s.buckets.iter().all(|b| b.is_sorted()));
            assert!(ids.iter().all(|&h| s.contains(h)), "n = {n}");
            let absent =
                (0..1000u64)
                    .map(|i| hash_id(&format!("other-{i}")))
                    .chain([1, 4, u64::MAX]);
            for h in absent {
                assert_eq!(
                    s.contains(h),
                    ids.binary_search(&h).is_ok(),
                    "n = {n}, h = {h}"
                );
            }
        }
    }

    #[test]
    fn merge_keeps_order() {
        assert_eq!(merge_sorted(&[1, 3, 5], &[2, 3, 6]), vec![1, 2, 3, 5, 6]);
    }
}
