//! What the mock "generates": a fixed sentence split into word tokens, deterministic so tests
//! can predict text and usage exactly (prompt tokens are counted by [`crate::tokens`]).

/// The tokens of the answer for `model`: the words of `This is simulated message from
/// <model>!`, every word after the first with its leading space, repeated from the start when
/// `count` exceeds the number of words and cut when it is smaller. Concatenated they are the
/// answer text; their number is `completion_tokens`.
pub fn answer_tokens(model: &str, count: usize) -> Vec<String> {
    let last = format!("{model}!");
    let words = ["This", "is", "simulated", "message", "from", last.as_str()];
    words
        .iter()
        .cycle()
        .take(count)
        .enumerate()
        .map(|(i, word)| {
            if i == 0 {
                (*word).to_owned()
            } else {
                format!(" {word}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_tokens_spell_the_whole_sentence() {
        let text: String = answer_tokens("m", 6).concat();
        assert_eq!(text, "This is simulated message from m!");
    }

    #[test]
    fn fewer_tokens_cut_and_more_tokens_repeat() {
        assert_eq!(answer_tokens("m", 2), ["This", " is"]);
        assert_eq!(
            answer_tokens("m", 8).concat(),
            "This is simulated message from m! This is"
        );
        assert!(answer_tokens("m", 0).is_empty());
    }
}
