//! The `authsync run` script: one JSON operation per line (the rules document's
//! `authsync run` section).
//!
//! Parsing only: a line is an [`Op`], nothing (a blank line), or a [`ScriptError`]
//! naming what is wrong. Never panics, whatever the bytes (the `script` fuzz target
//! holds it to that). A crate of its own so that the fuzz targets reach it without
//! the command's other dependencies.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The longest script line, in bytes, without its line end.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

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
    /// Longer than [`MAX_LINE_BYTES`].
    TooLong,
    /// Not valid JSON.
    NotJson(String),
    /// Valid JSON, but nested deeper than a script line may be.
    TooDeep,
    /// An object has the same key twice.
    DuplicateKey(String),
    /// The operation has no such field.
    UnknownField {
        /// The operation.
        op: &'static str,
        /// The field.
        field: String,
    },
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
            Self::TooLong => write!(f, "longer than {MAX_LINE_BYTES} bytes"),
            Self::NotJson(why) => write!(f, "not valid JSON: {why}"),
            Self::TooDeep => f.write_str(
                "valid JSON, but nested more than 128 levels deep, more than a script line may be",
            ),
            Self::DuplicateKey(key) => write!(f, "the key {key:?} appears twice in one object"),
            Self::UnknownField { op, field } => write!(f, "{op}: no field {field:?}"),
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
    if line.len() > MAX_LINE_BYTES {
        return Err(ScriptError::TooLong);
    }
    if line.trim().is_empty() {
        return Ok(None);
    }
    no_duplicate_keys(line)?;
    let value: Value = serde_json::from_str(line).map_err(json_error)?;
    let Value::Object(fields) = value else {
        return Err(ScriptError::NotAnObject);
    };
    let Some(Value::String(op)) = fields.get("op") else {
        return Err(ScriptError::MissingOp);
    };
    let name = known_op(op)?;
    if let Some(field) = fields
        .keys()
        .find(|key| *key != "op" && !fields_of(name).contains(&key.as_str()))
    {
        return Err(ScriptError::UnknownField {
            op: name,
            field: field.clone(),
        });
    }
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

/// The operation's name as a static string, if it is one of section 5's.
fn known_op(op: &str) -> Result<&'static str, ScriptError> {
    const OPS: [&str; 8] = [
        "track",
        "identify",
        "token",
        "logout",
        "session_start",
        "flush",
        "wait",
        "settle",
    ];
    OPS.into_iter()
        .find(|known| *known == op)
        .ok_or_else(|| ScriptError::UnknownOp(op.to_owned()))
}

/// The fields each operation has besides `op`.
fn fields_of(op: &str) -> &'static [&'static str] {
    match op {
        "track" => &["name", "attrs"],
        "identify" => &["id"],
        "token" => &["token", "identifier"],
        "wait" => &["ms"],
        "settle" => &["timeout_ms"],
        _ => &[],
    }
}

fn json_error(error: serde_json::Error) -> ScriptError {
    if error.to_string().starts_with("recursion limit exceeded") {
        ScriptError::TooDeep
    } else {
        ScriptError::NotJson(error.to_string())
    }
}

/// Refuses a line where an object, at any depth, has a key twice (JSON parsers keep
/// one of them silently, so the line would not mean what it says).
fn no_duplicate_keys(line: &str) -> Result<(), ScriptError> {
    let mut deserializer = serde_json::Deserializer::from_str(line);
    match Unique.deserialize(&mut deserializer) {
        Ok(()) => deserializer.end().map_err(json_error),
        Err(error) => match error.to_string().strip_prefix(DUPLICATE) {
            Some(rest) => Err(ScriptError::DuplicateKey(
                rest.split(" at line").next().unwrap_or(rest).to_owned(),
            )),
            None => Err(json_error(error)),
        },
    }
}

const DUPLICATE: &str = "duplicate key ";

/// Walks a JSON value, failing on a key seen twice in one object.
struct Unique;

impl<'de> DeserializeSeed<'de> for Unique {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut keys = BTreeSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !keys.insert(key.clone()) {
                return Err(de::Error::custom(format!("{DUPLICATE}{key:?}")));
            }
            map.next_value_seed(Self)?;
        }
        Ok(())
    }
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
    fn section_5_bad_lines_unknown_fields_duplicate_keys_length_and_depth() {
        assert_eq!(
            parse_line(r#"{"op":"flush","now":true}"#),
            Err(ScriptError::UnknownField {
                op: "flush",
                field: "now".into()
            })
        );
        assert_eq!(
            parse_line(r#"{"op":"track","name":"a","nmae":"b"}"#),
            Err(ScriptError::UnknownField {
                op: "track",
                field: "nmae".into()
            })
        );
        assert_eq!(
            parse_line(r#"{"op":"identify","id":"a","id":"b"}"#),
            Err(ScriptError::DuplicateKey("\"id\"".into()))
        );
        assert_eq!(
            parse_line(r#"{"op":"track","name":"a","attrs":{"k":1,"k":2}}"#),
            Err(ScriptError::DuplicateKey("\"k\"".into())),
            "at any depth"
        );
        let long = format!(
            r#"{{"op":"track","name":"{}"}}"#,
            "x".repeat(MAX_LINE_BYTES)
        );
        assert_eq!(parse_line(&long), Err(ScriptError::TooLong));
        let deep = format!(
            r#"{{"op":"track","name":"a","attrs":{{"k":{}{}}}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        let refused = parse_line(&deep).unwrap_err();
        assert_eq!(refused, ScriptError::TooDeep);
        assert!(refused.to_string().starts_with("valid JSON"), "{refused}");
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
