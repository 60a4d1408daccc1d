//! The `response` target.

use arbitrary::Unstructured;
use authsync_core::{Client, Config, Now, Step, TransportFailure};
use bytes::Bytes;
use serde_json::json;

/// Up to eight answers, each any status, headers and body (or a transport failure),
/// to whatever request is in flight, with time passing between them.
///
/// # Panics
/// When the totals stop adding up, an answer is refused although its request is in
/// flight, or more than one request is in flight.
pub fn response(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let mut now = Now::new(1, 1_700_000_000_000);
    let jwt = input.arbitrary().unwrap_or(true);
    let config = Config::new("fuzz", "http://127.0.0.1:9")
        .with_jwt(jwt)
        .with_batch_limits(3, 4096)
        .with_max_auth_failures(3)
        .with_seed(2);
    let Ok(mut client) = Client::new(config, now) else {
        return;
    };
    let _ = client.handle_identify(now, "alice");
    let token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTcwMDAwMDYwMH0.c2ln";
    let _ = client.handle_authentication_details(now, token, "alice");
    for i in 0..7 {
        let _ = client.handle_track(now, "e", &json!({ "i": i }));
    }
    client.handle_flush(now);
    let mut in_flight = drain(&mut client);
    for _ in 0..8 {
        if input.is_empty() {
            break;
        }
        if let Some(id) = in_flight.take() {
            let answered = if input.arbitrary().unwrap_or(false) {
                let kind = match input.int_in_range(0..=2u8).unwrap_or(0) {
                    0 => TransportFailure::Connect,
                    1 => TransportFailure::Timeout,
                    _ => TransportFailure::Reset,
                };
                client.handle_transport_failure(now, id, kind)
            } else {
                let status = input.int_in_range(100..=599u16).unwrap_or(200);
                let mut builder = http::Response::builder().status(status);
                for _ in 0..input.int_in_range(0..=3u8).unwrap_or(0) {
                    let name = ["retry-after", "content-type", "x-any"]
                        [input.int_in_range(0..=2usize).unwrap_or(0)];
                    let value: Vec<u8> = input.arbitrary().unwrap_or_default();
                    if let Ok(value) = http::HeaderValue::from_bytes(&value) {
                        builder = builder.header(name, value);
                    }
                }
                let body: Vec<u8> = input.arbitrary().unwrap_or_default();
                let Ok(response) = builder.body(Bytes::from(body)) else {
                    continue;
                };
                client.handle_response(now, id, response)
            };
            assert!(
                answered.is_ok(),
                "an answer to the request in flight was refused"
            );
        }
        now = now.plus_ms(u64::from(input.arbitrary::<u32>().unwrap_or(0)));
        client.handle_timeout(now);
        if input.arbitrary().unwrap_or(false) {
            client.handle_session_start(now);
        }
        in_flight = drain(&mut client);
        let totals = client.totals();
        assert_eq!(
            totals.tracked,
            totals.acked + totals.dropped + totals.pending(),
            "conservation"
        );
    }
}

/// Drains the outputs; the request now in flight, if any.
fn drain(client: &mut Client) -> Option<authsync_core::RequestId> {
    let mut sent = None;
    while client.poll_event().is_some() {}
    while let Some(step) = client.poll_step() {
        if let Step::Send(request) = step {
            assert!(sent.is_none(), "two requests in flight");
            sent = Some(request.id);
        }
    }
    if sent.is_none() && client.outlook().in_flight {
        // The request in flight was sent earlier and is still unanswered: nothing to do.
        return None;
    }
    sent
}
