//! Keyset pagination over `(created_at, id)`, newest first.
//!
//! A cursor names the last row of a page; the next page starts strictly after
//! it, so rows inserted meanwhile never shift or repeat rows already seen.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::DbError;

/// A position in a list: the `(created_at, id)` of the last row returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Creation time of the last row seen.
    pub created_at: DateTime<Utc>,
    /// Id of the last row seen.
    pub id: Uuid,
}

impl Cursor {
    /// Encodes the cursor as an opaque URL-safe string.
    pub fn encode(&self) -> String {
        let raw = format!(
            "{}|{}",
            self.created_at.timestamp_micros(),
            self.id.as_simple()
        );
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Decodes a string made by [`Cursor::encode`].
    pub fn decode(text: &str) -> Result<Cursor, DbError> {
        let raw = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| DbError::BadCursor)?;
        let raw = String::from_utf8(raw).map_err(|_| DbError::BadCursor)?;
        let (micros, id) = raw.split_once('|').ok_or(DbError::BadCursor)?;
        let micros: i64 = micros.parse().map_err(|_| DbError::BadCursor)?;
        Ok(Cursor {
            created_at: DateTime::from_timestamp_micros(micros).ok_or(DbError::BadCursor)?,
            id: Uuid::parse_str(id).map_err(|_| DbError::BadCursor)?,
        })
    }
}

/// One page of a list and the cursor of the next, if there is more.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows fetched: the extra row only
    /// tells that there is more.
    pub(crate) fn from_rows(mut rows: Vec<T>, limit: i64, key: impl Fn(&T) -> Cursor) -> Page<T> {
        let limit = usize::try_from(limit).unwrap_or(0);
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(key)
        } else {
            None
        };
        Page { items: rows, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips() {
        let cursor = Cursor {
            created_at: DateTime::from_timestamp_micros(1_763_900_000_123_456).unwrap(),
            id: Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
    }

    #[test]
    fn foreign_cursors_are_refused() {
        for bad in ["", "not base64!", &URL_SAFE_NO_PAD.encode("12|zz")] {
            assert!(matches!(Cursor::decode(bad), Err(DbError::BadCursor)));
        }
    }

    #[test]
    fn a_full_page_points_at_its_last_row() {
        let rows: Vec<i64> = (0..4).collect();
        let key = |n: &i64| Cursor {
            created_at: DateTime::from_timestamp_micros(*n).unwrap(),
            id: Uuid::nil(),
        };
        let page = Page::from_rows(rows.clone(), 3, key);
        assert_eq!(page.items, vec![0, 1, 2]);
        assert_eq!(page.next.unwrap().created_at.timestamp_micros(), 2);
        assert!(Page::from_rows(rows, 4, key).next.is_none());
    }
}
