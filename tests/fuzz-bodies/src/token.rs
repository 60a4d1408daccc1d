//! The `token` target.

use arbitrary::Unstructured;
use authsync_core::{Client, Config, Now, Step, Token, unverified_expiry};
use serde_json::json;

/// Any token and identifier: the shape check (T1), the unverified `exp` reader (R1),
/// and `handle_authentication_details` on a client with pending data.
///
/// # Panics
/// When a refused token changes the state or produces an action, when an accepted
/// token breaks its shape rules, or when an output shows it whole.
pub fn token(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let token: String = input.arbitrary().unwrap_or_default();
    let identifier: String = input.arbitrary().unwrap_or_default();
    let _ = unverified_expiry(&token);

    if let Ok(parsed) = Token::parse(&token) {
        assert!(token.len() <= authsync_core::MAX_TOKEN_BYTES);
        assert!(token.bytes().all(|b| b.is_ascii_graphic()));
        assert_eq!(token.split('.').count(), 3);
        assert_eq!(
            parsed.unverified_expiry(),
            unverified_expiry(&token).ok().flatten()
        );
        let prefix: String = token.chars().take(8).collect();
        assert_eq!(
            format!("{parsed:?}"),
            format!("Token({prefix}…)"),
            "Debug renders more than the prefix"
        );
        assert_eq!(
            format!("{parsed}"),
            format!("{prefix}…"),
            "Display renders more than the prefix"
        );
    }

    let now = Now::new(1, 1_700_000_000_000);
    let config = Config::new("fuzz", "http://127.0.0.1:9")
        .with_jwt(true)
        .with_seed(1);
    let Ok(mut client) = Client::new(config, now) else {
        return;
    };
    let _ = client.handle_identify(now, "alice");
    let _ = client.handle_track(now, "e", &json!({}));
    client.handle_flush(now);
    while client.poll_event().is_some() {}
    while client.poll_step().is_some() {}
    let lsn = client.lsn();
    match client.handle_authentication_details(now, &token, &identifier) {
        Err(refused) => {
            assert_eq!(client.lsn(), lsn, "a refused token stored something");
            assert!(!client.has_output(), "a refused token produced an output");
            // Messages are fixed texts with numbers; a token long enough cannot be a
            // piece of one by chance.
            if token.len() > 80 {
                assert!(
                    !refused.to_string().contains(&token),
                    "an error shows the token"
                );
            }
        }
        Ok(_) => {
            while let Some(event) = client.poll_event() {
                // Events render fixed text and the identifier as they are; a long token
                // cannot be part of them by chance.
                if token.len() > 40 && !identifier.contains(&token) {
                    assert!(
                        !format!("{event:?}").contains(&token),
                        "an event's Debug shows the token"
                    );
                }
            }
            while let Some(action) = client.poll_step() {
                if token.len() > 40 && !identifier.contains(&token) {
                    assert!(
                        !format!("{action:?}").contains(&token),
                        "a step's Debug shows the token"
                    );
                }
                if let Step::Send(request) = action {
                    let bearer = request
                        .headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok());
                    assert_eq!(bearer, Some(format!("Bearer {token}").as_str()));
                    assert_eq!(
                        identifier, "alice",
                        "a token for another identifier was used for alice"
                    );
                }
            }
        }
    }
}
