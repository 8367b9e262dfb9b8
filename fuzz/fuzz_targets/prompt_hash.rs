//! The scheduler's prompt hashing: any prompt, block size and block limit. As many hashes as
//! blocks (up to the limit); a prompt cut at a block boundary hashes to a prefix of the
//! whole's hashes; another model shares none of them.
#![no_main]

use kthena_core::scheduler::RequestContext;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&[size, limit], prompt)) = data.split_first_chunk::<2>().map(|(h, p)| (h, p)) else {
        return;
    };
    let block = usize::from(size) + 1;
    let max = usize::from(limit) + 1;
    let whole = RequestContext::new("m", "m", prompt);
    let hashes = whole.block_hashes(block, max);
    assert_eq!(hashes.len(), prompt.len().div_ceil(block).min(max));
    for k in 0..hashes.len() {
        let cut = &prompt[..((k + 1) * block).min(prompt.len())];
        let part = RequestContext::new("m", "m", cut);
        assert_eq!(part.block_hashes(block, max), &hashes[..=k]);
    }
    let other = RequestContext::new("m", "other", prompt);
    let theirs = other.block_hashes(block, max);
    assert!(hashes.iter().zip(theirs).all(|(a, b)| a != b));
});
