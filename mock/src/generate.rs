//! What the mock "generates": a fixed sentence split into word tokens, and a prompt-size
//! estimate, both deterministic so tests can predict text and usage exactly.

use serde_json::Value;

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

/// Estimated tokens of a chat request: the characters of every message's text content
/// (string content or `{"type":"text","text":…}` parts), divided by four, rounded up, at
/// least one. Non-text parts count nothing.
pub fn chat_prompt_tokens(messages: &[Value]) -> u64 {
    let chars: usize = messages
        .iter()
        .map(|message| match message.get("content") {
            Some(Value::String(text)) => text.chars().count(),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|part| part.get("text").and_then(Value::as_str))
                .map(|text| text.chars().count())
                .sum(),
            _ => 0,
        })
        .sum();
    estimate(chars, 0)
}

/// Estimated tokens of a completion prompt: characters of text prompts divided by four,
/// rounded up, plus one per token id when the prompt is given as ids; at least one.
pub fn completion_prompt_tokens(prompt: &Value) -> u64 {
    let (chars, ids) = prompt_size(prompt);
    estimate(chars, ids)
}

/// (characters of text, number of token ids) in a prompt value of any accepted shape.
fn prompt_size(prompt: &Value) -> (usize, u64) {
    match prompt {
        Value::String(text) => (text.chars().count(), 0),
        Value::Number(_) => (0, 1),
        Value::Array(items) => items
            .iter()
            .map(prompt_size)
            .fold((0, 0), |(c, i), (dc, di)| (c + dc, i + di)),
        _ => (0, 0),
    }
}

fn estimate(chars: usize, ids: u64) -> u64 {
    let from_chars = u64::try_from(chars.div_ceil(4)).unwrap_or(u64::MAX);
    from_chars.saturating_add(ids).max(1)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

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

    #[test]
    fn chat_prompt_is_quarter_of_characters_rounded_up() {
        let messages = [
            json!({"role": "system", "content": "abcde"}),
            json!({"role": "user", "content": [{"type": "text", "text": "fgh"}, {"type": "image_url"}]}),
        ];
        assert_eq!(chat_prompt_tokens(&messages), 2);
        assert_eq!(chat_prompt_tokens(&[]), 1);
    }

    #[test]
    fn completion_prompt_counts_text_and_token_ids() {
        assert_eq!(completion_prompt_tokens(&json!("Hello world!")), 3);
        assert_eq!(completion_prompt_tokens(&json!(["abcd", "efgh"])), 2);
        assert_eq!(completion_prompt_tokens(&json!([1, 2, 3])), 3);
        assert_eq!(completion_prompt_tokens(&json!([[1, 2], [3]])), 3);
        assert_eq!(completion_prompt_tokens(&json!("")), 1);
    }
}
