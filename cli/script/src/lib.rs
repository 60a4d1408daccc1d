//! The `authsync run` script: one JSON operation per line (SPEC.md section 5).
//!
//! Parsing only: a line is an [`Op`], nothing (a blank line), or a [`ScriptError`]
//! naming what is wrong. Never panics, whatever the bytes (the `script` fuzz target
//! holds it to that). A crate of its own so that the fuzz targets reach it without
//! the command's other dependencies.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Map, Value};
use std::fmt;

/// One script operation.
#[derive(Clone, PartialEq, Eq)]
pub enum Op {
    /// `{"op":"track","name":"...","attrs":{...}}` (`attrs` optional: `{}`).
    Track {
        /// Event name.
        name: String,
        /// Event attributes.
        attrs: Map<String, Value>,
    },
    /// `{"op":"identify","id":"..."}`.
    Identify {
        /// The user id.
        id: String,
    },
    /// `{"op":"token","token":"...","identifier":"..."}`.
    Token {
        /// The JWT.
        token: String,
        /// The user id it is for.
        identifier: String,
    },
    /// `{"op":"logout"}`.
    Logout,
    /// `{"op":"session_start"}`.
    SessionStart,
    /// `{"op":"flush"}`.
    Flush,
    /// `{"op":"wait","ms":N}`: sleep while the driver keeps running.
    Wait {
        /// Milliseconds.
        ms: u64,
    },
    /// `{"op":"settle","timeout_ms":N}`: wait until nothing more can be sent.
    Settle {
        /// Longest wait, in milliseconds.
        timeout_ms: u64,
    },
}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Track { name, attrs } => f
                .debug_struct("Track")
                .field("name", name)
                .field("attrs", attrs)
                .finish(),
            Self::Identify { id } => f.debug_struct("Identify").field("id", id).finish(),
            Self::Token { token, identifier } => {
                let prefix: String = token.chars().take(8).collect();
                f.debug_struct("Token")
                    .field("token", &format_args!("{prefix}…"))
                    .field("identifier", identifier)
                    .finish()
            }
            Self::Logout => f.write_str("Logout"),
            Self::SessionStart => f.write_str("SessionStart"),
            Self::Flush => f.write_str("Flush"),
            Self::Wait { ms } => f.debug_struct("Wait").field("ms", ms).finish(),
            Self::Settle { timeout_ms } => f
                .debug_struct("Settle")
                .field("timeout_ms", timeout_ms)
                .finish(),
        }
    }
}

/// What is wrong with a script line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScriptError {
    /// Not valid JSON.
    NotJson(String),
    /// Valid JSON, but not an object.
    NotAnObject,
    /// No `"op"` string.
    MissingOp,
    /// An `"op"` this version does not know.
    UnknownOp(String),
    /// A required field is missing.
    MissingField {
        /// The operation.
        op: &'static str,
        /// The field.
        field: &'static str,
    },
    /// A field has the wrong type.
    MistypedField {
        /// The operation.
        op: &'static str,
        /// The field.
        field: &'static str,
        /// What it should be.
        expected: &'static str,
    },
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotJson(why) => write!(f, "not valid JSON: {why}"),
            Self::NotAnObject => f.write_str("not a JSON object"),
            Self::MissingOp => f.write_str("no \"op\" string"),
            Self::UnknownOp(op) => write!(f, "unknown operation {op:?}"),
            Self::MissingField { op, field } => write!(f, "{op}: missing field {field:?}"),
            Self::MistypedField {
                op,
                field,
                expected,
            } => write!(f, "{op}: field {field:?} must be {expected}"),
        }
    }
}

impl std::error::Error for ScriptError {}

/// Parses one line; `Ok(None)` for a blank line, which is skipped.
///
/// ```
/// use authsync_script::{parse_line, Op, ScriptError};
/// assert_eq!(parse_line(r#"{"op":"wait","ms":5}"#), Ok(Some(Op::Wait { ms: 5 })));
/// assert_eq!(parse_line("   "), Ok(None));
/// assert_eq!(parse_line(r#"{"op":"jump"}"#), Err(ScriptError::UnknownOp("jump".into())));
/// ```
///
/// # Errors
/// [`ScriptError`] for a line that is not a known, well-formed operation.
pub fn parse_line(line: &str) -> Result<Option<Op>, ScriptError> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let value: Value =
        serde_json::from_str(line).map_err(|e| ScriptError::NotJson(e.to_string()))?;
    let Value::Object(fields) = value else {
        return Err(ScriptError::NotAnObject);
    };
    let Some(Value::String(op)) = fields.get("op") else {
        return Err(ScriptError::MissingOp);
    };
    let line = Line { fields: &fields };
    let op = match op.as_str() {
        "track" => Op::Track {
            name: line.string("track", "name")?,
            attrs: line.object_or_empty("track", "attrs")?,
        },
        "identify" => Op::Identify {
            id: line.string("identify", "id")?,
        },
        "token" => Op::Token {
            token: line.string("token", "token")?,
            identifier: line.string("token", "identifier")?,
        },
        "logout" => Op::Logout,
        "session_start" => Op::SessionStart,
        "flush" => Op::Flush,
        "wait" => Op::Wait {
            ms: line.count("wait", "ms")?,
        },
        "settle" => Op::Settle {
            timeout_ms: line.count("settle", "timeout_ms")?,
        },
        other => return Err(ScriptError::UnknownOp(other.to_owned())),
    };
    Ok(Some(op))
}

struct Line<'a> {
    fields: &'a Map<String, Value>,
}

impl Line<'_> {
    fn string(&self, op: &'static str, field: &'static str) -> Result<String, ScriptError> {
        match self.fields.get(field) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(ScriptError::MistypedField {
                op,
                field,
                expected: "a string",
            }),
            None => Err(ScriptError::MissingField { op, field }),
        }
    }

    fn count(&self, op: &'static str, field: &'static str) -> Result<u64, ScriptError> {
        match self.fields.get(field) {
            Some(value) => value.as_u64().ok_or(ScriptError::MistypedField {
                op,
                field,
                expected: "a non-negative integer",
            }),
            None => Err(ScriptError::MissingField { op, field }),
        }
    }

    fn object_or_empty(
        &self,
        op: &'static str,
        field: &'static str,
    ) -> Result<Map<String, Value>, ScriptError> {
        match self.fields.get(field) {
            Some(Value::Object(map)) => Ok(map.clone()),
            Some(_) => Err(ScriptError::MistypedField {
                op,
                field,
                expected: "an object",
            }),
            None => Ok(Map::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_operation_of_section_5_parses() {
        let cases = [
            (
                r#"{"op":"track","name":"a","attrs":{"k":1}}"#,
                Op::Track {
                    name: "a".into(),
                    attrs: json!({"k":1}).as_object().unwrap().clone(),
                },
            ),
            (
                r#"{"op":"track","name":"a"}"#,
                Op::Track {
                    name: "a".into(),
                    attrs: Map::new(),
                },
            ),
            (
                r#"{"op":"identify","id":"u"}"#,
                Op::Identify { id: "u".into() },
            ),
            (
                r#"{"op":"token","token":"t","identifier":"u"}"#,
                Op::Token {
                    token: "t".into(),
                    identifier: "u".into(),
                },
            ),
            (r#"{"op":"logout"}"#, Op::Logout),
            (r#"{"op":"session_start"}"#, Op::SessionStart),
            (r#"{"op":"flush"}"#, Op::Flush),
            (r#"{"op":"wait","ms":0}"#, Op::Wait { ms: 0 }),
            (
                r#"{"op":"settle","timeout_ms":1500}"#,
                Op::Settle { timeout_ms: 1500 },
            ),
        ];
        for (line, op) in cases {
            assert_eq!(parse_line(line), Ok(Some(op)), "{line}");
        }
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        let cases = [
            ("{", "not valid JSON"),
            ("[1]", "not a JSON object"),
            (r#"{"name":"a"}"#, "no \"op\" string"),
            (r#"{"op":3}"#, "no \"op\" string"),
            (r#"{"op":"fly"}"#, "unknown operation \"fly\""),
            (r#"{"op":"track"}"#, "track: missing field \"name\""),
            (
                r#"{"op":"track","name":5}"#,
                "track: field \"name\" must be a string",
            ),
            (
                r#"{"op":"track","name":"a","attrs":[1]}"#,
                "track: field \"attrs\" must be an object",
            ),
            (r#"{"op":"identify"}"#, "identify: missing field \"id\""),
            (
                r#"{"op":"token","token":"t"}"#,
                "token: missing field \"identifier\"",
            ),
            (
                r#"{"op":"wait","ms":-1}"#,
                "wait: field \"ms\" must be a non-negative integer",
            ),
            (
                r#"{"op":"wait","ms":1.5}"#,
                "wait: field \"ms\" must be a non-negative integer",
            ),
            (r#"{"op":"settle"}"#, "settle: missing field \"timeout_ms\""),
        ];
        for (line, message) in cases {
            let error = parse_line(line).unwrap_err();
            assert!(error.to_string().starts_with(message), "{line}: {error}");
        }
    }

    #[test]
    fn a_token_line_never_prints_the_token() {
        let op = parse_line(
            r#"{"op":"token","token":"eyJhbGciOi.secret-payload.sig","identifier":"u"}"#,
        )
        .unwrap()
        .unwrap();
        assert!(!format!("{op:?}").contains("secret-payload"));
    }
}
