//! An unattended member (`sealroom party agent`): consents only to the
//! manifest it was told to accept, uploads its blob, verifies every node
//! that registers — against the consented manifest's policy and the
//! member's own, stricter one — grants only to a node that passes, grants
//! again to a replacement after a node loss, and returns when the session
//! ends. Every decision is one JSON object handed to the caller's log.
//!
//! It keeps no state of its own beyond the member's record (the same one
//! `sealroom party` and the TUI use), and derives every next step from that
//! record and the coordinator's status, so a restarted agent carries on
//! where it stopped: the coordinator treats a repeated consent, upload or
//! grant for the same node as a no-op, and the agent sends one only when
//! the status lacks it.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use alloy_primitives::B256;
use sealroom_protocol::api::{ClientError, MemberView, SessionState};
use sealroom_protocol::manifest::ConsentAction;
use sealroom_protocol::policy::Policy;
use serde_json::{json, Value};

use sealroom_reports::check::Check;

use crate::{now, Member, MemberError};

/// What the agent is told to do.
#[derive(Clone, Debug)]
pub struct AgentOptions {
    /// The session.
    pub session: B256,
    /// The member's sealed data key (none for an owner without a validation set).
    pub data_key: Option<PathBuf>,
    /// The member's encrypted blob (idem).
    pub blob: Option<PathBuf>,
    /// The member's own policy: a node must pass it as well as the manifest's.
    pub local_policy: Option<Policy>,
    /// The only manifest hash the agent consents to. Without it the agent
    /// shows the served manifest and waits for a consent given otherwise
    /// (e.g. `sealroom party consent` with the same record directory).
    pub accept_manifest: Option<B256>,
    /// Time between two looks at the session.
    pub poll: Duration,
    /// Withdraw (aborting the session) when it has not completed this long
    /// after the agent started.
    pub deadline: Option<Duration>,
}

/// How the session ended, as the agent saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentEnd {
    /// Completed (the model exists and is sealed to the owner).
    Completed(SessionState),
    /// Aborted, with the coordinator's reason.
    Aborted(String),
}

/// One decision: `{time, session, step, outcome, check?, detail?, …}`.
fn line(session: &B256, step: &str, outcome: &str, extra: Value) -> Value {
    let mut v = json!({
        "time": now(),
        "session": format!("{session:#x}"),
        "step": step,
        "outcome": outcome,
    });
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    v
}

/// Whether an error is the coordinator being unreachable or failing (worth
/// retrying) rather than a decision.
fn transient(e: &MemberError) -> bool {
    matches!(
        e,
        MemberError::Coordinator(ClientError::Transport { .. })
            | MemberError::Coordinator(ClientError::Api {
                status: 500..=599,
                ..
            })
    )
}

impl Member<'_> {
    /// Runs the agent until the session ends. Errors are input errors
    /// (exit 2: a flag or file) or a failure to keep the member's record.
    pub fn agent(
        &self,
        opts: &AgentOptions,
        log: &mut dyn FnMut(Value),
    ) -> Result<AgentEnd, MemberError> {
        let session = opts.session;
        let me = self.me.public().ed25519;
        let started = Instant::now();
        // Decisions already logged, so a poll loop does not repeat them.
        let mut said: HashSet<String> = HashSet::new();
        let mut say = |key: String, v: Value, log: &mut dyn FnMut(Value)| {
            if said.insert(key) {
                log(v);
            }
        };
        let mut refused_nodes: HashSet<[u8; 32]> = HashSet::new();
        let mut unreachable = false;
        log(line(
            &session,
            "start",
            "ok",
            json!({ "member": hex::encode(me), "record": self.records.path(&session).display().to_string() }),
        ));
        loop {
            let st = match self.served(&session) {
                Ok(st) => {
                    if unreachable {
                        log(line(&session, "coordinator", "reachable", json!({})));
                        unreachable = false;
                    }
                    st
                }
                Err(e) if transient(&e) => {
                    if !unreachable {
                        log(line(
                            &session,
                            "coordinator",
                            "unreachable",
                            json!({ "detail": e.to_string() }),
                        ));
                        unreachable = true;
                    }
                    std::thread::sleep(opts.poll);
                    continue;
                }
                Err(e) => return Err(e),
            };
            match self.step(opts, &st, &mut refused_nodes, started, &mut |k, v| {
                say(k, v, log)
            }) {
                Ok(Some(end)) => return Ok(end),
                Ok(None) => {}
                Err(e) if transient(&e) => {
                    log(line(
                        &session,
                        "coordinator",
                        "retry",
                        json!({ "detail": e.to_string() }),
                    ));
                }
                Err(e) => return Err(e),
            }
            std::thread::sleep(opts.poll);
        }
    }

    /// One look at the session: the next thing to do, if any.
    fn step(
        &self,
        opts: &AgentOptions,
        st: &MemberView,
        refused_nodes: &mut HashSet<[u8; 32]>,
        started: Instant,
        say: &mut dyn FnMut(String, Value),
    ) -> Result<Option<AgentEnd>, MemberError> {
        let session = opts.session;
        let me = self.me.public().ed25519;
        let rec = self.record(&session)?;

        // A member bringing data needs its blob and data key: say so before
        // signing anything, not after the consent.
        if crate::my_input(&st.manifest, &me).is_some() {
            if opts.blob.is_none() {
                return Err(MemberError::input(
                    "--blob",
                    "this member brings a dataset: pass its encrypted blob",
                ));
            }
            if opts.data_key.is_none() {
                return Err(MemberError::input(
                    "--data-key",
                    "this member brings a dataset: pass its sealed data key",
                ));
            }
        }

        // 1. Consent: only to the accepted manifest, recorded first.
        let rec = match rec {
            Some(rec) => {
                if let Some(accept) = opts.accept_manifest {
                    if accept != rec.manifest_hash {
                        return Err(MemberError::input(
                            "--accept-manifest",
                            format!(
                                "{accept:#x}: this member already consented to manifest {:#x} for this session (record {})",
                                rec.manifest_hash,
                                self.records.path(&session).display()
                            ),
                        ));
                    }
                }
                rec
            }
            None => {
                let Some(accept) = opts.accept_manifest else {
                    let m = &st.manifest.header;
                    say(
                        format!("review {:#x}", st.manifest_hash),
                        line(
                            &session,
                            "review",
                            "waiting",
                            json!({
                                "manifest_hash": format!("{:#x}", st.manifest_hash),
                                "detail": "not consenting: restart with --accept-manifest HASH after reviewing this manifest",
                                "summary": {
                                    "name": m.name,
                                    "owner": m.owner.name,
                                    // The list itself is committed, not served:
                                    // its size, its records and my own entry.
                                    "parties": m.parties.count,
                                    "records": m.parties.records,
                                    "my_entry": st.manifest.entry.as_ref().map(|e| e.party.name.clone()),
                                    "model": m.model.kind,
                                    "epochs": m.training.epochs,
                                    "seed": m.training.seed,
                                    "accepted_kinds": m.policy.accepted_kinds,
                                    "allow_simulation": m.policy.allow_simulation,
                                    "task": m.schema.task.as_str(),
                                    // What the model may reveal about one record.
                                    "privacy": sealroom_reports::audit::privacy_words(m),
                                    "epsilon": m.privacy_spent().ok().map(|s| s.epsilon),
                                },
                            }),
                        ),
                    );
                    return Ok(terminal(st));
                };
                if st.state >= SessionState::KeysGranted && st.state != SessionState::NodeLost {
                    say(
                        "late".into(),
                        line(
                            &session,
                            "consent",
                            "too-late",
                            json!({ "state": st.state.as_str() }),
                        ),
                    );
                    return Ok(terminal(st));
                }
                match self.consent_under(
                    &session,
                    ConsentAction::Consent,
                    Some(accept),
                    opts.local_policy.as_ref(),
                ) {
                    Ok(c) => {
                        say(
                            "consented".into(),
                            line(
                                &session,
                                "consent",
                                "signed",
                                json!({ "manifest_hash": format!("{:#x}", c.manifest_hash) }),
                            ),
                        );
                        return Ok(None);
                    }
                    Err(
                        e @ (MemberError::NotReviewed { .. }
                        | MemberError::ManifestChanged { .. }
                        | MemberError::Check {
                            check: Check::Privacy,
                            ..
                        }),
                    ) => {
                        let check = match &e {
                            MemberError::Check { check, .. } => check.as_str(),
                            _ => "manifest.changed",
                        };
                        say(
                            format!("refuse-consent {:#x}", st.manifest_hash),
                            line(
                                &session,
                                "consent",
                                "refused",
                                json!({ "check": check, "detail": e.to_string() }),
                            ),
                        );
                        // Above the member's own privacy limit: never
                        // consent (the session cannot start without this
                        // member); the agent stops with the failed check.
                        if matches!(e, MemberError::Check { .. }) {
                            return Err(e);
                        }
                        return Ok(terminal(st));
                    }
                    Err(e) => return Err(e),
                }
            }
        };

        // The coordinator serves another manifest than the one consented
        // to: it is misbehaving; the agent withdraws (over its record) and
        // stops, rather than act on anything it serves.
        if st.manifest_hash != rec.manifest_hash {
            say(
                "changed".into(),
                line(
                    &session,
                    "manifest",
                    "changed",
                    json!({
                        "check": "manifest.changed",
                        "consented": format!("{:#x}", rec.manifest_hash),
                        "served": format!("{:#x}", st.manifest_hash),
                    }),
                ),
            );
            let _ = self.consent(&session, ConsentAction::Withdraw, None);
            return Ok(Some(AgentEnd::Aborted(format!(
                "manifest.changed: the coordinator serves {:#x}, this member consented to {:#x}; withdrawn",
                st.manifest_hash, rec.manifest_hash
            ))));
        }
        if let Some(end) = terminal(st) {
            say(
                "end".into(),
                match &end {
                    AgentEnd::Completed(s) => line(
                        &session,
                        "session",
                        "completed",
                        json!({ "state": s.as_str() }),
                    ),
                    AgentEnd::Aborted(r) => {
                        line(&session, "session", "aborted", json!({ "detail": r }))
                    }
                },
            );
            return Ok(Some(end));
        }
        // Not ended as served, but the member withdrew (this agent, or the
        // member through the CLI or the TUI with the same records): whatever
        // the coordinator shows, nothing more is signed, sent or granted.
        if crate::withdrew(Some(&rec)) {
            let detail = "this member withdrew (its own record says so); nothing more is sent";
            say(
                "withdrawn".into(),
                line(&session, "session", "aborted", json!({ "detail": detail })),
            );
            return Ok(Some(AgentEnd::Aborted(detail.into())));
        }
        let mine = &st.member;
        if mine.key != me {
            return Err(MemberError::ServedManifest(
                "the served view is for another member's key".into(),
            ));
        }

        // A deadline the member set for itself: withdraw, stopping the node.
        if let Some(d) = opts.deadline {
            if started.elapsed() > d {
                self.consent(&session, ConsentAction::Withdraw, None)?;
                say(
                    "deadline".into(),
                    line(
                        &session,
                        "abort",
                        "withdrawn",
                        json!({
                            "detail": format!("not completed within {} s", d.as_secs()),
                            "state": st.state.as_str(),
                        }),
                    ),
                );
                return Ok(None);
            }
        }
        let accepting = matches!(
            st.state,
            SessionState::Open | SessionState::NodeLost | SessionState::NodeAttested
        );
        if !mine.consented && accepting {
            // Recorded but not received (a crash in between): the same
            // signature again.
            self.consent_under(
                &session,
                ConsentAction::Consent,
                Some(rec.manifest_hash),
                opts.local_policy.as_ref(),
            )?;
            say(
                "consent-resent".into(),
                line(&session, "consent", "resent", json!({})),
            );
            return Ok(None);
        }

        // 2. Upload, checked against the consented commitment.
        if mine.blob_uploaded == Some(false) && accepting {
            let blob = opts.blob.as_ref().ok_or_else(|| {
                MemberError::input(
                    "--blob",
                    "this member brings a dataset: pass its encrypted blob",
                )
            })?;
            let up = self.upload(&session, blob, &|_, _, _| {})?;
            say(
                "uploaded".into(),
                line(
                    &session,
                    "upload",
                    "sent",
                    json!({
                        "input": up.input, "bytes": up.bytes, "sha256": format!("{:#x}", up.sha256),
                    }),
                ),
            );
            return Ok(None);
        }

        // 3. Grant to the registered node once it passes both policies.
        if let (Some(reg), Some(false), SessionState::NodeAttested) =
            (&st.node, mine.granted, st.state)
        {
            let node = hex::encode(reg.node_key);
            if refused_nodes.contains(&reg.node_key) {
                return Ok(None);
            }
            let data_key = opts.data_key.as_ref().ok_or_else(|| {
                MemberError::input(
                    "--data-key",
                    "this member brings a dataset: pass its sealed data key",
                )
            })?;
            let attempt = st
                .attempts
                .iter()
                .find(|a| a.node.node_key == reg.node_key)
                .map(|a| a.number);
            match self.verify_node_with(&session, now(), opts.local_policy.as_ref()) {
                Ok(v) if v.registration().node_key == reg.node_key => {
                    let verdict = v.verdict().clone();
                    let g = self.grant(v, data_key)?;
                    say(
                        format!("grant {node}"),
                        line(
                            &session,
                            "grant",
                            "granted",
                            json!({
                                "node": node,
                                "attempt": attempt,
                                "input": g.input,
                                "check": "evidence.verified",
                                "tee": verdict.kind,
                                "insecure_simulation": verdict.insecure_simulation,
                                "measurement": verdict.measurement,
                            }),
                        ),
                    );
                }
                // The node changed between the status and the check: look again.
                Ok(_) => {}
                Err(MemberError::NodeRejected(f)) => {
                    refused_nodes.insert(reg.node_key);
                    say(
                        format!("refuse {node}"),
                        line(
                            &session,
                            "verify-node",
                            "refused",
                            json!({
                                "node": node, "attempt": attempt, "check": f.check, "detail": f.detail,
                            }),
                        ),
                    );
                }
                Err(e) => return Err(e),
            }
            return Ok(None);
        }
        if st.state == SessionState::NodeLost {
            if let Some(lost) = st
                .attempts
                .iter()
                .rev()
                .find(|a| a.outcome == sealroom_protocol::api::AttemptOutcome::Lost)
            {
                say(
                    format!("lost {}", lost.number),
                    line(
                        &session,
                        "node",
                        "lost",
                        json!({
                            "node": hex::encode(lost.node.node_key), "attempt": lost.number,
                            "detail": "waiting for a replacement node; this member's grant was sealed to the lost node only",
                        }),
                    ),
                );
            }
        }
        Ok(None)
    }
}

/// The end of the session, when it has ended.
fn terminal(st: &MemberView) -> Option<AgentEnd> {
    match st.state {
        SessionState::Completed | SessionState::Published | SessionState::Delivered => {
            Some(AgentEnd::Completed(st.state))
        }
        SessionState::Aborted => Some(AgentEnd::Aborted(
            st.abort_reason
                .clone()
                .unwrap_or_else(|| "no reason given".into()),
        )),
        _ => None,
    }
}
