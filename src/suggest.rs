//! "Did you mean …": the closest known name to a misspelt one, for error hints.

/// The candidate closest to `input`, if one is close enough to be a plausible typo.
pub fn did_you_mean<'a, I>(input: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let input_lower = input.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&input_lower, &c.to_lowercase()), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn finds_a_close_name_and_ignores_far_ones() {
        let names = ["orders:release-stale", "outbox:process", "model:prune"];
        assert_eq!(
            did_you_mean("orders:release-stail", names),
            Some("orders:release-stale")
        );
        assert_eq!(did_you_mean("outbox:proces", names), Some("outbox:process"));
        assert_eq!(did_you_mean("something-else-entirely", names), None);
    }
}
