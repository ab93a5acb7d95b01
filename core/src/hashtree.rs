//! The BLAKE3 tree of content cut into equal chunks whose size is a power of two of at
//! least 1 KiB (BLAKE3's chunk length). Pure logic: no I/O.
//!
//! Every such chunk is a complete subtree of the content's BLAKE3 tree, so each can be
//! hashed on its own ([`subtree_hash`], on any thread, in any order) and the hash of the
//! whole — the ordinary `blake3::hash` of the content — merged from the chunk hashes in
//! order ([`TreeStack`]) without reading the content again. The transfer engine verifies
//! chunks this way (`transfer::tree`, `transfer::stack`), and a files get hashes its
//! segments on its workers (`files::parallel`).
//!
//! [`TreeStack`] keeps only the chaining values of the complete subtrees seen so far,
//! merged the way BLAKE3 merges its own chunks (a subtree is merged only once more input
//! is known to follow, so the last one can still become the root): at most 64 chaining
//! values, whatever the size.

use blake3::hazmat::{merge_subtrees_non_root, merge_subtrees_root, HasherExt, Mode};

/// The hash of chunk `index` (holding `data`) of content cut into `count` chunks of
/// `chunk_size` bytes (a power of two, at least 1 KiB): the chaining value of its subtree,
/// or for content of a single chunk the root hash itself. `data` must be the chunk's whole
/// content: non-empty and at most `chunk_size` bytes when `count > 1`; anything else
/// yields a hash no correct chunk has.
pub fn subtree_hash(index: u64, count: u64, chunk_size: u32, data: &[u8]) -> [u8; 32] {
    let valid_subtree = count > 1
        && index < count
        && !data.is_empty()
        && data.len() <= chunk_size as usize
        && chunk_size.is_power_of_two()
        && chunk_size as usize >= blake3::CHUNK_LEN;
    if !valid_subtree {
        // A lone chunk is the root; invalid input gets a root hash, which never equals a
        // chaining value a valid chunk would have.
        return *blake3::hash(data).as_bytes();
    }
    let mut hasher = blake3::Hasher::new();
    hasher.set_input_offset(index * u64::from(chunk_size));
    hasher.update(data);
    hasher.finalize_non_root()
}

/// Chunk hashes merged as they come.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeStack {
    /// Chunks pushed.
    count: u64,
    /// Chaining values of the complete subtrees of the chunks before the last one, left
    /// to right (one per bit set in `count - 1`).
    stack: Vec<[u8; 32]>,
    /// The last chunk's hash, kept apart until the next one (or the root) merges it.
    last: Option<[u8; 32]>,
}

impl TreeStack {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a tree from its parts (as [`TreeStack::parts`] gives them); `None` if
    /// they are not a shape that pushing `count` chunks can produce.
    pub fn from_parts(count: u64, stack: Vec<[u8; 32]>, last: Option<[u8; 32]>) -> Option<Self> {
        let expected = match count {
            0 => 0,
            n => (n - 1).count_ones() as usize,
        };
        (stack.len() == expected && last.is_some() == (count > 0)).then_some(Self {
            count,
            stack,
            last,
        })
    }

    /// The parts: chunks pushed, the stack of subtrees, the last chunk's hash.
    pub fn parts(&self) -> (u64, &[[u8; 32]], Option<&[u8; 32]>) {
        (self.count, &self.stack, self.last.as_ref())
    }

    /// How many chunk hashes were pushed.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Adds the hash of the next chunk.
    pub fn push(&mut self, hash: [u8; 32]) {
        if let Some(previous) = self.last.take() {
            // `previous` is chunk `count - 1`: merge every subtree it completes.
            let mut cv = previous;
            let mut total = self.count;
            while total & 1 == 0 {
                match self.stack.pop() {
                    Some(left) => cv = merge_subtrees_non_root(&left, &cv, Mode::Hash),
                    None => break,
                }
                total >>= 1;
            }
            self.stack.push(cv);
        }
        self.last = Some(hash);
        self.count += 1;
    }

    /// The hash of the whole content, assuming every chunk was pushed.
    pub fn root(&self) -> [u8; 32] {
        let Some(last) = self.last else {
            return *blake3::hash(&[]).as_bytes();
        };
        let mut cv = last;
        let mut stack = self.stack.iter().rev().peekable();
        while let Some(left) = stack.next() {
            if stack.peek().is_none() {
                return *merge_subtrees_root(left, &cv, Mode::Hash).as_bytes();
            }
            cv = merge_subtrees_non_root(left, &cv, Mode::Hash);
        }
        // A single chunk: its hash is the root already.
        cv
    }

    /// A short fingerprint of the whole state: two sides that pushed the same chunk
    /// hashes have the same digest, and (but for a BLAKE3 collision) only they do.
    pub fn digest(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new_derive_key("memmesh 2026 transfer resume digest");
        h.update(&self.count.to_le_bytes());
        for cv in &self.stack {
            h.update(cv);
        }
        if let Some(last) = &self.last {
            h.update(last);
        }
        *h.finalize().as_bytes()
    }
}
