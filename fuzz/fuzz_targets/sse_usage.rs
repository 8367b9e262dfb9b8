//! The SSE usage filter and the JSON usage capture: any bytes an engine sends, cut into chunks
//! anywhere. Without hiding, the filter passes every byte on unchanged and in order; hiding
//! usage chunks only ever removes bytes. Neither holds back more than its event limit. The
//! JSON capture reads the same usage however the body is cut.
#![no_main]

use bytes::Bytes;
use kthena_dataplane::usage::{JsonCapture, MAX_USAGE_SCAN_BYTES, SseFilter, from_json};
use libfuzzer_sys::fuzz_target;

/// `body` cut into chunks of 1..=64 bytes, the lengths drawn from `seed`.
fn chunks(body: &[u8], mut seed: u64) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < body.len() {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let len = 1 + (seed >> 58) as usize;
        let end = (at + len).min(body.len());
        out.push(Bytes::copy_from_slice(&body[at..end]));
        at = end;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let pieces = chunks(body, u64::from(first) * 0x9e37_79b9_7f4a_7c15 + 1);

    // A small event limit, so that oversized events (passed on unread) are fuzzed too.
    let limit = 16 + usize::from(first >> 2);
    let mut plain = SseFilter::with_event_limit(false, limit);
    let mut passed = Vec::with_capacity(body.len());
    for c in &pieces {
        passed.extend_from_slice(&plain.push(c.clone()));
        assert!(plain.held() <= limit, "held past the limit");
    }
    passed.extend_from_slice(&plain.finish());
    assert_eq!(
        passed, body,
        "the filter changed a stream it had nothing to hide in"
    );

    let mut hiding = SseFilter::with_event_limit(true, limit);
    let mut kept = 0;
    for c in &pieces {
        kept += hiding.push(c.clone()).len();
    }
    kept += hiding.finish().len();
    assert!(kept <= body.len());

    let mut capture = JsonCapture::default();
    for c in &pieces {
        capture.push(c);
    }
    let whole = from_json(body);
    match capture.usage() {
        Some(u) => assert_eq!(Some(u), whole),
        // Only a body too large to keep has no usage read whole.
        None => assert!(whole.is_none() || body.len() > MAX_USAGE_SCAN_BYTES),
    }
});
