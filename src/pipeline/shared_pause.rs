//! An account's pause, shared with every agent through the ledger: a session refused on
//! one machine pauses the account everywhere. This agent writes its own pauses and
//! resumes (best effort: a ledger that cannot answer leaves the pause local), adopts a
//! pause another agent wrote before a job of the account starts and at every periodic
//! account look, and resumes an adopted pause once it is cleared in the ledger (or its
//! own re-check of the account works). See docs/shared-ledger.md.

use tracing::{debug, warn};

use super::context::Context;

/// Writes this agent's new pause of `account` for every agent (and the `paused`
/// notification, with `hint`: how to fix it).
pub(crate) async fn publish(ctx: &Context, account: &str, reason: &str, hint: &str) {
    if ctx.ledger.is_none() {
        return;
    }
    let (name, why, hint) = (account.to_owned(), reason.to_owned(), hint.to_owned());
    if let Err(e) = ctx
        .ledger(move |l| l.pause_account(&name, &why, &hint))
        .await
    {
        warn!(account, reason = %e, "cannot record the pause in the ledger; other agents do not know of it");
    }
}

/// `account` works again here: it works again for every agent.
pub(crate) async fn clear(ctx: &Context, account: &str) {
    if ctx.ledger.is_none() {
        return;
    }
    let name = account.to_owned();
    if let Err(e) = ctx.ledger(move |l| l.resume_account(&name)).await {
        warn!(account, reason = %e, "cannot clear the pause in the ledger");
    }
}

/// Before a job of `account` starts: a pause another agent wrote is this agent's too.
pub(crate) async fn adopt(ctx: &Context, account: &str) {
    if ctx.ledger.is_none() || ctx.accounts.paused(account).is_some() {
        return;
    }
    let name = account.to_owned();
    match ctx.ledger(move |l| l.account_pause(&name)).await {
        Ok(Some(pause)) => adopt_one(ctx, &pause),
        Ok(None) => {}
        Err(e) => debug!(account, reason = %e, "cannot read the account's shared pause"),
    }
}

/// The periodic look: adopts the pauses other agents wrote for accounts configured here,
/// and resumes the adopted pauses cleared meanwhile; returns the accounts resumed.
pub(crate) async fn sync(ctx: &Context) -> Vec<String> {
    if ctx.ledger.is_none() {
        return Vec::new();
    }
    let shared = match ctx.ledger(|l| l.paused_accounts()).await {
        Ok(shared) => shared,
        Err(e) => {
            debug!(reason = %e, "cannot read the shared pauses");
            return Vec::new();
        }
    };
    for pause in &shared {
        if ctx.accounts.contains(&pause.account) && ctx.accounts.paused(&pause.account).is_none() {
            adopt_one(ctx, pause);
        }
    }
    let mut resumed = Vec::new();
    for (name, pause) in ctx.accounts.paused_list() {
        let Some(by) = pause.by else { continue };
        if !shared.iter().any(|p| p.account == name) {
            ctx.accounts.resume(&name);
            tracing::info!(account = %name, "the pause agent {by} made was cleared; the account's queued videos go on");
            resumed.push(name);
        }
    }
    resumed
}

fn adopt_one(ctx: &Context, pause: &crate::ledger::SharedPause) {
    if pause.by == ctx.agent_name() {
        // A pause of this agent's own earlier run: it tries the account again.
        return;
    }
    if ctx
        .accounts
        .pause_from(&pause.account, &pause.reason, &pause.by)
    {
        tracing::error!(
            account = %pause.account,
            by = %pause.by,
            "The account is paused (by agent {}): {}. Its videos stay queued in the inbox here too; it resumes once the pause is cleared or its re-check works.",
            pause.by,
            pause.reason
        );
    }
}
