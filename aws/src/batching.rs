//! Splitting a batch into the chunks an AWS batch API accepts.
//!
//! SQS `SendMessageBatch` and EventBridge `PutEvents` both cap a call at ten
//! entries and at a total payload size; a chunk closes when either would be
//! exceeded.

/// Splits `items` into runs of at most `max_count` items whose `size` sum stays
/// within `max_bytes`. An item larger than `max_bytes` gets a chunk of its own
/// (the service rejects it, and says so for that entry alone).
pub(crate) fn chunks<T>(items: &[T], max_count: usize, max_bytes: usize, size: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, item) in items.iter().enumerate() {
        let n = size(item);
        let count = i - start;
        if count > 0 && (count == max_count || bytes + n > max_bytes) {
            out.push(&items[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += n;
    }
    if start < items.len() {
        out.push(&items[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::chunks;

    #[test]
    fn closes_a_chunk_at_the_count_limit() {
        let items: Vec<usize> = vec![1; 23];
        let sizes: Vec<usize> = chunks(&items, 10, 1000, |n| *n).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![10, 10, 3]);
    }

    #[test]
    fn closes_a_chunk_before_the_size_limit() {
        let items = vec![40, 40, 30, 10, 100, 5];
        let got: Vec<Vec<usize>> = chunks(&items, 10, 100, |n| *n).iter().map(|c| c.to_vec()).collect();
        assert_eq!(got, vec![vec![40, 40], vec![30, 10], vec![100], vec![5]]);
    }

    #[test]
    fn an_oversized_item_stands_alone_and_nothing_is_lost() {
        let items = vec![5, 500, 5];
        let got: Vec<Vec<usize>> = chunks(&items, 10, 100, |n| *n).iter().map(|c| c.to_vec()).collect();
        assert_eq!(got, vec![vec![5], vec![500], vec![5]]);
        assert!(chunks(&Vec::<usize>::new(), 10, 100, |n| *n).is_empty());
    }
}
