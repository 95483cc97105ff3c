//! The engine's only source of randomness: a seeded xoshiro256** generator,
//! written out here so that an auditor can replay the data order from the
//! seed with nothing but this page.
//!
//! - Stream seeding: the 32-byte state of stream `tag` is
//!   `LpHasher("sealroom.trainer.rng.v1").part(tag).u64(seed)` (SHA-256,
//!   length-prefixed; see `sealroom_protocol::hash::LpHasher`), read as four
//!   little-endian `u64`s (an all-zero state, which cannot happen in
//!   practice, is replaced by `1, 0, 0, 0`). Streams: `"init"` (initial
//!   weights), `"split"` (validation split), `"order"` (data order).
//! - Draws: [`Rng::next_u64`] is xoshiro256** (Blackman & Vigna, 2018).
//!   A bounded index `j < m` is `(next_u64() as u128 * m as u128) >> 64`.
//! - A permutation of `0..n` is Fisher–Yates: start from the identity and,
//!   for `i` from `n - 1` down to `1`, swap entries `i` and `j < i + 1`.
//! - Epoch `e`'s data order is the `e`-th permutation drawn from `"order"`
//!   (epochs in sequence; batches are consecutive slices of it).

use sealroom_protocol::hash::LpHasher;

/// xoshiro256** seeded from a spec seed and a stream tag.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// The stream `tag` of seed `seed`.
    pub fn stream(seed: u64, tag: &str) -> Self {
        let digest = LpHasher::new("sealroom.trainer.rng.v1")
            .part(tag)
            .u64(seed)
            .finish();
        let mut s = [0u64; 4];
        for (i, w) in s.iter_mut().enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(&digest[i * 8..i * 8 + 8]);
            *w = u64::from_le_bytes(b);
        }
        if s == [0; 4] {
            s[0] = 1;
        }
        Self { s }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// A uniform index in `0..m` (`m > 0`).
    pub fn below(&mut self, m: u64) -> u64 {
        ((self.next_u64() as u128 * m as u128) >> 64) as u64
    }

    /// A uniform `f32` in `[-bound, bound)`, from the top 24 bits of a draw.
    pub fn symmetric_f32(&mut self, bound: f32) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32);
        (2.0 * unit - 1.0) * bound
    }

    /// A permutation of `0..n` (Fisher–Yates, see the module docs).
    pub fn permutation(&mut self, n: u32) -> Vec<u32> {
        let mut p: Vec<u32> = (0..n).collect();
        for i in (1..n as usize).rev() {
            let j = self.below(i as u64 + 1) as usize;
            p.swap(i, j);
        }
        p
    }
}

/// The data-order commitment: SHA-256 under domain
/// `"sealroom.trainer.data-order.v1"` over, as length-prefixed parts
/// ([`LpHasher`]): `u64 seed`, `u64 pooled records`, `u64 training records`,
/// `u64 epochs`, the validation split (`"owner"` or `"split"` then the
/// split permutation as big-endian `u32`s), then one part per epoch: that
/// epoch's permutation of training-row indices as big-endian `u32`s.
///
/// Training-row indices refer to the pooled dataset (parties concatenated in
/// manifest order) when the owner holds the validation set, and to the
/// training part of the split (pooled rows in split-permutation order,
/// validation rows removed) otherwise.
pub struct OrderCommitment {
    h: LpHasher,
}

impl OrderCommitment {
    /// Starts a commitment; `split` is the split permutation, if the data was split.
    pub fn new(seed: u64, pooled: u64, train: u64, epochs: u64, split: Option<&[u32]>) -> Self {
        let mut h = LpHasher::new("sealroom.trainer.data-order.v1")
            .u64(seed)
            .u64(pooled)
            .u64(train)
            .u64(epochs);
        match split {
            None => h.push("owner"),
            Some(p) => {
                h.push("split");
                h.push(be_bytes(p));
            }
        }
        Self { h }
    }

    /// Adds the next epoch's permutation.
    pub fn epoch(&mut self, permutation: &[u32]) {
        self.h.push(be_bytes(permutation));
    }

    /// The 32-byte commitment.
    pub fn finish(self) -> [u8; 32] {
        self.h.finish()
    }
}

/// Recomputes the data-order commitment of a run from its public facts: what
/// an auditor does with the seed and the record counts of a report.
/// `split_validation` is the number of validation rows when the pooled data
/// was split (`None` when the owner held the validation set).
pub fn data_order_commitment(
    seed: u64,
    pooled: u32,
    split_validation: Option<u32>,
    epochs: u32,
) -> [u8; 32] {
    let split = split_validation.map(|_| Rng::stream(seed, "split").permutation(pooled));
    let train = pooled - split_validation.unwrap_or(0);
    let mut c = OrderCommitment::new(
        seed,
        pooled.into(),
        train.into(),
        epochs.into(),
        split.as_deref(),
    );
    let mut order = Rng::stream(seed, "order");
    for _ in 0..epochs {
        c.epoch(&order.permutation(train));
    }
    c.finish()
}

fn be_bytes(p: &[u32]) -> Vec<u8> {
    p.iter().flat_map(|i| i.to_be_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::stream(7, "order");
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::stream(7, "order");
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(
            Rng::stream(7, "order").next_u64(),
            Rng::stream(7, "init").next_u64()
        );
        assert_ne!(
            Rng::stream(7, "order").next_u64(),
            Rng::stream(8, "order").next_u64()
        );
    }

    #[test]
    fn permutations_are_permutations() {
        let mut r = Rng::stream(1, "order");
        for n in [0u32, 1, 2, 17, 1000] {
            let mut p = r.permutation(n);
            p.sort_unstable();
            assert_eq!(p, (0..n).collect::<Vec<_>>());
        }
        let mut r = Rng::stream(1, "order");
        assert_ne!(r.permutation(50), r.permutation(50));
    }

    #[test]
    fn uniform_draws_stay_in_range() {
        let mut r = Rng::stream(3, "init");
        for _ in 0..1000 {
            let x = r.symmetric_f32(0.5);
            assert!((-0.5..0.5).contains(&x));
            assert!(r.below(3) < 3);
        }
    }
}
