//! Name compression for the names written into one message.

use super::*;

/// How many names a message remembers for compression. Beyond it names are written whole:
/// still correct, and it bounds the work a huge answer costs.
const COMPRESSION_CANDIDATES: usize = 256;

/// Suffixes a [`Compressor`] keeps without allocating: the question's name and an answer's
/// owners and targets (an SRV answer for three endpoints of a headless Service remembers 25: seven suffixes of
/// the question, six of each target).
const INLINE_CANDIDATES: usize = 32;

/// The names (every suffix of them) a message already holds, lower case, and where.
pub struct Compressor<'a> {
    /// Inline up to [`INLINE_CANDIDATES`]: a typical answer stays on the stack, so writing it
    /// allocates nothing.
    seen: SmallVec<[(&'a [u8], u16); INLINE_CANDIDATES]>,
    /// The question's name, lower case, wire form.
    pub(super) question: &'a [u8],
}

impl<'a> Compressor<'a> {
    /// Starts with the question's name (lower case, wire form) at its place after the header.
    pub fn new(question: &'a [u8]) -> Self {
        let mut c = Self {
            seen: SmallVec::new(),
            question,
        };
        c.remember(question, question.len(), QUESTION_AT as usize);
        c
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Forgets what was remembered after the first `len` (a record rolled back).
    pub fn truncate(&mut self, len: usize) {
        self.seen.truncate(len);
    }

    /// Remembers the suffixes of `name` that start in its first `upto` bytes, which were
    /// written out in full at `offset`.
    fn remember(&mut self, name: &'a [u8], upto: usize, offset: usize) {
        for at in label_starts(name).take_while(|&at| at < upto && name[at] != 0) {
            let pos = offset + at;
            if pos >= 0x3FFF || self.seen.len() >= COMPRESSION_CANDIDATES {
                return;
            }
            self.seen.push((&name[at..], pos as u16));
        }
    }

    /// Writes `name` (uncompressed, lower case, wire form): with `compress`, its longest
    /// suffix already in the message becomes a pointer. Either way, what it writes out in full
    /// is remembered for the names after it.
    pub(super) fn write(
        &mut self,
        enc: &mut BinEncoder<'_>,
        name: &'a [u8],
        compress: bool,
    ) -> Result<(), ProtoError> {
        let start = enc.offset();
        for at in label_starts(name).take_while(|&at| name[at] != 0) {
            if compress && let Some(&(_, to)) = self.seen.iter().find(|(s, _)| *s == &name[at..]) {
                enc.emit_vec(&name[..at])?;
                self.remember(name, at, start);
                return enc.emit_u16(0xC000 | to);
            }
        }
        enc.emit_vec(name)?;
        self.remember(name, name.len(), start);
        Ok(())
    }
}
