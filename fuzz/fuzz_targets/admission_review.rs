//! AdmissionReview decoding and review: any body the API server (or anyone reaching the
//! webhook port) posts to any `/validate/<kind>`. A review it answers carries the request's
//! uid back.
#![no_main]

use kthena_api::gateway::apis::standard::gateways::Gateway;
use kthena_api::modelroute::ModelRoute;
use kthena_webhook::{Cluster, Endpoint, Options, answer};
use libfuzzer_sys::fuzz_target;

struct Empty;

#[derive(serde::Deserialize)]
struct Sent {
    request: SentRequest,
}

#[derive(serde::Deserialize)]
struct SentRequest {
    uid: String,
}

impl Cluster for Empty {
    fn model_routes(&self) -> Vec<ModelRoute> {
        Vec::new()
    }
    fn gateways(&self) -> Vec<Gateway> {
        Vec::new()
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let endpoint = Endpoint::ALL[usize::from(which) % Endpoint::ALL.len()];
    let options = Options {
        allow_duplicate_model_names: which & 0x80 != 0,
        gateway_mode: which & 0x40 != 0,
    };
    if let Ok(review) = answer(endpoint, body, &Empty, options) {
        // Read as the answer read it: typed, members it does not know skipped unread.
        let sent: Sent = serde_json::from_slice(body).expect("it was read");
        let uid = review.response.expect("an answer").uid;
        assert_eq!(sent.request.uid, uid);
    }
});
