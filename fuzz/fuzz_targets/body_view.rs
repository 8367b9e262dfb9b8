//! The OpenAI body view: any bytes a client sends. A body it accepts is rewritten as the
//! router sends it upstream (another model, usage asked for); the result must be JSON that
//! reads back with the new model and usage, every other top-level member byte for byte the
//! same, and the prompt span must be JSON the body holds. (The view does not read members it
//! skips: invalid UTF-8 or an out-of-range number inside one passes through as it came, for
//! the engine to judge.) (The view does not read members it
//! skips: invalid UTF-8 or an out-of-range number inside one passes through as it came, as
//! engines then judge it.)
#![no_main]

use std::collections::BTreeMap;

use bytes::Bytes;
use kthena_dataplane::body::BodyView;
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;

const MODEL: &str = "fuzz/\"model\"\n";

/// Top-level members, raw (the last of a repeated key, as serde keeps it); `None` when a
/// member the view skips is not valid JSON text (invalid UTF-8 or escapes inside it: the view
/// does not read what it skips, and forwards it as it came).
fn members(body: &[u8]) -> Option<BTreeMap<String, String>> {
    let map: BTreeMap<String, &RawValue> = serde_json::from_slice(body).ok()?;
    Some(
        map.into_iter()
            .map(|(k, v)| (k, v.get().to_owned()))
            .collect(),
    )
}

fuzz_target!(|data: &[u8]| {
    let Ok(view) = BodyView::parse(data) else {
        return;
    };
    assert!(!view.model.is_empty());
    let prompt = view.prompt(data);
    if !prompt.is_empty() {
        serde_json::from_slice::<serde::de::IgnoredAny>(prompt).expect("the prompt is JSON");
    }
    let body = Bytes::copy_from_slice(data);
    assert_eq!(view.rewrite(&body, None, false), body, "nothing to change");
    let out = view.rewrite(&body, Some(MODEL), true);
    let again = BodyView::parse(&out).unwrap_or_else(|e| {
        panic!(
            "the rewritten body does not read: {e}\n{}",
            String::from_utf8_lossy(&out)
        )
    });
    assert_eq!(again.model, MODEL);
    assert!(again.include_usage);
    assert_eq!(again.stream, view.stream);
    if let Some(mut before) = members(data) {
        let mut after = members(&out).expect("the rewritten body reads as the original did");
        for key in ["model", "stream_options"] {
            before.remove(key);
            after.remove(key);
        }
        assert_eq!(
            before, after,
            "members other than model and stream_options changed"
        );
    }
});
