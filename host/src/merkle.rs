//! A Merkle tree over the contact ids an import brought, as RFC 6962
//! (Certificate Transparency) defines it: one audit row per import commits
//! to the root, and a contact's evidence bundle proves with about
//! log2(n) hashes that its id is one of them, without naming the others.
//!
//! - leaf: `SHA-256(0x00 || id)`
//! - node: `SHA-256(0x01 || left || right)`
//! - the tree of n leaves splits at the largest power of two below n.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// The tree, in words, for the audit row and the evidence bundle.
pub const DESCRIPTION: &str = "RFC 6962: leaf = SHA-256(0x00 || id), node = SHA-256(0x01 || left || right), \
the tree of n leaves split at the largest power of two below n, leaves in file order";

/// The leaf hash of one id.
pub fn leaf(id: &str) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(id.as_bytes());
    h.finalize().into()
}

fn node(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of a tree built leaf by leaf, in O(log n) memory: a stack of
/// the perfect subtrees so far, largest first.
#[derive(Debug, Default, Clone)]
pub struct Builder {
    stack: Vec<(u64, Hash)>,
    leaves: u64,
}

impl Builder {
    pub fn push(&mut self, leaf: Hash) {
        self.leaves += 1;
        let mut item = (1u64, leaf);
        while let Some(&(size, hash)) = self.stack.last() {
            if size != item.0 {
                break;
            }
            self.stack.pop();
            item = (size * 2, node(&hash, &item.1));
        }
        self.stack.push(item);
    }

    pub fn len(&self) -> u64 {
        self.leaves
    }

    pub fn is_empty(&self) -> bool {
        self.leaves == 0
    }

    /// The root (RFC 6962's MTH); the hash of nothing for no leaves.
    pub fn root(&self) -> Hash {
        let mut subtrees = self.stack.iter().rev();
        let Some(&(_, mut root)) = subtrees.next() else {
            return Sha256::digest([]).into();
        };
        for (_, left) in subtrees {
            root = node(left, &root);
        }
        root
    }
}

/// The root of `leaves`.
pub fn root(leaves: &[Hash]) -> Hash {
    let mut b = Builder::default();
    for l in leaves {
        b.push(*l);
    }
    b.root()
}

/// The audit path of leaf `index` (RFC 6962's PATH), bottom up.
pub fn proof(leaves: &[Hash], index: usize) -> Vec<Hash> {
    fn path(leaves: &[Hash], m: usize, out: &mut Vec<Hash>) {
        let n = leaves.len();
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m < k {
            path(&leaves[..k], m, out);
            out.push(root(&leaves[k..]));
        } else {
            path(&leaves[k..], m - k, out);
            out.push(root(&leaves[..k]));
        }
    }
    let mut out = Vec::new();
    if index < leaves.len() {
        path(leaves, index, &mut out);
    }
    out
}

/// The largest power of two below n (n ≥ 2).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// Whether `leaf` is leaf `index` of a tree of `size` leaves with `root`
/// (RFC 9162, 2.1.3.2).
pub fn verify(leaf: Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = leaf;
    for p in proof {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && r == *root
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6962's definition, written out recursively.
    fn reference(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => Sha256::digest([]).into(),
            1 => leaves[0],
            n => {
                let k = split(n);
                node(&reference(&leaves[..k]), &reference(&leaves[k..]))
            }
        }
    }

    #[test]
    fn every_leaf_of_every_size_proves_against_the_root() {
        for size in 1..=33usize {
            let leaves: Vec<Hash> = (0..size).map(|i| leaf(&format!("C{i:05}"))).collect();
            let root = root(&leaves);
            assert_eq!(root, reference(&leaves), "size {size}");
            for index in 0..size {
                let path = proof(&leaves, index);
                assert!(
                    verify(leaves[index], index as u64, size as u64, &path, &root),
                    "size {size}, leaf {index}"
                );
                // Another leaf, place or size does not prove.
                let other = leaf("someone else");
                assert!(!verify(other, index as u64, size as u64, &path, &root));
                if size > 1 {
                    let moved = (index as u64 + 1) % size as u64;
                    assert!(!verify(leaves[index], moved, size as u64, &path, &root));
                }
            }
        }
    }

    #[test]
    fn a_leaf_is_not_a_node() {
        // The prefixes keep an inner node from passing as a leaf.
        let (a, b) = (leaf("a"), leaf("b"));
        assert_ne!(root(&[a, b]), leaf("ab"));
        assert_eq!(
            crate::hex(&leaf("C1")),
            crate::sha256_hex(&[b"\x00".as_slice(), b"C1"].concat())
        );
    }
}
