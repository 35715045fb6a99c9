//! The fast path of [`super::keep::kept_parameters`]: the same walk along the model table, over
//! the body's bytes instead of through serde.
//!
//! Why: the values an audit record drops are the long ones (a base64 plaintext or ciphertext),
//! and serde_json skips a string eight bytes at a time, checking each for control characters:
//! for a 1 KiB Encrypt that was 3.4k of the record's 14k instructions. Here a dropped string is
//! skipped with `memchr2` (its closing quote or a backslash, many bytes per step), and a kept
//! value is read exactly as serde_json reads it.
//!
//! It gives the serde walk's answer for every valid JSON body (a test compares the two on
//! generated bodies). It does not check what it skips for control characters, so for a body
//! that is invalid only there it may show the kept members where the serde walk shows none;
//! such a request is refused as not JSON before anything runs, and no dropped value is shown
//! either way. Whatever it does not handle (a body that is not an object, an escaped member
//! name, deep nesting, any syntax error) it hands back to the serde walk, which then decides.

use serde_json::{Map, Number, Value};

use keyhold_model_runtime::validate::{Kind, Member, Shape};

use super::keep::DROPPED_MEMBERS;

/// Nesting deeper than this is left to the serde walk (which has a limit of its own).
const MAX_DEPTH: u32 = 64;

/// The kept part of `body`, as [`super::keep::kept_parameters`] defines it; `Err(Fallback)`
/// when the serde walk must decide.
pub(super) fn kept(shape: &'static Shape, body: &[u8]) -> Result<Option<Value>, Fallback> {
    let Kind::Structure(members) = &shape.kind else {
        return Err(Fallback);
    };
    let mut scan = Scanner {
        b: body,
        i: 0,
        depth: 0,
    };
    scan.ws();
    if scan.peek() != Some(b'{') || shape.sensitive {
        return Err(Fallback);
    }
    let kept = scan.structure(members)?;
    scan.ws();
    if scan.i != body.len() {
        return Err(Fallback);
    }
    Ok(kept)
}

/// The serde walk must decide (see the module doc).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Fallback;

type Scanned<T> = Result<T, Fallback>;

/// A position in the body.
struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    depth: u32,
}

impl<'a> Scanner<'a> {
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

    /// A value of `shape` at the current position (after whitespace): kept or skipped, with
    /// the rules of `keep::Keep`.
    fn value(&mut self, shape: &'static Shape) -> Scanned<Option<Value>> {
        self.ws();
        if shape.sensitive || matches!(shape.kind, Kind::Blob { .. }) {
            self.skip()?;
            return Ok(None);
        }
        match (self.peek().ok_or(Fallback)?, &shape.kind) {
            (b'"', Kind::String { .. }) => Ok(Some(Value::String(self.string()?))),
            (b'{', Kind::Structure(members)) => self.structure(members),
            (b'{', Kind::Map { key, value, .. }) if !key.sensitive => self.map(value),
            (b'[', Kind::List { member, .. }) => self.list(member),
            (b't' | b'f', Kind::Boolean) => Ok(Some(Value::Bool(self.boolean()?))),
            (b'-' | b'0'..=b'9', Kind::Integer { .. } | Kind::Long { .. } | Kind::Timestamp) => {
                let raw = self.number()?;
                let n: Number = serde_json::from_slice(raw).map_err(|_| Fallback)?;
                Ok(Some(Value::Number(n)))
            }
            _ => {
                self.skip()?;
                Ok(None)
            }
        }
    }

    /// A structure: members the model knows are kept or dropped, others skipped.
    fn structure(&mut self, members: &'static [Member]) -> Scanned<Option<Value>> {
        let mut out = Map::new();
        let mut any = false;
        self.each(b'{', b'}', |scan| {
            let name = scan.name()?;
            scan.expect(b':')?;
            any = true;
            let member = members
                .iter()
                .find(|m| m.name == name && !DROPPED_MEMBERS.contains(&m.name));
            match member {
                Some(m) => match scan.value(m.shape)? {
                    Some(v) => {
                        out.insert(m.path.to_owned(), v);
                    }
                    // As the serde walk: a later duplicate that is dropped drops the earlier
                    // one too.
                    None => {
                        out.remove(m.path);
                    }
                },
                None => scan.skip()?,
            }
            Ok(())
        })?;
        Ok((!out.is_empty() || !any).then_some(Value::Object(out)))
    }

    /// A map whose keys may be shown: entries whose value is kept.
    fn map(&mut self, value: &'static Shape) -> Scanned<Option<Value>> {
        let mut out = Map::new();
        self.each(b'{', b'}', |scan| {
            let key = scan.string()?;
            scan.expect(b':')?;
            match scan.value(value)? {
                Some(v) => {
                    out.insert(key, v);
                }
                None => {
                    out.remove(&key);
                }
            }
            Ok(())
        })?;
        Ok(Some(Value::Object(out)))
    }

    /// A list: its kept items.
    fn list(&mut self, member: &'static Shape) -> Scanned<Option<Value>> {
        let mut items = Vec::new();
        self.each(b'[', b']', |scan| {
            items.extend(scan.value(member)?);
            Ok(())
        })?;
        Ok(Some(Value::Array(items)))
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

    /// A string, read as serde_json reads it.
    fn string(&mut self) -> Scanned<String> {
        let start = self.i;
        if self.skip_string()? {
            return serde_json::from_slice(&self.b[start..self.i]).map_err(|_| Fallback);
        }
        Self::text(&self.b[start + 1..self.i - 1]).map(str::to_owned)
    }

    /// A member name, when it has no escape (an escaped one is left to the serde walk).
    fn name(&mut self) -> Scanned<&'a str> {
        let start = self.i;
        if self.skip_string()? {
            return Err(Fallback);
        }
        Self::text(&self.b[start + 1..self.i - 1])
    }

    /// The text between a string's quotes when it has no escape: refused, as serde_json
    /// refuses it, when it holds a control character or is not UTF-8.
    fn text(raw: &'a [u8]) -> Scanned<&'a str> {
        if raw.iter().any(|&c| c < 0x20) {
            return Err(Fallback);
        }
        std::str::from_utf8(raw).map_err(|_| Fallback)
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

#[cfg(test)]
#[path = "keep_scan_tests.rs"]
mod tests;
