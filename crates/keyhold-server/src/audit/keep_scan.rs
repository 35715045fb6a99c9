//! The fast path of [`super::params::request_parameters`]: the walk of [`super::keep`] along the
//! model table, over the body's bytes instead of through serde, writing the kept part as JSON
//! text.
//!
//! Why: the values an audit record drops are the long ones (a base64 plaintext or ciphertext),
//! and serde_json skips a string eight bytes at a time, checking each for control characters:
//! for a 1 KiB Encrypt that was 3.4k of the record's 14k instructions. Here a dropped string is
//! skipped with `memchr2` (its closing quote or a backslash, many bytes per step). And a kept
//! value is written straight into the text the record copies, rather than built as a
//! `serde_json::Value` (a map, a key and a value allocated per member) and serialised again:
//! a string without escapes is copied as it stands, which is exactly what serde_json would
//! write for it.
//!
//! It gives the serde walk's answer for every valid JSON body (a test parses its text and
//! compares it with the serde walk's value on generated bodies). It does not check what it
//! skips (dropped values, and the names of members the model does not know) for control
//! characters or invalid UTF-8, so for a body that is invalid only there it may show the kept
//! members where the serde walk shows none; such a request is refused as not JSON before
//! anything runs, and no dropped value is shown either way. Whatever it does not handle (a
//! body that is not an object, an escaped member name, deep nesting, a structure with more
//! than [`MAX_MEMBERS`] members or a map with more than [`MAX_ENTRIES`] entries, any syntax
//! error) it hands back to the serde walk, which then decides.
//!
//! How members are written: each kept member or item is appended with a leading comma, and
//! the first comma becomes the opening bracket when the object or array is closed. A member
//! or map key seen twice keeps only its last value (the serde walk's rule); the earlier one is
//! cut out when its object is closed, which only such a body pays for.

use keyhold_model_runtime::validate::{Kind, Member, Shape};

use super::keep::DROPPED_MEMBERS;
use super::params::Facts;

/// Nesting deeper than this is left to the serde walk (which has a limit of its own).
const MAX_DEPTH: u32 = 64;
/// Structures with more members are left to the serde walk (the largest input structure of
/// the KMS model has 11).
pub(super) const MAX_MEMBERS: usize = 16;
/// Maps with more entries are left to the serde walk (an encryption context has a few).
pub(super) const MAX_ENTRIES: usize = 16;

/// Appends the kept part of `body` to `out` as a JSON object and answers what the record reads
/// from it; `Ok(None)` when every member was dropped (nothing is appended). `Err(Fallback)`
/// when the serde walk must decide; `out` may then hold a partial text from its length before
/// the call, which the caller cuts off.
pub(super) fn kept(
    shape: &'static Shape,
    body: &[u8],
    out: &mut Vec<u8>,
) -> Result<Option<Facts>, Fallback> {
    let Kind::Structure(members) = &shape.kind else {
        return Err(Fallback);
    };
    let mark = out.len();
    let mut scan = Scanner {
        b: body,
        i: 0,
        depth: 0,
        out,
    };
    scan.ws();
    if scan.peek() != Some(b'{') || shape.sensitive {
        return Err(Fallback);
    }
    let spans = scan.structure_spans(members)?;
    scan.ws();
    if scan.i != body.len() {
        return Err(Fallback);
    }
    Ok(spans.map(|spans| facts(members, &spans, &out[mark..], mark)))
}

/// What the record reads back from the top-level structure written at the start of `text`
/// (at `mark` in the whole output), whose kept members are at `spans`.
fn facts(members: &[Member], spans: &[Option<Span>], text: &[u8], mark: usize) -> Facts {
    let mut facts = Facts::default();
    for (m, span) in members.iter().zip(spans) {
        let Some(span) = span else { continue };
        let value = span.value - mark..span.end - mark;
        let is_string = text.get(value.start) == Some(&b'"');
        facts.note(m.path, value, is_string);
    }
    facts
}

/// The serde walk must decide (see the module doc).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Fallback;

type Scanned<T> = Result<T, Fallback>;

/// A position in the body, and the text written so far.
struct Scanner<'a, 'o> {
    b: &'a [u8],
    i: usize,
    depth: u32,
    out: &'o mut Vec<u8>,
}

/// Where a kept member or entry is in the text: `start` (its leading comma) to `end`, and
/// `value` where its value begins.
#[derive(Clone, Copy)]
struct Span {
    start: usize,
    value: usize,
    end: usize,
}

impl<'a> Scanner<'a, '_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Skips JSON whitespace.
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    /// Consumes `byte`, after whitespace.
    fn expect(&mut self, byte: u8) -> Scanned<()> {
        self.ws();
        if self.peek() != Some(byte) {
            return Err(Fallback);
        }
        self.i += 1;
        Ok(())
    }

    /// A value of `shape` at the current position (after whitespace): written and `true`, or
    /// skipped and `false` (nothing written), with the rules of `keep::Keep`.
    fn value(&mut self, shape: &'static Shape) -> Scanned<bool> {
        self.ws();
        if shape.sensitive || matches!(shape.kind, Kind::Blob { .. }) {
            self.skip()?;
            return Ok(false);
        }
        match (self.peek().ok_or(Fallback)?, &shape.kind) {
            (b'"', Kind::String { .. }) => self.string().map(|()| true),
            (b'{', Kind::Structure(members)) => self.structure(members),
            (b'{', Kind::Map { key, value, .. }) if !key.sensitive => self.map(value),
            (b'[', Kind::List { member, .. }) => self.list(member),
            (b't' | b'f', Kind::Boolean) => {
                let word: &[u8] = if self.boolean()? { b"true" } else { b"false" };
                self.out.extend_from_slice(word);
                Ok(true)
            }
            (b'-' | b'0'..=b'9', Kind::Integer { .. } | Kind::Long { .. } | Kind::Timestamp) => {
                let raw = self.number()?;
                write_number(self.out, raw)?;
                Ok(true)
            }
            _ => {
                self.skip()?;
                Ok(false)
            }
        }
    }

    /// A structure, written or dropped as [`Scanner::structure_spans`] says.
    fn structure(&mut self, members: &'static [Member]) -> Scanned<bool> {
        self.structure_spans(members).map(|spans| spans.is_some())
    }

    /// A structure: members the model knows are kept or dropped, others skipped. A
    /// structure whose every member was dropped is dropped too (an empty one is kept).
    /// Answers where its kept members were written, by their index in `members`, when kept.
    fn structure_spans(
        &mut self,
        members: &'static [Member],
    ) -> Scanned<Option<[Option<Span>; MAX_MEMBERS]>> {
        if members.len() > MAX_MEMBERS {
            return Err(Fallback);
        }
        let mark = self.out.len();
        let mut spans: [Option<Span>; MAX_MEMBERS] = [None; MAX_MEMBERS];
        let mut any = false;
        let mut repeated = false;
        self.each(b'{', b'}', |scan| {
            let name = scan.name()?;
            scan.expect(b':')?;
            any = true;
            let found = members
                .iter()
                .enumerate()
                .find(|(_, m)| m.name.as_bytes() == name && !DROPPED_MEMBERS.contains(&m.name));
            let Some((index, member)) = found else {
                return scan.skip();
            };
            // As the serde walk: the last of repeated members counts, whether it is kept or
            // dropped.
            repeated |= spans[index].take().is_some();
            let start = scan.out.len();
            scan.out.extend_from_slice(b",\"");
            scan.out.extend_from_slice(member.path.as_bytes());
            scan.out.extend_from_slice(b"\":");
            let value = scan.out.len();
            if scan.value(member.shape)? {
                let end = scan.out.len();
                spans[index] = Some(Span { start, value, end });
            } else {
                scan.out.truncate(start);
            }
            Ok(())
        })?;
        if repeated {
            compact(self.out, mark, &mut spans);
        }
        if self.out.len() > mark || !any {
            close(self.out, mark, b"{}");
            Ok(Some(spans))
        } else {
            Ok(None)
        }
    }

    /// A map whose keys may be shown: entries whose value is kept.
    fn map(&mut self, value: &'static Shape) -> Scanned<bool> {
        let mark = self.out.len();
        let mut spans: [Option<Span>; MAX_ENTRIES] = [None; MAX_ENTRIES];
        let mut count = 0;
        let mut repeated = false;
        self.each(b'{', b'}', |scan| {
            if count == MAX_ENTRIES {
                return Err(Fallback);
            }
            let start = scan.out.len();
            scan.out.push(b',');
            scan.string()?;
            let key = start + 1..scan.out.len();
            scan.expect(b':')?;
            // Keys are compared as written: serde_json's escaping gives one text per key.
            for span in &mut spans[..count] {
                if span.is_some_and(|s| scan.out[s.start + 1..s.value - 1] == scan.out[key.clone()])
                {
                    *span = None;
                    repeated = true;
                }
            }
            scan.out.push(b':');
            let value_at = scan.out.len();
            if scan.value(value)? {
                let end = scan.out.len();
                spans[count] = Some(Span {
                    start,
                    value: value_at,
                    end,
                });
            } else {
                scan.out.truncate(start);
            }
            count += 1;
            Ok(())
        })?;
        if repeated {
            compact(self.out, mark, &mut spans[..count]);
        }
        close(self.out, mark, b"{}");
        Ok(true)
    }

    /// A list: its kept items.
    fn list(&mut self, member: &'static Shape) -> Scanned<bool> {
        let mark = self.out.len();
        self.each(b'[', b']', |scan| {
            let start = scan.out.len();
            scan.out.push(b',');
            if !scan.value(member)? {
                scan.out.truncate(start);
            }
            Ok(())
        })?;
        close(self.out, mark, b"[]");
        Ok(true)
    }

    /// An object or array (after whitespace, at `open`): `entry` reads each member or item,
    /// starting after whitespace; commas, the closing `close` and the depth are handled here.
    fn each(
        &mut self,
        open: u8,
        close: u8,
        mut entry: impl FnMut(&mut Self) -> Scanned<()>,
    ) -> Scanned<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Fallback);
        }
        self.expect(open)?;
        self.ws();
        if self.peek() == Some(close) {
            self.i += 1;
        } else {
            loop {
                self.ws();
                entry(self)?;
                if self.separator(close)? {
                    break;
                }
            }
        }
        self.depth -= 1;
        Ok(())
    }

    /// After a member or item: `true` at the closing `close`, `false` after a comma.
    fn separator(&mut self, close: u8) -> Scanned<bool> {
        self.ws();
        match self.peek() {
            Some(b',') => {
                self.i += 1;
                Ok(false)
            }
            Some(c) if c == close => {
                self.i += 1;
                Ok(true)
            }
            _ => Err(Fallback),
        }
    }

    /// Skips any JSON value (after whitespace).
    fn skip(&mut self) -> Scanned<()> {
        self.ws();
        match self.peek().ok_or(Fallback)? {
            b'"' => self.skip_string().map(drop),
            b'{' => self.each(b'{', b'}', |scan| {
                scan.skip_string()?;
                scan.expect(b':')?;
                scan.skip()
            }),
            b'[' => self.each(b'[', b']', Self::skip),
            b't' | b'f' => self.boolean().map(drop),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number().map(drop),
            _ => Err(Fallback),
        }
    }

    /// Skips a string (anything else is a `Fallback`); answers whether it had an escape. The
    /// closing quote is found with `memchr2`; escapes are checked, control characters are not.
    fn skip_string(&mut self) -> Scanned<bool> {
        if self.peek() != Some(b'"') {
            return Err(Fallback);
        }
        self.i += 1;
        let mut escaped = false;
        loop {
            let rest = self.b.get(self.i..).ok_or(Fallback)?;
            let at = memchr::memchr2(b'"', b'\\', rest).ok_or(Fallback)?;
            self.i += at;
            if self.b[self.i] == b'"' {
                self.i += 1;
                return Ok(escaped);
            }
            escaped = true;
            match self.b.get(self.i + 1).ok_or(Fallback)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 2,
                b'u' => {
                    let hex = self.b.get(self.i + 2..self.i + 6).ok_or(Fallback)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return Err(Fallback);
                    }
                    self.i += 6;
                }
                _ => return Err(Fallback),
            }
        }
    }

    /// A string (after whitespace), written as serde_json would write what it reads: one
    /// without escapes as it stands, one with escapes decoded and escaped again.
    fn string(&mut self) -> Scanned<()> {
        self.ws();
        let start = self.i;
        if self.skip_string()? {
            let s: String = serde_json::from_slice(&self.b[start..self.i]).map_err(|_| Fallback)?;
            super::record::json_str(self.out, &s);
        } else {
            Self::check_text(&self.b[start + 1..self.i - 1])?;
            self.out.extend_from_slice(&self.b[start..self.i]);
        }
        Ok(())
    }

    /// A member name's bytes, when it has no escape (an escaped one is left to the serde
    /// walk). Not checked: it is only compared with the model's names, which are ASCII, and
    /// one that matches none is skipped with its value.
    fn name(&mut self) -> Scanned<&'a [u8]> {
        let start = self.i;
        if self.skip_string()? {
            return Err(Fallback);
        }
        Ok(&self.b[start + 1..self.i - 1])
    }

    /// Checks the text between a string's quotes when it has no escape: refused, as
    /// serde_json refuses it, when it holds a control character or is not UTF-8.
    fn check_text(raw: &[u8]) -> Scanned<()> {
        // Printable ASCII, nearly always: one pass with no early exit, which the compiler
        // makes sixteen bytes a step.
        if raw
            .iter()
            .fold(0u8, |odd, &c| odd | u8::from(!(0x20..0x80).contains(&c)))
            == 0
        {
            return Ok(());
        }
        if raw.iter().any(|&c| c < 0x20) {
            return Err(Fallback);
        }
        std::str::from_utf8(raw).map(drop).map_err(|_| Fallback)
    }

    fn boolean(&mut self) -> Scanned<bool> {
        if self.peek() == Some(b't') {
            self.literal(b"true").map(|()| true)
        } else {
            self.literal(b"false").map(|()| false)
        }
    }

    fn literal(&mut self, word: &[u8]) -> Scanned<()> {
        if self.b.get(self.i..self.i + word.len()) != Some(word) {
            return Err(Fallback);
        }
        self.i += word.len();
        Ok(())
    }

    /// A number's text, checked against JSON's grammar:
    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number(&mut self) -> Scanned<&'a [u8]> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(Fallback),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(Fallback);
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(Fallback);
            }
            self.digits();
        }
        Ok(&self.b[start..self.i])
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
    }
}

/// Ends the object or array begun at `mark` in `out`: its members were written each with a
/// leading comma, so the first comma becomes the opening bracket; with none, `empty`.
fn close(out: &mut Vec<u8>, mark: usize, empty: &[u8; 2]) {
    match out.get_mut(mark) {
        Some(first) => {
            *first = empty[0];
            out.push(empty[1]);
        }
        None => out.extend_from_slice(empty),
    }
}

/// Rewrites what was written from `mark` to hold only the members and entries of `spans`
/// (in the order they were written), after a repeated one left an earlier one behind; the
/// spans are moved with them.
fn compact(out: &mut Vec<u8>, mark: usize, spans: &mut [Option<Span>]) {
    let written = out.split_off(mark);
    let mut live: Vec<&mut Span> = spans.iter_mut().flatten().collect();
    live.sort_by_key(|s| s.start);
    for span in live {
        let at = out.len();
        out.extend_from_slice(&written[span.start - mark..span.end - mark]);
        *span = Span {
            start: at,
            value: at + (span.value - span.start),
            end: out.len(),
        };
    }
}

/// Appends a number as serde_json writes the number it reads from `raw`: digits alone (an
/// integer below 10^19, which serde_json reads as a `u64`) as they stand, anything else
/// through serde_json.
fn write_number(out: &mut Vec<u8>, raw: &[u8]) -> Scanned<()> {
    if raw.len() < 20 && raw.iter().all(u8::is_ascii_digit) {
        out.extend_from_slice(raw);
        return Ok(());
    }
    let n: serde_json::Number = serde_json::from_slice(raw).map_err(|_| Fallback)?;
    serde_json::to_writer(&mut *out, &n).map_err(|_| Fallback)
}

#[cfg(test)]
#[path = "keep_scan_tests.rs"]
mod tests;
