//! Reading a scalar metric's points. They are stored in pieces: a row of
//! `metric_points` for a point logged alone, a row of `metric_chunks` for
//! up to 64 points logged together (steps ascending). Pieces are read in
//! the order of their first step, which the indexes give without sorting,
//! and merged: a point is handed on once no later piece can come before it,
//! so a read holds only the points of pieces that overlap, and a page stops
//! reading once it is full.

use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt, TryStreamExt};
use sqlx::{FromRow, PgConnection};
use std::cmp::Ordering;

use crate::{Db, DbError};

/// One point of a scalar metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScalarPoint {
    /// Its step.
    pub step: i64,
    /// When it was logged.
    pub at: DateTime<Utc>,
    /// Its value (NaN and infinities included).
    pub value: f64,
}

/// Where a read of a metric's points starts.
#[derive(Debug, Clone, Copy)]
pub enum After {
    /// At the first point.
    Start,
    /// After every point of this step and below.
    Step(i64),
    /// After this point (step, time, value), in [`point_order`].
    Point(ScalarPoint),
}

impl After {
    /// Pieces whose last step is below this hold nothing to read.
    fn lowest_step(self) -> i64 {
        match self {
            After::Start => i64::MIN,
            After::Step(step) => step.saturating_add(1),
            After::Point(point) => point.step,
        }
    }

    fn admits(self, point: &ScalarPoint) -> bool {
        match self {
            After::Start => true,
            After::Step(step) => point.step > step,
            After::Point(after) => point_order(point, &after) == Ordering::Greater,
        }
    }
}

/// A metric's pieces whose last step is at least $2, by first step, at
/// most $3 of them (all when NULL). Each side is ordered on its own, so
/// that PostgreSQL merges two index scans rather than sorting; the settings
/// that come with it keep those scans: statistics that lag behind points
/// just logged would otherwise pick reading every piece and sorting them
/// before the first (on disk, beyond `work_mem`). The JIT compilation that
/// a large estimate would add is off on every connection ([`Db::connect`]).
pub(crate) const PIECES: &str = "(SELECT step AS first_step, at, value, NULL::bigint[] AS steps,
                NULL::timestamptz[] AS ats, NULL::float8[] AS vals
           FROM metric_points WHERE metric_id = $1 AND step >= $2 ORDER BY step)
     UNION ALL
     (SELECT steps[1], NULL, NULL, steps, ats, vals
        FROM metric_chunks WHERE metric_id = $1 AND steps[cardinality(steps)] >= $2
       ORDER BY steps[1])
     ORDER BY first_step LIMIT $3";
/// See [`PIECES`].
pub(crate) const PIECES_SETTINGS: &str = "BEGIN; SET LOCAL enable_bitmapscan = off;
    SET LOCAL enable_seqscan = off; SET LOCAL enable_sort = off";

/// A stored piece: one point (its step, time and value) or a chunk (its
/// columns, steps ascending).
#[derive(FromRow)]
pub(crate) struct StoredPiece {
    first_step: i64,
    at: Option<DateTime<Utc>>,
    value: Option<f64>,
    steps: Option<Vec<i64>>,
    ats: Option<Vec<DateTime<Utc>>>,
    vals: Option<Vec<f64>>,
}

/// Every point of a metric, in [`point_order`], a few at a time, from one
/// query; call within a transaction begun with [`PIECES_SETTINGS`].
pub(crate) fn all_points(
    conn: &mut PgConnection,
    metric_id: i64,
) -> impl Stream<Item = Result<Vec<ScalarPoint>, sqlx::Error>> + '_ {
    let pieces = sqlx::query_as::<_, StoredPiece>(PIECES)
        .bind(metric_id)
        .bind(i64::MIN)
        .bind(None::<i64>)
        .fetch(conn);
    let mut merge = PointMerge::default();
    // `None` marks the end, when the points still held are handed on.
    pieces
        .map_ok(Some)
        .chain(futures::stream::once(async { Ok(None) }))
        .try_filter_map(move |piece| {
            let mut ready = Vec::new();
            match piece {
                Some(piece) => {
                    merge.add(piece, &mut ready);
                }
                None => merge.finish(&mut ready),
            }
            futures::future::ready(Ok((!ready.is_empty()).then_some(ready)))
        })
}

/// Pieces read first by [`points_after`]: enough for a page of chunks.
fn first_pieces(limit: usize) -> usize {
    limit / 32 + 16
}

impl Db {
    /// Up to `limit` points of a scalar metric after `after`, in
    /// [`point_order`] (none for a negative `limit`).
    pub(crate) async fn scalar_points_after(
        &self,
        metric_id: i64,
        after: After,
        limit: i64,
    ) -> Result<Vec<ScalarPoint>, DbError> {
        let limit = usize::try_from(limit).unwrap_or(0);
        let mut tx = self.pool().begin_with(PIECES_SETTINGS).await?;
        let page = points_after(&mut tx, metric_id, after, limit).await?;
        tx.commit().await?;
        Ok(page)
    }
}

/// Up to `limit` points after `after`, in [`point_order`]. Reads a few
/// pieces, and while the page is not full reads again from the start, as
/// many pieces as the points per piece seen so far say are missing (twice
/// that, and at least twice as many as before); call within a transaction
/// begun with [`PIECES_SETTINGS`].
async fn points_after(
    conn: &mut PgConnection,
    metric_id: i64,
    after: After,
    limit: usize,
) -> Result<Vec<ScalarPoint>, sqlx::Error> {
    let mut wanted = first_pieces(limit);
    loop {
        let pieces = sqlx::query_as::<_, StoredPiece>(PIECES)
            .bind(metric_id)
            .bind(after.lowest_step())
            .bind(wanted as i64)
            .fetch_all(&mut *conn)
            .await?;
        let read = pieces.len();
        let every_piece = read < wanted;
        let mut merge = PointMerge::default();
        let mut ready = Vec::new();
        let mut points = 0;
        for piece in pieces {
            points += merge.add(piece, &mut ready);
        }
        if every_piece {
            merge.finish(&mut ready);
        }
        ready.retain(|point| after.admits(point));
        if every_piece || ready.len() >= limit {
            ready.truncate(limit);
            return Ok(ready);
        }
        let per_piece = (points / read.max(1)).max(1);
        let missing = limit + 1 - ready.len();
        wanted = (read + 2 * missing.div_ceil(per_piece)).max(wanted.saturating_mul(2));
    }
}

/// Puts the points of pieces that arrive in the order of their first step
/// in [`point_order`].
#[derive(Default)]
struct PointMerge {
    /// Points not yet handed on: a later piece may hold points of the same
    /// steps.
    held: Vec<ScalarPoint>,
    /// Whether `held` is out of order; it is sorted only when points are
    /// handed on, so that many points of one step that come out of order
    /// are sorted once, not once per piece.
    disordered: bool,
    /// The lowest step held.
    lowest_step: Option<i64>,
}

impl PointMerge {
    /// Adds a piece, first moving to `ready`, in order, the held points that
    /// come before every point of this piece and of any later one; returns
    /// how many points the piece held.
    fn add(&mut self, piece: StoredPiece, ready: &mut Vec<ScalarPoint>) -> usize {
        if self.lowest_step.is_some_and(|step| step < piece.first_step) {
            self.hand_on_below(piece.first_step, ready);
        }
        // A piece's first step is its lowest.
        self.lowest_step = Some(
            self.lowest_step
                .map_or(piece.first_step, |step| step.min(piece.first_step)),
        );
        let start = self.held.len();
        match piece {
            StoredPiece {
                steps: Some(steps),
                ats: Some(ats),
                vals: Some(vals),
                ..
            } => {
                let points = steps.into_iter().zip(ats).zip(vals);
                self.held
                    .extend(points.map(|((step, at), value)| ScalarPoint { step, at, value }));
            }
            StoredPiece {
                first_step,
                at: Some(at),
                value: Some(value),
                ..
            } => self.held.push(ScalarPoint {
                step: first_step,
                at,
                value,
            }),
            // Neither a point nor a chunk: the query gives none such.
            _ => {}
        }
        // Still in order unless the piece overlaps the points held, or a
        // chunk's points of one step differ in time or value.
        if !self.disordered {
            self.disordered = self.held[start.saturating_sub(1)..]
                .windows(2)
                .any(|pair| point_order(&pair[0], &pair[1]) == Ordering::Greater);
        }
        self.held.len() - start
    }

    /// Moves the held points below `step` to `ready`, in order.
    fn hand_on_below(&mut self, step: i64, ready: &mut Vec<ScalarPoint>) {
        self.put_in_order();
        let before = self.held.partition_point(|p| p.step < step);
        ready.extend(self.held.drain(..before));
        self.lowest_step = self.held.first().map(|p| p.step);
    }

    /// Moves every held point to `ready`, in order.
    fn finish(&mut self, ready: &mut Vec<ScalarPoint>) {
        self.put_in_order();
        ready.append(&mut self.held);
        self.lowest_step = None;
    }

    /// Sorts the held points if they are out of order; the sort is stable,
    /// so equal points keep the order they came in.
    fn put_in_order(&mut self) {
        if std::mem::take(&mut self.disordered) {
            self.held.sort_by(point_order);
        }
    }
}

/// Step, then time, then value, as PostgreSQL orders them (NaN above every
/// number): MLflow's order of a history.
pub fn point_order(a: &ScalarPoint, b: &ScalarPoint) -> Ordering {
    a.step.cmp(&b.step).then(a.at.cmp(&b.at)).then_with(|| {
        match (a.value.is_nan(), b.value.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => a.value.partial_cmp(&b.value).unwrap_or(Ordering::Equal),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms).unwrap()
    }

    fn single(step: i64, ms: i64, value: f64) -> StoredPiece {
        StoredPiece {
            first_step: step,
            at: Some(at(ms)),
            value: Some(value),
            steps: None,
            ats: None,
            vals: None,
        }
    }

    fn chunk(points: &[(i64, i64, f64)]) -> StoredPiece {
        StoredPiece {
            first_step: points[0].0,
            at: None,
            value: None,
            steps: Some(points.iter().map(|p| p.0).collect()),
            ats: Some(points.iter().map(|p| at(p.1)).collect()),
            vals: Some(points.iter().map(|p| p.2).collect()),
        }
    }

    #[test]
    fn overlapping_pieces_merge_in_order_and_only_safe_points_are_handed_on() {
        let mut merge = PointMerge::default();
        let mut ready = Vec::new();
        merge.add(chunk(&[(0, 5, 1.0), (2, 5, 1.0), (4, 5, 1.0)]), &mut ready);
        assert!(ready.is_empty(), "a later piece may start at step 0");
        merge.add(single(2, 1, f64::NAN), &mut ready);
        // Step 0 comes before anything a piece starting at step 2 holds.
        assert_eq!(ready.iter().map(|p| p.step).collect::<Vec<_>>(), [0]);
        merge.add(chunk(&[(2, 1, 0.5), (3, 9, 0.0), (3, 1, 0.0)]), &mut ready);
        assert_eq!(ready.len(), 1, "points of step 2 may still come");
        merge.add(single(9, 0, 0.0), &mut ready);
        merge.finish(&mut ready);
        let got: Vec<(i64, i64, String)> = ready
            .iter()
            .map(|p| (p.step, p.at.timestamp_millis(), p.value.to_string()))
            .collect();
        let want = [
            (0, 5, "1"),
            (2, 1, "0.5"),
            (2, 1, "NaN"),
            (2, 5, "1"),
            (3, 1, "0"),
            (3, 9, "0"),
            (4, 5, "1"),
            (9, 0, "0"),
        ];
        let want: Vec<(i64, i64, String)> = want
            .iter()
            .map(|&(s, t, v)| (s, t, v.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn points_of_one_step_out_of_time_order_are_held_then_handed_on_sorted() {
        let mut merge = PointMerge::default();
        let mut ready = Vec::new();
        // Logged without steps (all step 0), read back newest first.
        for ms in (0..5_000).rev() {
            merge.add(single(0, ms, 1.0), &mut ready);
        }
        assert!(ready.is_empty(), "a later piece may still hold step 0");
        merge.add(chunk(&[(1, 0, 2.0), (2, 0, 2.0)]), &mut ready);
        assert_eq!(ready.len(), 5_000);
        assert!(ready.windows(2).all(|w| w[0].at < w[1].at));
        merge.finish(&mut ready);
        assert_eq!(ready.len(), 5_002);
        assert_eq!(ready[5_001].step, 2);
    }

    #[test]
    fn a_read_after_a_point_or_a_step_leaves_out_what_came_before() {
        let point = ScalarPoint {
            step: 3,
            at: at(10),
            value: 0.5,
        };
        let same_step_later = ScalarPoint {
            at: at(11),
            ..point
        };
        assert!(!After::Point(point).admits(&point));
        assert!(After::Point(point).admits(&same_step_later));
        assert!(!After::Step(3).admits(&same_step_later));
        assert_eq!(After::Step(3).lowest_step(), 4);
        assert_eq!(After::Point(point).lowest_step(), 3);
        assert_eq!(After::Step(i64::MAX).lowest_step(), i64::MAX);
    }
}
