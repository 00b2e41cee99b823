//! The revoked set: grant ids and token ids (`jti`) announced by the revocation feed,
//! each kept until every token it concerns has expired. No I/O.

use std::collections::HashMap;

/// Revoked grants and tokens. An entry holds the time from which it may be forgotten
/// (`None`: never).
#[derive(Debug, Default)]
pub(crate) struct RevokedSet {
    grants: HashMap<String, Option<i64>>,
    jtis: HashMap<String, Option<i64>>,
    /// No entry may be forgotten before this time, so pruning is a comparison until then.
    next_prune: Option<i64>,
}

impl RevokedSet {
    /// Whether a token with this `grant_id` and `jti` is revoked. No allocation.
    pub fn concerns(&self, grant_id: Option<&str>, jti: Option<&str>) -> bool {
        grant_id.is_some_and(|g| self.grants.contains_key(g))
            || jti.is_some_and(|j| self.jtis.contains_key(j))
    }

    /// Record a revocation, to be kept until `forget_at` (`None`: for ever). Of two
    /// revocations of one id, the one kept longer wins.
    pub fn insert(
        &mut self,
        grant_id: Option<String>,
        jti: Option<String>,
        forget_at: Option<i64>,
    ) {
        for (map, key) in [(&mut self.grants, grant_id), (&mut self.jtis, jti)] {
            let Some(key) = key else { continue };
            let kept = map.entry(key).or_insert(forget_at);
            *kept = match (*kept, forget_at) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            };
        }
        if let Some(at) = forget_at {
            self.next_prune = Some(self.next_prune.map_or(at, |n| n.min(at)));
        }
    }

    /// Forget the entries whose time has come (`forget_at <= now`).
    pub fn prune(&mut self, now: i64) {
        match self.next_prune {
            Some(at) if at <= now => {}
            _ => return,
        }
        let mut next: Option<i64> = None;
        for map in [&mut self.grants, &mut self.jtis] {
            map.retain(|_, forget_at| match *forget_at {
                Some(at) if at <= now => false,
                Some(at) => {
                    next = Some(next.map_or(at, |n| n.min(at)));
                    true
                }
                None => true,
            });
        }
        self.next_prune = next;
    }

    pub fn len(&self) -> usize {
        self.grants.len() + self.jtis.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_and_jtis_are_matched_separately() {
        let mut set = RevokedSet::default();
        set.insert(Some("g1".into()), None, None);
        set.insert(None, Some("j1".into()), Some(100));
        assert!(set.concerns(Some("g1"), None));
        assert!(set.concerns(Some("g2"), Some("j1")));
        assert!(!set.concerns(Some("j1"), Some("g1")));
        assert!(!set.concerns(None, None));
    }

    #[test]
    fn entries_are_forgotten_at_their_time_and_not_before() {
        let mut set = RevokedSet::default();
        set.insert(Some("g1".into()), None, Some(100));
        set.insert(Some("g2".into()), None, Some(200));
        set.insert(Some("g3".into()), None, None);
        // A second revocation of g1 kept longer extends it.
        set.insert(Some("g1".into()), None, Some(150));
        set.prune(149);
        assert_eq!(set.len(), 3);
        set.prune(150);
        assert!(!set.concerns(Some("g1"), None));
        assert_eq!(set.len(), 2);
        set.prune(10_000);
        assert_eq!(set.len(), 1);
        assert!(set.concerns(Some("g3"), None), "kept for ever");
    }
}
