//! Paging of list operations (`Limit`, `Marker`, `NextMarker`, `Truncated`), shared so every
//! operation answers the same way.
//!
//! A marker is the URL-safe base64 (no padding) of `<kind>:<last id returned>`, where `kind`
//! names the operation's listing (`k1` for ListKeys, `c1` for DescribeCustomKeyStores) so a
//! marker of one listing is refused by another. Markers are opaque to callers; the stores
//! list rows in id order and resume after the id.

use base64::Engine;
use keyhold_kms_model::Exception;

use crate::error::{KmsError, KmsResult};

/// AWS's `InvalidMarkerException` message.
pub const INVALID_MARKER_MESSAGE: &str = "The request was rejected because the marker that specifies where pagination should next begin is not valid.";

/// How one operation pages: its marker kind and its `Limit` bounds.
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    /// The marker's kind prefix (without the colon).
    pub kind: &'static str,
    /// Items per page when the request gives no `Limit`.
    pub default_limit: i32,
    /// The largest page; a larger `Limit` is clamped (as AWS does), a smaller than 1 too.
    pub max_limit: i32,
}

/// One page of items, ready for a list response.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items of this page, in order.
    pub items: Vec<T>,
    /// The marker of the next page, present exactly when `truncated`.
    pub next_marker: Option<String>,
    /// Whether more items follow.
    pub truncated: bool,
}

impl Paging {
    /// The page size for a request's `Limit`.
    pub fn page_size(&self, limit: Option<i32>) -> u32 {
        let n = limit.unwrap_or(self.default_limit).clamp(1, self.max_limit);
        // At least 1 after the clamp, so the conversion cannot fail.
        u32::try_from(n).unwrap_or(1)
    }

    /// The marker that resumes after `last_id`.
    pub fn encode(&self, last_id: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}:{last_id}", self.kind))
    }

    /// The id a request's `Marker` resumes after (`None` without a marker), or
    /// `InvalidMarkerException` for a marker this listing never issued.
    pub fn decode(&self, marker: Option<&str>) -> KmsResult<Option<String>> {
        let Some(marker) = marker else {
            return Ok(None);
        };
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(marker)
            .map_err(|_| invalid_marker())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid_marker())?;
        text.strip_prefix(self.kind)
            .and_then(|rest| rest.strip_prefix(':'))
            .filter(|id| !id.is_empty())
            .map(|id| Some(id.to_string()))
            .ok_or_else(invalid_marker)
    }

    /// Cuts `rows` (fetched with one row more than `size`, to learn whether more follow) to
    /// a page, with the marker naming the last row kept (`id_of` gives a row's id).
    pub fn page<T>(&self, mut rows: Vec<T>, size: u32, id_of: impl Fn(&T) -> &str) -> Page<T> {
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        let truncated = rows.len() > size;
        rows.truncate(size);
        let next_marker = if truncated {
            rows.last().map(|r| self.encode(id_of(r)))
        } else {
            None
        };
        Page {
            items: rows,
            next_marker,
            truncated,
        }
    }
}

/// `InvalidMarkerException` with AWS's message.
pub fn invalid_marker() -> KmsError {
    KmsError::new(Exception::InvalidMarker, INVALID_MARKER_MESSAGE.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: Paging = Paging {
        kind: "k1",
        default_limit: 100,
        max_limit: 1000,
    };

    #[test]
    fn markers_round_trip_and_keep_their_format() {
        let m = KEYS.encode("1234abcd-12ab-34cd-56ef-1234567890ab");
        assert_eq!(m, "azE6MTIzNGFiY2QtMTJhYi0zNGNkLTU2ZWYtMTIzNDU2Nzg5MGFi");
        assert_eq!(
            KEYS.decode(Some(&m)).ok().flatten().as_deref(),
            Some("1234abcd-12ab-34cd-56ef-1234567890ab")
        );
        assert_eq!(KEYS.decode(None).ok(), Some(None));
    }

    #[test]
    fn foreign_or_malformed_markers_are_invalid() {
        let stores = Paging { kind: "c1", ..KEYS };
        for bad in [
            "not base64!",
            "garbage",
            &stores.encode("cks-1"),
            &KEYS.encode(""),
        ] {
            let e = KEYS.decode(Some(bad)).expect_err(bad);
            assert!(e.is(Exception::InvalidMarker));
            assert_eq!(e.to_string(), INVALID_MARKER_MESSAGE);
        }
    }

    #[test]
    fn limits_and_pages() {
        assert_eq!(KEYS.page_size(None), 100);
        assert_eq!(KEYS.page_size(Some(0)), 1);
        assert_eq!(KEYS.page_size(Some(5000)), 1000);
        let p = KEYS.page(vec!["a", "b", "c"], 2, |s| s);
        assert_eq!(p.items, vec!["a", "b"]);
        assert!(p.truncated);
        assert_eq!(
            KEYS.decode(p.next_marker.as_deref()).ok(),
            Some(Some("b".into()))
        );
        let last = KEYS.page(vec!["c"], 2, |s| s);
        assert_eq!((last.truncated, last.next_marker), (false, None));
    }
}
