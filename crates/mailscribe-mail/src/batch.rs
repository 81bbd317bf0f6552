//! Planning batches and writing UID sets: pure functions.

/// What the queue listing tells about one message before fetching it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageSummary {
    pub uid: u32,
    pub size: u64,
    /// When the server received it: how long the queue has waited.
    pub internal_date: Option<chrono::DateTime<chrono::Utc>>,
}

/// Splits the listing into batches of at most `max_count` UIDs and at most
/// `max_bytes` (by RFC822.SIZE). A message larger than `max_bytes` goes in a
/// batch of its own. Order is kept.
pub fn plan_batches(
    messages: &[MessageSummary],
    max_count: usize,
    max_bytes: u64,
) -> Vec<Vec<MessageSummary>> {
    let max_count = max_count.max(1);
    let mut batches = Vec::new();
    let mut current: Vec<MessageSummary> = Vec::new();
    let mut current_bytes = 0u64;
    for message in messages {
        let would_overflow = !current.is_empty()
            && (current.len() >= max_count
                || current_bytes.saturating_add(message.size) > max_bytes);
        if would_overflow {
            batches.push(std::mem::take(&mut current));
            current_bytes = 0;
        }
        current.push(*message);
        current_bytes = current_bytes.saturating_add(message.size);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// An IMAP sequence set for `uids` (RFC 3501 section 9, `sequence-set`),
/// with runs collapsed: `1:3,7,9:10`.
pub fn uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut iter = sorted.into_iter().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}:{end}")
        });
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(batches: &[Vec<MessageSummary>]) -> Vec<Vec<u32>> {
        batches
            .iter()
            .map(|b| b.iter().map(|m| m.uid).collect())
            .collect()
    }

    #[test]
    fn batches_cut_by_count_and_bytes() {
        let m = |uid, size| MessageSummary {
            uid,
            size,
            internal_date: None,
        };
        // (listing, batch size, byte limit, expected batches as UIDs)
        type Case = (Vec<MessageSummary>, usize, u64, Vec<Vec<u32>>);
        let cases: Vec<Case> = vec![
            (vec![], 100, 1000, vec![]),
            (
                vec![m(1, 10), m(2, 10), m(3, 10)],
                2,
                1000,
                vec![vec![1, 2], vec![3]],
            ),
            (
                vec![m(1, 600), m(2, 600), m(3, 100)],
                100,
                1000,
                vec![vec![1], vec![2, 3]],
            ),
            // A message larger than the byte limit goes alone.
            (
                vec![m(1, 10), m(2, 5000), m(3, 10)],
                100,
                1000,
                vec![vec![1], vec![2], vec![3]],
            ),
            (vec![m(1, 10)], 0, 1000, vec![vec![1]]),
        ];
        for (messages, count, bytes, expected) in cases {
            assert_eq!(sizes(&plan_batches(&messages, count, bytes)), expected);
        }
    }

    #[test]
    fn uid_sets_collapse_runs() {
        assert_eq!(uid_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_set(&[3, 1, 2, 2]), "1:3");
        assert_eq!(uid_set(&[]), "");
    }
}
