//! Candidates as ordered tiers, and the reorderings more than one step uses.
//! A step only reorders within (or splits) the tiers it is given, so a later
//! step refines an earlier one instead of undoing it.

use smallvec::{smallvec, SmallVec};

use super::RegionId;

/// A group of equally good regions. Inline storage: a decision allocates
/// nothing for the handful of regions a service has.
pub type Tier = SmallVec<[RegionId; 4]>;

/// Ordered groups of equally good regions.
pub type Tiers = SmallVec<[Tier; 4]>;

/// Listed regions first (each its own tier, in list order), then the rest;
/// within each tier, so earlier tiers stay ahead.
pub fn promote(tiers: Tiers, list: &[RegionId]) -> Tiers {
    let mut out = Tiers::new();
    for tier in tiers {
        for id in list {
            if tier.contains(id) {
                out.push(smallvec![*id]);
            }
        }
        let rest: Tier = tier.into_iter().filter(|id| !list.contains(id)).collect();
        if !rest.is_empty() {
            out.push(rest);
        }
    }
    out
}

/// Push regions as tiers, grouping equal keys.
pub fn split_equal<K: PartialEq>(out: &mut Tiers, keyed: impl IntoIterator<Item = (K, RegionId)>) {
    let mut last: Option<K> = None;
    for (k, id) in keyed {
        match (&last, out.last_mut()) {
            (Some(prev), Some(tier)) if *prev == k => tier.push(id),
            _ => out.push(smallvec![id]),
        }
        last = Some(k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(tiers: &Tiers) -> Vec<Vec<RegionId>> {
        tiers.iter().map(|t| t.to_vec()).collect()
    }

    #[test]
    fn promote_lists_first_in_list_order_within_each_tier() {
        let tiers: Tiers = smallvec![smallvec![0, 1, 2], smallvec![3, 4]];
        // 4 is listed but sits in the second tier: it stays behind the whole first one.
        let out = promote(tiers, &[4, 2, 9]);
        assert_eq!(flat(&out), vec![vec![2], vec![0, 1], vec![4], vec![3]]);
    }

    #[test]
    fn promote_of_a_tier_wholly_listed_leaves_no_empty_tier() {
        let out = promote(smallvec![smallvec![0, 1]], &[1, 0]);
        assert_eq!(flat(&out), vec![vec![1], vec![0]]);
        assert!(promote(Tiers::new(), &[0]).is_empty());
    }

    #[test]
    fn split_equal_groups_only_adjacent_equal_keys() {
        let mut out: Tiers = smallvec![smallvec![7]];
        split_equal(&mut out, [(1, 0), (1, 1), (2, 2), (1, 3)]);
        // The first key never joins a tier that was already there.
        assert_eq!(flat(&out), vec![vec![7], vec![0, 1], vec![2], vec![3]]);
    }
}
