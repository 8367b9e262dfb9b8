//! The mock's tokenizer and prefix-cache block hashes: deterministic approximations that keep
//! the property the router relies on, a common text prefix gives a common token prefix and so
//! common leading blocks.
//!
//! Text is split into tokens of 4 bytes (the last one shorter); a completion prompt given as
//! token ids keeps its ids. A chat request is first rendered with a simple template,
//! `<|role|>\ncontent\n` per message. A full block of `block_size` tokens is identified by a
//! chained hash: FNV-1a of the previous block's hash (or of the model seed) and the block's
//! tokens, so equal hashes mean equal prefixes.

use serde_json::Value;

/// One token. Text tokens pack their (up to 4) bytes and length; token ids given by the
/// client live in their own range so they never equal a text token.
pub type Token = u64;

/// Identifies a full block of tokens together with every token before it.
pub type BlockHash = u64;

/// Bytes per text token.
pub const BYTES_PER_TOKEN: usize = 4;

/// The token of a prompt that has no text at all (vLLM's tokenizers add a BOS token, so an
/// empty prompt still has one).
pub const BOS: Token = 1 << 41;

/// Tag of token ids given by the client (`prompt: [1, 2, 3]`).
const ID_TAG: Token = 1 << 40;

/// Appends the tokens of `text`: its bytes in chunks of 4, the last one shorter.
pub fn push_text(text: &str, out: &mut Vec<Token>) {
    out.extend(text.as_bytes().chunks(BYTES_PER_TOKEN).map(|chunk| {
        let packed = chunk
            .iter()
            .rev()
            .fold(0u64, |acc, &byte| (acc << 8) | u64::from(byte));
        ((chunk.len() as u64) << 32) | packed
    }));
}

/// The tokens of `text` alone.
pub fn text_tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::with_capacity(text.len().div_ceil(BYTES_PER_TOKEN));
    push_text(text, &mut out);
    out
}

/// The prompt tokens of a `/v1/completions` request: a string, a list of strings (their
/// tokens one after the other), token ids or lists of token ids; [`BOS`] alone when empty.
pub fn completion_prompt(prompt: &Value) -> Vec<Token> {
    fn walk(value: &Value, out: &mut Vec<Token>) {
        match value {
            Value::String(text) => push_text(text, out),
            Value::Number(id) => out.push(ID_TAG | (id.as_u64().unwrap_or(0) & 0xFFFF_FFFF)),
            Value::Array(items) => items.iter().for_each(|item| walk(item, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(prompt, &mut out);
    non_empty(out)
}

/// The chat template: `<|role|>\ncontent\n` per message, where content is the string or the
/// concatenated `text` of its `{"type":"text","text":…}` parts (other parts add nothing) and
/// a message without `role` counts as `user`.
pub fn render_chat(messages: &[Value]) -> String {
    let mut out = String::new();
    for message in messages {
        let role = message
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or("user");
        out.push_str("<|");
        out.push_str(role);
        out.push_str("|>\n");
        match message.get("content") {
            Some(Value::String(text)) => out.push_str(text),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|part| part.get("text").and_then(Value::as_str))
                .for_each(|text| out.push_str(text)),
            _ => {}
        }
        out.push('\n');
    }
    out
}

/// The prompt tokens of a `/v1/chat/completions` request: its [`render_chat`] text in 4-byte
/// tokens; [`BOS`] alone when there is no message.
pub fn chat_prompt(messages: &[Value]) -> Vec<Token> {
    non_empty(text_tokens(&render_chat(messages)))
}

fn non_empty(mut tokens: Vec<Token>) -> Vec<Token> {
    if tokens.is_empty() {
        tokens.push(BOS);
    }
    tokens
}

/// The seed of a model's hash chain: requests to different LoRA adapters never share blocks
/// (vLLM puts the adapter in the block hash), while every served name of the base model does.
pub fn model_seed(adapter: Option<(&str, &str)>) -> BlockHash {
    let mut hash = Fnv::new();
    if let Some((name, path)) = adapter {
        hash.bytes(name.as_bytes());
        hash.bytes(&[0]);
        hash.bytes(path.as_bytes());
    }
    hash.finish()
}

/// The chained hashes of every full block of `tokens` (a shorter tail has none).
pub fn block_hashes(seed: BlockHash, tokens: &[Token], block_size: usize) -> Vec<BlockHash> {
    let mut parent = seed;
    tokens
        .chunks_exact(block_size.max(1))
        .map(|block| {
            let mut hash = Fnv::new();
            hash.bytes(&parent.to_le_bytes());
            for token in block {
                hash.bytes(&token.to_le_bytes());
            }
            parent = hash.finish();
            parent
        })
        .collect()
}

/// 64-bit FNV-1a: tiny, stable across runs and platforms.
#[derive(Debug)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn text_is_four_bytes_per_token_with_a_shorter_last_one() {
        let cases = [
            ("", 0),
            ("a", 1),
            ("abcd", 1),
            ("abcde", 2),
            ("Hello world!", 3),
            ("héllo", 2), // 6 bytes
        ];
        for (text, want) in cases {
            assert_eq!(text_tokens(text).len(), want, "{text:?}");
        }
        assert_ne!(text_tokens("ab"), text_tokens("ab\0"));
        assert_ne!(text_tokens("abcd"), text_tokens("dcba"));
    }

    #[test]
    fn completion_prompt_shapes() {
        let cases = [
            (json!("Hello world!"), 3),
            (json!(["abcd", "efgh"]), 2),
            (json!(["ab", "cd"]), 2), // each string is split on its own
            (json!([1, 2, 3]), 3),
            (json!([[1, 2], [3]]), 3),
            (json!(""), 1),
            (json!([]), 1),
        ];
        for (prompt, want) in cases {
            assert_eq!(completion_prompt(&prompt).len(), want, "{prompt}");
        }
        assert_eq!(completion_prompt(&json!("")), [BOS]);
        assert_ne!(
            completion_prompt(&json!([1])),
            completion_prompt(&json!("\u{1}"))
        );
    }

    #[test]
    fn chat_template_renders_role_and_text_parts() {
        let messages = [
            json!({"role": "system", "content": "be brief"}),
            json!({"role": "user", "content": [{"type": "text", "text": "fgh"},
                {"type": "image_url"}, {"type": "text", "text": "ij"}]}),
            json!({"content": "no role"}),
        ];
        assert_eq!(
            render_chat(&messages),
            "<|system|>\nbe brief\n<|user|>\nfghij\n<|user|>\nno role\n"
        );
        // "<|user|>\nHello there!\n" is 22 bytes: 6 tokens.
        let hello = [json!({"role": "user", "content": "Hello there!"})];
        assert_eq!(chat_prompt(&hello).len(), 6);
        assert_eq!(chat_prompt(&[]), [BOS]);
    }

    #[test]
    fn common_text_prefix_gives_common_leading_blocks() {
        let seed = model_seed(None);
        let a = block_hashes(seed, &text_tokens(&"x".repeat(200)), 16);
        let b = block_hashes(seed, &text_tokens(&format!("{}y", "x".repeat(150))), 16);
        assert_eq!(a.len(), 3, "50 tokens: 3 full blocks of 16");
        assert_eq!(b.len(), 2, "38 tokens: 2 full blocks");
        assert_eq!(a[..2], b[..2]);

        // Same block content after a different prefix: a different hash (chained).
        let c = block_hashes(
            seed,
            &text_tokens(&format!("{}{}", "z".repeat(64), "x".repeat(64))),
            16,
        );
        assert_ne!(c[1], a[1]);
        assert_ne!(
            block_hashes(seed, &[1, 2], 1)[1],
            block_hashes(seed, &[3, 2], 1)[1]
        );
    }

    #[test]
    fn adapters_seed_their_own_chains_and_hashes_are_stable() {
        let tokens = text_tokens("abcdefgh");
        let base = block_hashes(model_seed(None), &tokens, 2);
        let lora = block_hashes(model_seed(Some(("a", "/a"))), &tokens, 2);
        assert_eq!(base.len(), 1);
        assert_ne!(base, lora);
        assert_eq!(base, block_hashes(model_seed(None), &tokens, 2));
        // FNV-1a of nothing is its offset basis: the seed of the base model never changes.
        assert_eq!(model_seed(None), 0xcbf2_9ce4_8422_2325);
    }
}
