//! What the core's actions mean to a user, in the vocabulary the model predicts.
//!
//! The core speaks in requests, bodies and header values; the model in batches, owners
//! and abstract tokens. This module reduces each [`Action`] to a [`Happening`] (sends
//! with owner, event sequence numbers and bearer token; notices; drops; acks; lockout)
//! and compares a step's happenings with the model's prediction, up to the renaming of
//! batch ids and anonymous ids that the model cannot know ([`Correspondence`]). It
//! checks no rule itself: that is [`crate::invariants`]'s job.

use std::fmt;

use authsync_core::{DropReason, Owner, Request};

use crate::sim::Action;

use crate::alphabet::{TokenName, User};
use crate::model::{BatchKey, Party};
use crate::sim::token_name;

/// One thing a user of the client sees, with owners of type `O` and batches named `B`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Happening<O, B> {
    /// A request for a batch went out.
    Sent {
        /// Which batch (stable across retries, S3).
        batch: B,
        /// Whose events (S1: one owner per batch).
        owner: O,
        /// The `seq` of each event in the body, in order.
        seqs: Vec<u64>,
        /// The token of the `Authorization` header, if any (S4).
        bearer: Option<TokenName>,
    },
    /// The listener was told (A2, S5, R1).
    Notified {
        /// The code's wire name.
        code: String,
        /// The identifier, when the notice names one.
        identifier: Option<User>,
        /// The token the notice carries.
        token: Option<TokenName>,
    },
    /// Events were dropped (D1).
    Dropped {
        /// Why.
        reason: DropReason,
        /// How many.
        events: u64,
        /// Whose.
        owner: O,
    },
    /// A batch was acknowledged (A1).
    Acked {
        /// Which batch.
        batch: B,
        /// How many events it held.
        events: u64,
    },
    /// A lockout began (A3).
    LockedOut,
    /// The token provider is asked for a token for this user (R2).
    Fetch {
        /// For whom.
        user: User,
    },
    /// A fetch is stopped (R2: its timeout passed).
    CancelFetch,
    /// A fetch gave nothing usable (R2), for this reason (`FetchFailure`'s name).
    FetchFailed {
        /// For whom.
        user: User,
        /// Why.
        reason: String,
    },
}

/// What the core did, as a user sees it.
pub type Observed = Happening<Owner, String>;

/// What the model says should happen.
pub type Predicted = Happening<Party, BatchKey>;

/// An action that cannot be read as a [`Happening`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unreadable {
    /// A request body that is not the JSON of section 4.
    Body {
        /// The batch id of the request.
        batch_id: String,
    },
    /// A token string the simulated app never passed.
    Token,
    /// An identifier outside the alphabet.
    Identifier(String),
    /// An action kind this crate does not know.
    Action(String),
}

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Body { batch_id } => write!(f, "the body of batch {batch_id} is not wire JSON"),
            Self::Token => f.write_str("a token the app never passed"),
            Self::Identifier(id) => write!(f, "identifier {id:?} is not one of the alphabet's"),
            Self::Action(action) => write!(f, "unknown action {action}"),
        }
    }
}

/// The `seq`s of the events in a request body.
///
/// # Errors
/// [`Unreadable::Body`] when the body is not section 4's JSON.
pub fn body_seqs(request: &Request) -> Result<Vec<u64>, Unreadable> {
    let unreadable = || Unreadable::Body {
        batch_id: request.batch_id.clone(),
    };
    let body: serde_json::Value =
        serde_json::from_slice(&request.body).map_err(|_| unreadable())?;
    body.get("events")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(unreadable)?
        .iter()
        .map(|event| event.get("seq").and_then(serde_json::Value::as_u64))
        .collect::<Option<Vec<u64>>>()
        .ok_or_else(unreadable)
}

/// The token of a request's `Authorization: Bearer` header, if it has one.
///
/// # Errors
/// [`Unreadable::Token`] when the header holds anything but a bearer token the
/// simulated app passed.
pub fn bearer(request: &Request) -> Result<Option<TokenName>, Unreadable> {
    let Some(value) = request.headers.get(http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(Unreadable::Token)?;
    token_name(token).map(Some).ok_or(Unreadable::Token)
}

/// Reads one action; `None` for [`Action::Persist`], which a user does not see.
///
/// # Errors
/// [`Unreadable`] when a body, token or identifier is not one the simulation made.
pub fn observe(action: &Action) -> Result<Option<Observed>, Unreadable> {
    let happening = match action {
        Action::Persist(_) | Action::Compacted(_) | Action::Other(_) => return Ok(None),
        Action::Send(request) => Happening::Sent {
            batch: request.batch_id.clone(),
            owner: request.owner.clone(),
            seqs: body_seqs(request)?,
            bearer: bearer(request)?,
        },
        Action::Notify(notice) => Happening::Notified {
            code: notice.code.as_str().to_owned(),
            identifier: notice
                .identifier
                .as_deref()
                .map(|id| {
                    User::from_identifier(id).ok_or_else(|| Unreadable::Identifier(id.to_owned()))
                })
                .transpose()?,
            token: notice
                .token
                .as_ref()
                .map(|t| token_name(t.expose()).ok_or(Unreadable::Token))
                .transpose()?,
        },
        Action::Dropped(drop) => Happening::Dropped {
            reason: drop.reason,
            events: drop.events,
            owner: drop.owner.clone(),
        },
        Action::Acked(ack) => Happening::Acked {
            batch: ack.batch_id.clone(),
            events: ack.events as u64,
        },
        Action::LockedOut => Happening::LockedOut,
        Action::Fetch(identifier) => Happening::Fetch {
            user: User::from_identifier(identifier)
                .ok_or_else(|| Unreadable::Identifier(identifier.clone()))?,
        },
        Action::CancelFetch => Happening::CancelFetch,
        Action::FetchFailed(identifier, reason) => Happening::FetchFailed {
            user: User::from_identifier(identifier)
                .ok_or_else(|| Unreadable::Identifier(identifier.clone()))?,
            reason: reason.clone(),
        },
    };
    Ok(Some(happening))
}

/// A one-to-one renaming between the model's names and the core's, built up as names
/// first appear.
#[derive(Clone, Debug, Default)]
pub struct Renaming<M, C> {
    pairs: Vec<(M, C)>,
}

impl<M: PartialEq + Clone, C: PartialEq + Clone> Renaming<M, C> {
    /// The core's name for `model`, if it has one.
    pub fn get(&self, model: &M) -> Option<&C> {
        self.pairs.iter().find(|(m, _)| m == model).map(|(_, c)| c)
    }

    /// Pairs `model` with `core`; `false` when either is already paired with another.
    pub fn bind(&mut self, model: &M, core: &C) -> bool {
        match (
            self.pairs.iter().find(|(m, _)| m == model),
            self.pairs.iter().find(|(_, c)| c == core),
        ) {
            (Some((_, c)), _) => c == core,
            (None, Some(_)) => false,
            (None, None) => {
                self.pairs.push((model.clone(), core.clone()));
                true
            }
        }
    }
}

/// How the model's batch keys and anonymous generations correspond to the core's batch
/// ids and anonymous ids. Batch ids are the core's to choose (S3 says only that they
/// are unique and stable), so behaviour is compared up to this renaming.
#[derive(Clone, Debug, Default)]
pub struct Correspondence {
    batches: Renaming<BatchKey, String>,
    anonymous: Renaming<u32, String>,
}

impl Correspondence {
    /// Pairs the model's owner with the core's; `false` when they cannot be the same.
    pub fn bind_owner(&mut self, model: &Party, core: &Owner) -> bool {
        match (model, core) {
            (Party::User(user), Owner::Identified(id)) => user.identifier() == id,
            (Party::Anonymous(generation), Owner::Anonymous(id)) => {
                self.anonymous.bind(generation, id)
            }
            _ => false,
        }
    }

    fn owner(&self, model: &Party) -> Option<Owner> {
        match model {
            Party::User(user) => Some(Owner::Identified(user.identifier().to_owned())),
            Party::Anonymous(generation) => self
                .anonymous
                .get(generation)
                .cloned()
                .map(Owner::Anonymous),
        }
    }

    /// Compares one step's happenings, in any order within the step (the rules do not
    /// order the actions of one input), binding names that first appear in it.
    ///
    /// # Errors
    /// A description of the difference.
    pub fn reconcile(
        &mut self,
        predicted: &[Predicted],
        observed: &[Observed],
    ) -> Result<(), String> {
        // A batch first named in this step is paired with the core's send of this step:
        // at most one request goes out per step (S2).
        let core_sent = observed.iter().find_map(|o| match o {
            Happening::Sent { batch, .. } => Some(batch.clone()),
            _ => None,
        });
        let mut expected = Vec::with_capacity(predicted.len());
        for happening in predicted {
            expected.push(self.translate(happening, core_sent.as_ref())?);
        }
        let key = |h: &Observed| format!("{h:?}");
        let mut expected_sorted = expected.clone();
        expected_sorted.sort_by_key(key);
        let mut observed_sorted = observed.to_vec();
        observed_sorted.sort_by_key(key);
        if expected_sorted == observed_sorted {
            Ok(())
        } else {
            Err(format!(
                "the model predicted\n    {expected:?}\n  the core did\n    {observed:?}"
            ))
        }
    }

    fn translate(
        &mut self,
        happening: &Predicted,
        core_sent: Option<&String>,
    ) -> Result<Observed, String> {
        let owner = |this: &Self, party: &Party| {
            this.owner(party)
                .ok_or_else(|| format!("anonymous user {party:?} was never the current user"))
        };
        Ok(match happening {
            Happening::Sent {
                batch,
                owner: party,
                seqs,
                bearer,
            } => {
                let batch_id = match (self.batches.get(batch), core_sent) {
                    (Some(id), _) => id.clone(),
                    (None, Some(id)) => {
                        if !self.batches.bind(batch, id) {
                            return Err(format!(
                                "the model sends a new batch ({batch}) but the core re-sends batch {id}"
                            ));
                        }
                        id.clone()
                    }
                    (None, None) => format!("<batch {batch}, never sent>"),
                };
                Happening::Sent {
                    batch: batch_id,
                    owner: owner(self, party)?,
                    seqs: seqs.clone(),
                    bearer: *bearer,
                }
            }
            Happening::Acked { batch, events } => Happening::Acked {
                batch: self
                    .batches
                    .get(batch)
                    .cloned()
                    .unwrap_or_else(|| format!("<batch {batch}, never sent>")),
                events: *events,
            },
            Happening::Notified {
                code,
                identifier,
                token,
            } => Happening::Notified {
                code: code.clone(),
                identifier: *identifier,
                token: *token,
            },
            Happening::Dropped {
                reason,
                events,
                owner: party,
            } => Happening::Dropped {
                reason: *reason,
                events: *events,
                owner: owner(self, party)?,
            },
            Happening::LockedOut => Happening::LockedOut,
            Happening::Fetch { user } => Happening::Fetch { user: *user },
            Happening::CancelFetch => Happening::CancelFetch,
            Happening::FetchFailed { user, reason } => Happening::FetchFailed {
                user: *user,
                reason: reason.clone(),
            },
        })
    }
}
