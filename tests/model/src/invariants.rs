//! The rules every step and every state must satisfy, whatever the model says.
//!
//! These are checked on the core alone, from what a driver can see: the actions, the
//! calls' results and the public getters. [`Ledger`] keeps the little history they need
//! (what was tracked, acknowledged and dropped; which request is in flight; the bodies
//! sent per batch id; which tokens were rejected since they were passed; which owners
//! wait for a session). Each check is a function returning a typed [`Violation`].
//!
//! Two more invariants need a second run and live in [`crate::scenario`]: determinism
//! (replaying the same steps gives byte-identical actions) and restore equivalence (a
//! client restored at a step with no request in flight behaves the same from then on).

use std::fmt;

use authsync_core::{Client, DropReason, Outcome, Owner, Request};

use crate::sim::Action;
use bytes::Bytes;

use crate::alphabet::{Reply, Step, TokenName, User};
use crate::observe::bearer;
use crate::sim::{CallResult, StepReport};

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// D1: the totals do not add up, or disagree with the actions reported.
    Conservation {
        /// What the client's totals say: tracked, acked, dropped, pending.
        totals: [u64; 4],
        /// What the calls and actions say: tracked, acked, dropped.
        reported: [u64; 3],
    },
    /// S2: a request went out while another was in flight.
    TwoRequestsInFlight {
        /// The batch in flight.
        in_flight: String,
        /// The batch sent.
        sent: String,
    },
    /// A3: a request went out during a lockout.
    SentDuringLockout {
        /// The batch sent.
        batch_id: String,
    },
    /// A2: a request carried a token the server rejected for that owner since it was
    /// passed.
    SentWithRejectedToken {
        /// The batch sent.
        batch_id: String,
        /// The rejected token.
        token: TokenName,
    },
    /// A2: a request went out for an owner whose 401 waits for a session start.
    SentWhileWaitingForSession {
        /// The batch sent.
        batch_id: String,
    },
    /// S4: an identified batch under JWT went out without a token, or with a token
    /// that is not the newest passed for its owner, or one passed for someone else.
    WrongToken {
        /// The batch sent.
        batch_id: String,
        /// Its owner.
        owner: Owner,
        /// The token it carried.
        token: Option<TokenName>,
    },
    /// S4: an anonymous batch, or any batch with JWT disabled, carried a token.
    TokenWhereNoneBelongs {
        /// The batch sent.
        batch_id: String,
    },
    /// A2: a 401 was not told exactly once, with its code and token.
    NoticesFor401 {
        /// The code the 401 carried.
        code: String,
        /// The matching notices told.
        told: usize,
        /// Notices of server-side failures told in a step without a 401.
        stray: usize,
    },
    /// S3: a batch id was sent with different body bytes, or a wrong
    /// `Idempotency-Key`, or a body of another owner.
    BatchChanged {
        /// The batch id.
        batch_id: String,
        /// What differs.
        what: &'static str,
    },
    /// A7: an answer for a request not in flight changed the state.
    RefusedCallChangedState,
    /// D2: the state restored from the snapshot and journal differs from the state
    /// before the restart.
    RestoreDiffers,
    /// A call failed that no step should make fail.
    CallFailed(String),
    /// DT1: replaying the same steps gave different actions.
    Nondeterministic {
        /// The first differing action's position in the log.
        at: usize,
    },
    /// D2: a client restored at an idle step behaved differently from the original.
    RestoreChangedBehaviour {
        /// What differed.
        detail: String,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Conservation { totals, reported } => write!(
                f,
                "D1 conservation: totals tracked/acked/dropped/pending = {totals:?}, calls and actions say tracked/acked/dropped = {reported:?}"
            ),
            Self::TwoRequestsInFlight { in_flight, sent } => {
                write!(f, "S2: sent {sent} while {in_flight} is in flight")
            }
            Self::SentDuringLockout { batch_id } => {
                write!(f, "A3: sent {batch_id} during a lockout")
            }
            Self::SentWithRejectedToken { batch_id, token } => {
                write!(f, "A2: sent {batch_id} with rejected token {token:?}")
            }
            Self::SentWhileWaitingForSession { batch_id } => write!(
                f,
                "A2: sent {batch_id} for an owner waiting for the next session"
            ),
            Self::WrongToken {
                batch_id,
                owner,
                token,
            } => write!(
                f,
                "S4: sent {batch_id} of {owner} with token {token:?}, not its owner's newest"
            ),
            Self::TokenWhereNoneBelongs { batch_id } => write!(
                f,
                "S4: sent {batch_id} with an Authorization header where none belongs"
            ),
            Self::NoticesFor401 { code, told, stray } => write!(
                f,
                "A2: a 401 ({code}) was told {told} times; {stray} server-side notices without a 401"
            ),
            Self::BatchChanged { batch_id, what } => write!(f, "S3: batch {batch_id}: {what}"),
            Self::RefusedCallChangedState => {
                f.write_str("A7: an answer for a request not in flight changed the state")
            }
            Self::RestoreDiffers => {
                f.write_str("D2: the restored state differs from the state before the restart")
            }
            Self::CallFailed(why) => write!(f, "a call failed: {why}"),
            Self::Nondeterministic { at } => {
                write!(f, "DT1: a replay differs at action {at}")
            }
            Self::RestoreChangedBehaviour { detail } => {
                write!(f, "D2: a restored client behaved differently: {detail}")
            }
        }
    }
}

/// What the invariants remember between steps.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    jwt: bool,
    tracked: u64,
    acked: u64,
    dropped: u64,
    in_flight: Option<String>,
    bodies: Vec<(String, Owner, Bytes)>,
    newest_token: [Option<TokenName>; 3],
    rejected_since_passed: Vec<TokenName>,
    waiting_for_session: Vec<Owner>,
    pending_per_owner: Vec<(Owner, u64)>,
}

impl Ledger {
    /// A ledger for a new install.
    #[must_use]
    pub fn new(jwt: bool) -> Self {
        Self {
            jwt,
            ..Self::default()
        }
    }

    /// Checks one step's report and the client's state after it.
    ///
    /// # Errors
    /// The first [`Violation`] found.
    pub fn check(
        &mut self,
        step: Step,
        report: &StepReport,
        client: &Client,
    ) -> Result<(), Violation> {
        call_succeeded(report)?;
        if report.refused_call_changed_state {
            return Err(Violation::RefusedCallChangedState);
        }
        if report.restore_differs {
            return Err(Violation::RestoreDiffers);
        }
        self.before_actions(step, report, client);
        let mut lockout_began = false;
        for action in &report.actions {
            match action {
                Action::Send(request) => {
                    no_lockout(
                        report.locked_out_before && step != Step::SessionStart,
                        lockout_began,
                        request,
                    )?;
                    self.one_in_flight(request)?;
                    self.token_belongs(request)?;
                    self.batch_unchanged(request)?;
                    self.in_flight = Some(request.batch_id.clone());
                }
                Action::Acked(ack) => {
                    self.acked += ack.events as u64;
                    if let Some((_, owner, _)) =
                        self.bodies.iter().find(|(id, _, _)| *id == ack.batch_id)
                    {
                        let owner = owner.clone();
                        self.count_pending(&owner, -(ack.events as i64));
                    }
                }
                Action::Dropped(drop) => {
                    self.dropped += drop.events;
                    self.count_pending(&drop.owner, -(drop.events as i64));
                }
                Action::LockedOut => lockout_began = true,
                _ => {}
            }
        }
        // A lockout lasting past this step began before any send of it.
        if let Some(Action::Send(request)) =
            report.actions.iter().find(|a| matches!(a, Action::Send(_)))
            && client.is_locked_out()
        {
            return Err(Violation::SentDuringLockout {
                batch_id: request.batch_id.clone(),
            });
        }
        self.forget_logged_out_owners(client);
        one_notice_per_401(report, self.jwt)?;
        self.conservation(client)
    }

    /// What the step itself established before any action it caused.
    fn before_actions(&mut self, step: Step, report: &StepReport, client: &Client) {
        match (step, &report.result) {
            (Step::Track, CallResult::Tracked(_)) => {
                self.tracked += 1;
                // Tracking does not change the current user: it owns the event.
                self.count_pending(&client.current_user().clone(), 1);
            }
            (
                Step::PassToken(token) | Step::Answer(_, Some(token)),
                CallResult::Outcome(Outcome::Applied),
            ) => {
                self.newest_token[token.user.index()] = Some(token);
                self.rejected_since_passed.retain(|t| *t != token);
            }
            (Step::SessionStart, _) => self.waiting_for_session.clear(),
            (Step::Restart, _) => self.in_flight = None,
            _ => {}
        }
        if let Some((request, reply)) = &report.answered {
            self.in_flight = None;
            if let Reply::Unauthorized(_) = reply {
                let purged = report.actions.iter().any(|a| {
                    matches!(a, Action::Dropped(d) if d.reason == DropReason::LoggedOutAuthFailure && d.owner == request.owner)
                });
                match bearer(request) {
                    Ok(Some(token)) if self.jwt => self.rejected_since_passed.push(token),
                    _ if !purged => self.waiting_for_session.push(request.owner.clone()),
                    _ => {}
                }
            }
        }
    }

    fn count_pending(&mut self, owner: &Owner, events: i64) {
        match self.pending_per_owner.iter_mut().find(|(o, _)| o == owner) {
            Some((_, pending)) => *pending = pending.saturating_add_signed(events),
            None => self
                .pending_per_owner
                .push((owner.clone(), u64::try_from(events).unwrap_or(0))),
        }
    }

    /// A 401's wait for the next session ends when the client forgets the owner: an
    /// identified owner who is no longer the current user (so logged out) and has no
    /// pending data left. Core's choice (`DurableState::forget_if_done`); L1
    /// says only that the logged-out user's token is kept for their remaining data.
    fn forget_logged_out_owners(&mut self, client: &Client) {
        let current = client.current_user();
        let pending = &self.pending_per_owner;
        self.waiting_for_session.retain(|owner| {
            owner == current
                || owner.identifier().is_none()
                || pending.iter().any(|(o, n)| o == owner && *n > 0)
        });
    }

    /// S2.
    fn one_in_flight(&self, request: &Request) -> Result<(), Violation> {
        match &self.in_flight {
            Some(in_flight) => Err(Violation::TwoRequestsInFlight {
                in_flight: in_flight.clone(),
                sent: request.batch_id.clone(),
            }),
            None => Ok(()),
        }
    }

    /// S4, A2: the owner's newest token, never a rejected one, never one of another
    /// user; none for anonymous batches or with JWT disabled; none while the owner
    /// waits for a session.
    fn token_belongs(&self, request: &Request) -> Result<(), Violation> {
        let batch_id = request.batch_id.clone();
        let token = bearer(request).map_err(|_| Violation::WrongToken {
            batch_id: batch_id.clone(),
            owner: request.owner.clone(),
            token: None,
        })?;
        if self.waiting_for_session.contains(&request.owner) {
            return Err(Violation::SentWhileWaitingForSession { batch_id });
        }
        let user = request.owner.identifier().and_then(User::from_identifier);
        match (self.jwt, user, token) {
            (false, _, Some(_)) | (true, None, Some(_)) => {
                Err(Violation::TokenWhereNoneBelongs { batch_id })
            }
            (false, _, None) | (true, None, None) => Ok(()),
            (true, Some(user), token) => {
                if let Some(token) = token.filter(|t| self.rejected_since_passed.contains(t)) {
                    return Err(Violation::SentWithRejectedToken { batch_id, token });
                }
                if token.is_none()
                    || token != self.newest_token[user.index()]
                    || token.map(|t| t.user) != Some(user)
                {
                    return Err(Violation::WrongToken {
                        batch_id,
                        owner: request.owner.clone(),
                        token,
                    });
                }
                Ok(())
            }
        }
    }

    /// S3: one batch id, one body, one owner, sent under its own `Idempotency-Key`.
    fn batch_unchanged(&mut self, request: &Request) -> Result<(), Violation> {
        let batch_id = &request.batch_id;
        let changed = |what| {
            Err(Violation::BatchChanged {
                batch_id: batch_id.clone(),
                what,
            })
        };
        if request
            .headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            != Some(batch_id.as_str())
        {
            return changed("Idempotency-Key is not the batch id");
        }
        let body: Option<serde_json::Value> = serde_json::from_slice(&request.body).ok();
        let user = body
            .as_ref()
            .map(|b| (&b["user"]["type"], &b["user"]["id"], &b["batch_id"]));
        let expected_user = (
            request.owner.wire_type(),
            request.owner.id(),
            batch_id.as_str(),
        );
        if user.and_then(|(t, i, b)| Some((t.as_str()?, i.as_str()?, b.as_str()?)))
            != Some(expected_user)
        {
            return changed("the body's user or batch id is not the request's");
        }
        match self.bodies.iter().find(|(id, _, _)| id == batch_id) {
            Some((_, owner, body)) if *body != request.body || *owner != request.owner => {
                changed("a retry sent different body bytes")
            }
            Some(_) => Ok(()),
            None => {
                self.bodies.push((
                    batch_id.clone(),
                    request.owner.clone(),
                    request.body.clone(),
                ));
                Ok(())
            }
        }
    }

    /// D1: every event tracked is acknowledged, dropped with a drop action, or pending;
    /// the totals agree with the actions.
    fn conservation(&self, client: &Client) -> Result<(), Violation> {
        let totals = client.totals();
        let pending = totals.pending();
        let adds_up = totals.tracked == totals.acked + totals.dropped + pending;
        let reported = [self.tracked, self.acked, self.dropped];
        if adds_up && [totals.tracked, totals.acked, totals.dropped] == reported {
            Ok(())
        } else {
            Err(Violation::Conservation {
                totals: [totals.tracked, totals.acked, totals.dropped, pending],
                reported,
            })
        }
    }
}

/// Every call of the alphabet is valid: none may fail (an A7 refusal is expected and
/// reported as [`CallResult::NotInFlight`], not as a failure).
fn call_succeeded(report: &StepReport) -> Result<(), Violation> {
    match &report.result {
        CallResult::Failed(why) => Err(Violation::CallFailed(why.clone())),
        _ => Ok(()),
    }
}

/// A3: no request while locked out (before a session start lifts it) or after a
/// lockout began in the same step.
fn no_lockout(
    locked_before: bool,
    lockout_began: bool,
    request: &Request,
) -> Result<(), Violation> {
    if locked_before || lockout_began {
        Err(Violation::SentDuringLockout {
            batch_id: request.batch_id.clone(),
        })
    } else {
        Ok(())
    }
}

/// A2: a 401 is told exactly once, with its code and the token the request carried;
/// a step without a 401 tells no server-side failure.
fn one_notice_per_401(report: &StepReport, jwt: bool) -> Result<(), Violation> {
    let notices = report.actions.iter().filter_map(|a| match a {
        Action::Notify(notice) => Some(notice),
        _ => None,
    });
    // Client-side notices, with JWT enabled only: S5's TOKEN_NOT_AVAILABLE names an
    // identifier and carries no token; R1's TOKEN_EXPIRING. Everything else reports a
    // 401.
    let server_side: Vec<_> = notices
        .filter(|n| {
            let code = n.code.as_str();
            !(jwt
                && (code == "TOKEN_EXPIRING"
                    || (code == "TOKEN_NOT_AVAILABLE"
                        && n.token.is_none()
                        && n.identifier.is_some())))
        })
        .collect();
    match &report.answered {
        Some((request, Reply::Unauthorized(code))) => {
            let token = bearer(request).ok().flatten();
            let told = server_side
                .iter()
                .filter(|n| {
                    n.code.as_str() == code.expected_code()
                        && n.token
                            .as_ref()
                            .and_then(|t| crate::sim::token_name(t.expose()))
                            == token
                })
                .count();
            if told == 1 && server_side.len() == 1 {
                Ok(())
            } else {
                Err(Violation::NoticesFor401 {
                    code: code.expected_code().to_owned(),
                    told,
                    stray: server_side.len() - told.min(server_side.len()),
                })
            }
        }
        _ if server_side.is_empty() => Ok(()),
        _ => Err(Violation::NoticesFor401 {
            code: String::new(),
            told: 0,
            stray: server_side.len(),
        }),
    }
}
