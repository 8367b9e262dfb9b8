//! Manifest decoding: any text in the manifest folder or given to `validate -f`. Every
//! object it reads is converted as the router converts it; nothing may panic, and deep or
//! aliased YAML must stay bounded (libFuzzer's timeout and memory limit catch a blow-up).
#![no_main]

use kthena_api::convert;
use kthena_api::manifest::{Object, parse_str};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(objects) = parse_str(text, "fuzz.yaml") else {
        return;
    };
    for o in &objects {
        match o {
            Object::ModelRoute(r) => drop(convert::model_route(r)),
            Object::ModelServer(s) => drop(convert::model_server(s)),
            Object::HttpRoute(r) => drop(convert::http_route::http_route(r)),
            _ => {}
        }
    }
});
