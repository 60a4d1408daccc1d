//! The queue of sealed batches, oldest first, with an index of how many each owner has.
//!
//! Order matters twice: an owner's batches are delivered in order (S2), and overflow
//! drops the oldest events first (D3). The queue keeps that order and answers
//! "does this owner have pending data" in O(log owners); it decides nothing.

use std::collections::{BTreeMap, VecDeque};

use crate::batch::Batch;
use crate::owner::Owner;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Queue {
    batches: VecDeque<Batch>,
    per_owner: BTreeMap<Owner, usize>,
    events: u64,
}

impl Queue {
    pub(crate) fn push(&mut self, batch: Batch) {
        self.count_in(&batch);
        self.batches.push_back(batch);
    }

    /// The batch sealed last, if it is still queued.
    pub(crate) fn newest(&self) -> Option<&Batch> {
        self.batches.back()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Batch> {
        self.batches.iter()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Pending events in sealed batches.
    pub(crate) const fn events(&self) -> u64 {
        self.events
    }

    pub(crate) fn has_owner(&self, owner: &Owner) -> bool {
        self.per_owner.contains_key(owner)
    }

    /// Owners with at least one sealed batch, in a deterministic order.
    pub(crate) fn owners(&self) -> impl Iterator<Item = &Owner> {
        self.per_owner.keys()
    }

    pub(crate) fn get(&self, number: u64) -> Option<&Batch> {
        self.batches.iter().find(|b| b.number == number)
    }

    pub(crate) fn get_mut(&mut self, number: u64) -> Option<&mut Batch> {
        self.batches.iter_mut().find(|b| b.number == number)
    }

    fn position(&self, number: u64) -> Option<usize> {
        self.batches.iter().position(|b| b.number == number)
    }

    pub(crate) fn mark_attempted(&mut self, number: u64) -> bool {
        match self.batches.iter_mut().find(|b| b.number == number) {
            Some(batch) => {
                batch.attempted = true;
                true
            }
            None => false,
        }
    }

    pub(crate) fn remove(&mut self, number: u64) -> Option<Batch> {
        let batch = self.batches.remove(self.position(number)?)?;
        self.count_out(&batch);
        Some(batch)
    }

    /// Puts `replacements` where batch `number` was, keeping the owner's order.
    pub(crate) fn replace(&mut self, number: u64, replacements: Vec<Batch>) -> Option<Batch> {
        let at = self.position(number)?;
        let old = self.batches.remove(at)?;
        self.count_out(&old);
        for (i, batch) in replacements.into_iter().enumerate() {
            self.count_in(&batch);
            self.batches.insert(at + i, batch);
        }
        Some(old)
    }

    /// Removes every batch of `owner` except `keep`; returns how many events went.
    pub(crate) fn remove_owner(&mut self, owner: &Owner, keep: Option<u64>) -> u64 {
        let mut removed = 0;
        let mut kept = VecDeque::with_capacity(self.batches.len());
        for batch in self.batches.drain(..) {
            if &batch.owner == owner && Some(batch.number) != keep {
                removed += batch.len() as u64;
            } else {
                kept.push_back(batch);
            }
        }
        self.batches = kept;
        self.reindex();
        removed
    }

    fn reindex(&mut self) {
        self.per_owner.clear();
        self.events = 0;
        let batches = std::mem::take(&mut self.batches);
        for batch in &batches {
            self.count_in(batch);
        }
        self.batches = batches;
    }

    fn count_in(&mut self, batch: &Batch) {
        *self.per_owner.entry(batch.owner.clone()).or_default() += 1;
        self.events += batch.len() as u64;
    }

    fn count_out(&mut self, batch: &Batch) {
        if let Some(count) = self.per_owner.get_mut(&batch.owner) {
            *count -= 1;
            if *count == 0 {
                self.per_owner.remove(&batch.owner);
            }
        }
        self.events -= batch.len() as u64;
    }
}
