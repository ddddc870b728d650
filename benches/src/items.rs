//! Generated list entries and probes.

use blindmatch_protocol::{Item, ItemType};
use sha2::{Digest, Sha256};

/// `n` distinct SHA-256 items: the hashes of `"{salt} {i}"`.
pub fn sha_items(n: usize, salt: &str) -> Vec<Item> {
    (0..n)
        .map(|i| {
            Item::new(ItemType::Sha256, &Sha256::digest(format!("{salt} {i}")))
                .unwrap_or_else(|_| unreachable!("a SHA-256 digest is a valid sha256 item"))
        })
        .collect()
}
