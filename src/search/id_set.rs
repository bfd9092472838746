//! [`IdSet`]: a set of row ids as a bitmap, the one form a search filter takes. Exact search tests its
//! bits; the IVF search hands the same bytes to FAISS as an id selector, so a filtered IVF search skips
//! the ids outside the set while it scans instead of dropping them afterwards.

/// A set of ids in `0..universe`, one bit each (bit `id % 8` of byte `id / 8`, FAISS's
/// `IDSelectorBitmap` layout).
///
/// ```
/// use fiq::index::IdSet;
/// let mut dresses = IdSet::empty(10);
/// dresses.insert(3);
/// dresses.insert(7);
/// assert!(dresses.contains(3) && !dresses.contains(4) && !dresses.contains(99));
/// assert_eq!(dresses.len(), 2);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct IdSet {
    bits: Vec<u8>,
    universe: u64,
    len: u64,
}

impl IdSet {
    /// No id of `0..universe`.
    pub fn empty(universe: u64) -> IdSet {
        IdSet {
            bits: vec![0; universe.div_ceil(8) as usize],
            universe,
            len: 0,
        }
    }

    /// Every id of `0..universe`.
    pub fn full(universe: u64) -> IdSet {
        let mut set = IdSet::empty(universe);
        set.bits.iter_mut().for_each(|b| *b = 0xFF);
        if universe % 8 != 0 {
            if let Some(last) = set.bits.last_mut() {
                *last = (1u8 << (universe % 8)) - 1;
            }
        }
        set.len = universe;
        set
    }

    /// The ids of `ids` that fall in `0..universe` (others are ignored).
    pub fn from_ids(universe: u64, ids: impl IntoIterator<Item = u64>) -> IdSet {
        let mut set = IdSet::empty(universe);
        ids.into_iter().for_each(|id| set.insert(id));
        set
    }

    /// Adds `id`; an id outside `0..universe` is ignored.
    pub fn insert(&mut self, id: u64) {
        if id >= self.universe {
            return;
        }
        let (byte, bit) = ((id / 8) as usize, 1u8 << (id % 8));
        if self.bits[byte] & bit == 0 {
            self.bits[byte] |= bit;
            self.len += 1;
        }
    }

    /// Removes `id`.
    pub fn remove(&mut self, id: u64) {
        if id >= self.universe {
            return;
        }
        let (byte, bit) = ((id / 8) as usize, 1u8 << (id % 8));
        if self.bits[byte] & bit != 0 {
            self.bits[byte] &= !bit;
            self.len -= 1;
        }
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: u64) -> bool {
        id < self.universe && self.bits[(id / 8) as usize] & (1u8 << (id % 8)) != 0
    }

    /// Ids in the set.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the set holds no id.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The ids the set can hold: `0..universe`.
    pub fn universe(&self) -> u64 {
        self.universe
    }

    /// The ids in both sets (over the smaller universe).
    pub fn intersection(&self, other: &IdSet) -> IdSet {
        let universe = self.universe.min(other.universe);
        let bits: Vec<u8> = self
            .bits
            .iter()
            .zip(&other.bits)
            .take(universe.div_ceil(8) as usize)
            .map(|(a, b)| a & b)
            .collect();
        let len = bits.iter().map(|b| u64::from(b.count_ones())).sum();
        IdSet {
            bits,
            universe,
            len,
        }
    }

    /// The ids in the set, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.bits.iter().enumerate().flat_map(|(byte, &bits)| {
            (0..8u64)
                .filter(move |bit| bits & (1 << bit) != 0)
                .map(move |bit| byte as u64 * 8 + bit)
        })
    }

    /// The bitmap, FAISS's `IDSelectorBitmap` layout.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bits
    }
}

impl std::fmt::Debug for IdSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdSet")
            .field("len", &self.len)
            .field("universe", &self.universe)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::IdSet;

    #[test]
    fn full_sets_exactly_the_universe_and_intersection_counts() {
        let full = IdSet::full(13);
        assert_eq!(full.len(), 13);
        assert!(full.contains(12) && !full.contains(13));
        assert_eq!(full.iter().count(), 13);
        let odd = IdSet::from_ids(13, (0..13).filter(|i| i % 2 == 1));
        let both = full.intersection(&odd);
        assert_eq!(both.len(), 6);
        assert_eq!(both.iter().collect::<Vec<_>>(), vec![1, 3, 5, 7, 9, 11]);
    }

    #[test]
    fn insert_and_remove_keep_the_count() {
        let mut set = IdSet::empty(20);
        set.insert(5);
        set.insert(5);
        set.insert(25); // outside: ignored
        assert_eq!(set.len(), 1);
        set.remove(5);
        set.remove(5);
        assert!(set.is_empty());
    }
}
