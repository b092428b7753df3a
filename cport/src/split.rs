//! Splitting a total (workers, connections, a concurrency value) over `--ports` ports.

/// `total` split into `parts` shares as equal as possible, the first ones taking the
/// remainder: share `i` of `parts` (`parts` > 0). The shares add up to `total`.
pub fn share(total: usize, parts: usize, i: usize) -> usize {
    total / parts + usize::from(i < total % parts)
}

#[cfg(test)]
mod tests {
    use super::share;

    #[test]
    fn shares_add_up_and_differ_by_at_most_one() {
        for total in 0..40 {
            for parts in 1..9 {
                let shares: Vec<usize> = (0..parts).map(|i| share(total, parts, i)).collect();
                assert_eq!(shares.iter().sum::<usize>(), total, "{total} over {parts}: {shares:?}");
                let (lo, hi) = (shares.iter().min().unwrap(), shares.iter().max().unwrap());
                assert!(hi - lo <= 1, "{total} over {parts}: {shares:?}");
                assert!(shares.windows(2).all(|w| w[0] >= w[1]), "the first take the extra: {shares:?}");
            }
        }
    }
}
