//! Deduplication of batches by `batch_id`, per app id.
//!
//! The first acceptance of a batch fixes its `accepted` count; any later request with
//! the same app id and batch id is a duplicate answered with that count, whatever its
//! bytes (section 4 of the rules document).

use std::collections::HashMap;

/// The accepted batches seen so far: (app id, batch id) to first `accepted` count.
#[derive(Debug, Default)]
pub(crate) struct Dedupe {
    seen: HashMap<(String, String), usize>,
}

impl Dedupe {
    /// Records a first acceptance and returns `None`, or returns the first count of a
    /// batch already seen (and records nothing).
    pub(crate) fn first_or_insert(
        &mut self,
        app_id: &str,
        batch_id: &str,
        accepted: usize,
    ) -> Option<usize> {
        let key = (app_id.to_owned(), batch_id.to_owned());
        if let Some(first) = self.seen.get(&key) {
            return Some(*first);
        }
        self.seen.insert(key, accepted);
        None
    }

    /// Forgets every batch.
    pub(crate) fn clear(&mut self) {
        self.seen.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_count_wins_per_app() {
        let mut d = Dedupe::default();
        assert_eq!(d.first_or_insert("a", "b1", 3), None);
        assert_eq!(d.first_or_insert("a", "b1", 7), Some(3));
        assert_eq!(d.first_or_insert("other", "b1", 1), None);
        d.clear();
        assert_eq!(d.first_or_insert("a", "b1", 2), None);
    }
}
